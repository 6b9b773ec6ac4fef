package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/pgserver"
)

// requirePostgres skips the test when the machine has no PostgreSQL server
// binaries, and fails it instead under CI=true: the demo's point is to start
// one, so CI must never pass by skipping.
func requirePostgres(t *testing.T) {
	t.Helper()
	if _, err := pgserver.FindBinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL server binaries are required under CI=true: %v", err)
		}
		t.Skipf("no PostgreSQL server binaries (%v); install Debian's postgresql package", err)
	}
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// demo is one run of the demo binary.
type demo struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	tmp            string        // its own TMPDIR: the embedded cluster's directory goes there
	exited         chan struct{} // closed once the process has been waited for
	waitErr        error         // what Wait returned; an *exec.ExitError for a non-zero code

	base    string // http://127.0.0.1:PORT, set by waitReady
	dataDir string // the embedded cluster's directory, if any
	client  *http.Client
}

// startDemo runs bin with args and env added to a clean environment: no
// DATABASE_URL, no FIBERDB_ configuration, and a TMPDIR of its own, so that
// what the demo leaves there is its alone. The process is killed, if still
// running, and its TMPDIR removed when the test ends.
func startDemo(t *testing.T, bin string, env []string, args ...string) *demo {
	t.Helper()
	// Not t.TempDir: PostgreSQL's socket lives in there, and a path built
	// from a long test name overflows a Unix socket's 107 bytes.
	tmp, err := os.MkdirTemp("", "fiberdb-demo-tmp-") //nolint:usetesting // see above
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(tmp)) })
	// When the demo runs as root, its PostgreSQL runs as "postgres" and
	// must be able to reach its directory inside this one.
	require.NoError(t, os.Chmod(tmp, 0o755))

	d := &demo{
		cmd:    exec.CommandContext(t.Context(), bin, args...),
		stdout: &syncBuffer{}, stderr: &syncBuffer{},
		tmp: tmp, exited: make(chan struct{}),
		client: &http.Client{Timeout: 15 * time.Second},
	}
	d.cmd.Env = append(cleanEnv(), "TMPDIR="+tmp)
	d.cmd.Env = append(d.cmd.Env, env...)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stderr
	require.NoError(t, d.cmd.Start())
	go func() {
		d.waitErr = d.cmd.Wait() // read only after exited closes
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.client.CloseIdleConnections()
		select {
		case <-d.exited:
		default:
			if err := d.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("kill the demo: %v", err)
			}
			<-d.exited
		}
	})
	return d
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "DATABASE_URL" || name == "TMPDIR" || (strings.HasPrefix(name, "FIBERDB_") && name != "FIBERDB_PG_BINDIR") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

var (
	listeningLine = regexp.MustCompile(`(?m)^listening on (http://\S+)$`)
	dataDirLine   = regexp.MustCompile(`\(data in (\S+)\)`)
)

// waitReady waits until the demo says it is listening, and fails the test if
// it exits first or takes over a minute.
func (d *demo) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if m := listeningLine.FindStringSubmatch(d.stdout.String()); m != nil {
			d.base = m[1]
			if m := dataDirLine.FindStringSubmatch(d.stdout.String()); m != nil {
				d.dataDir = m[1]
			}
			return
		}
		select {
		case <-d.exited:
			t.Fatalf("the demo exited before listening (%v)\nstdout:\n%s\nstderr:\n%s", d.waitErr, d.stdout, d.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo is not listening after a minute\nstdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
		}
	}
}

// wait waits at most timeout for the demo to exit, and returns its code.
func (d *demo) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		t.Fatalf("the demo did not exit within %s\nstdout:\n%s\nstderr:\n%s", timeout, d.stdout, d.stderr)
	}
	return d.cmd.ProcessState.ExitCode()
}

// interrupt sends SIGINT, as Ctrl-C does, and returns the exit code.
func (d *demo) interrupt(t *testing.T) int {
	t.Helper()
	return d.signal(t, os.Interrupt)
}

// signal sends sig and returns the exit code.
func (d *demo) signal(t *testing.T, sig os.Signal) int {
	t.Helper()
	d.client.CloseIdleConnections()
	require.NoError(t, d.cmd.Process.Signal(sig))
	return d.wait(t, 30*time.Second)
}

// request is one HTTP request to the demo. Host, when set, replaces the
// Host header; header may repeat a name.
type request struct {
	method, path, host, body string
	header                   [][2]string
}

// response is what came back, the body read and closed.
type response struct {
	status int
	header http.Header
	body   string
}

func (d *demo) do(t *testing.T, r *request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader = http.NoBody
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), r.method, d.base+r.path, body)
	require.NoError(t, err)
	if r.host != "" {
		req.Host = r.host
	}
	for _, h := range r.header {
		req.Header.Add(h[0], h[1])
	}
	resp, err := d.client.Do(req)
	require.NoError(t, err, "%s %s (Host %s)", r.method, r.path, r.host)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// decode checks that resp has status and a JSON body, and decodes it into v.
func decode(t *testing.T, resp response, status int, v any) {
	t.Helper()
	require.Equal(t, status, resp.status, resp.body)
	require.Equal(t, "application/json", resp.header.Get("Content-Type"), resp.body)
	require.NoError(t, json.Unmarshal([]byte(resp.body), v), resp.body)
}

// requireError checks that resp is status with the JSON body {"error": message}.
func requireError(t *testing.T, resp response, status int, message string) {
	t.Helper()
	var body map[string]any
	decode(t, resp, status, &body)
	require.Equal(t, map[string]any{"error": message}, body)
}

// pgDirs lists the embedded clusters' directories left in dir.
func pgDirs(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "fiberdb-pg-*"))
	require.NoError(t, err)
	return matches
}

// proc identifies a process across pid reuse: its pid and its start time.
type proc struct {
	pid   int
	start string
}

// procStat reads a process's parent, state and start time from /proc.
func procStat(pid int) (ppid int, state, start string, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", "", err
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", "", errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, "", "", errors.New("short stat")
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], f[19], err
}

// descendants lists every process below root: the demo's PostgreSQL server
// and the processes that server started.
func descendants(t *testing.T, root int) []proc {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	children := map[int][]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, _, start, err := procStat(pid)
		if err != nil {
			continue // it exited meanwhile
		}
		children[ppid] = append(children[ppid], proc{pid: pid, start: start})
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}

// running reports whether p still runs: same start time, not a zombie.
func running(p proc) bool {
	_, state, start, err := procStat(p.pid)
	return err == nil && start == p.start && state != "Z"
}

// cmdlinesWith lists the pids of live processes whose command line holds s.
func cmdlinesWith(t *testing.T, s string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		if _, state, _, err := procStat(pid); err == nil && state != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// exists reports whether path exists.
func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	require.NoError(t, err)
	return true
}

// signalOf is the signal that ended the demo, or 0 after a normal exit.
func signalOf(d *demo) syscall.Signal {
	if ws, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return 0
}
