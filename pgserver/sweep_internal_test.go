package pgserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSweepStale(t *testing.T) {
	t.Parallel()
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	deadPID := dead.Process.Pid // reaped: no process has it, barring reuse

	base := t.TempDir()
	mkdir := func(name string, files map[string]int) string {
		dir := filepath.Join(base, name)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
		for file, pid := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(strconv.Itoa(pid)+"\n5432\n"), 0o600))
		}
		return dir
	}
	orphan := mkdir("fiberdb-pg-orphan", map[string]int{ownerFile: deadPID})
	stoppedOrphan := mkdir("fiberdb-pg-stopped", map[string]int{ownerFile: deadPID, "data/postmaster.pid": deadPID})
	live := mkdir("fiberdb-pg-live", map[string]int{ownerFile: os.Getpid()})
	serverAlive := mkdir("fiberdb-pg-server", map[string]int{ownerFile: deadPID, "data/postmaster.pid": os.Getpid()})
	unowned := mkdir("fiberdb-pg-unowned", nil)
	foreign := mkdir("other-orphan", map[string]int{ownerFile: deadPID})

	sweepStale(base)

	for _, gone := range []string{orphan, stoppedOrphan} {
		require.NoDirExists(t, gone)
	}
	for _, kept := range []string{live, serverAlive, unowned, foreign} {
		require.DirExists(t, kept)
	}
}
