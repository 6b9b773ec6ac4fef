package pgserver

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dirPattern names the temporary directory of every server Start
// runs; ownerFile, inside it, holds the process ID of the process that
// started it.
const (
	dirPattern = "fiberdb-pg-*"
	ownerFile  = "owner.pid"
)

// sweepStale removes the directories under base that servers started by
// processes now dead left behind. Pdeathsig stops the server of a process
// killed outright, but nothing deletes its files. A directory is removed only
// when its owner.pid names a process that no longer exists and its server's
// postmaster.pid, if any, does too; a directory without owner.pid (being
// created, or from an older fiberdbtest) is left alone. Errors are ignored:
// the sweep is housekeeping, and another user's directory is theirs.
func sweepStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPattern)) //nolint:errcheck // the pattern is valid
	for _, dir := range dirs {
		owner, ok := readPID(filepath.Join(dir, ownerFile))
		if !ok || alive(owner) {
			continue
		}
		if server, ok := readPID(filepath.Join(dir, "data", "postmaster.pid")); ok && alive(server) {
			continue
		}
		_ = os.RemoveAll(dir) // housekeeping, see above
	}
}

// readPID reads the process ID on the first line of path.
func readPID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	return pid, err == nil && pid > 0
}

// alive reports whether process pid exists. A process of another user
// answers EPERM, and exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// writeOwner records this process as dir's owner.
func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600) //nolint:wrapcheck // the caller wraps it
}
