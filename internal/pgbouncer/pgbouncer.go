// Package pgbouncer starts a throwaway PgBouncer in front of a test
// PostgreSQL server, from the machine's own pgbouncer binary (Debian's
// package), on a free loopback port. It is for tests and benchmarks only:
// authentication is "trust".
//
// PgBouncer refuses to run as root, so when the process is root it runs as
// the "postgres" user, and it dies with its parent (a parent-death signal).
package pgbouncer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fiberdb/fiberdb/internal/pgproc"
)

// ErrNotInstalled means no pgbouncer binary was found.
var ErrNotInstalled = errors.New("pgbouncer: no pgbouncer binary found (Debian: apt-get install pgbouncer)")

// Options configures [Start].
type Options struct {
	// Server is a superuser URL of the PostgreSQL server to pool, for
	// example postgres://postgres@127.0.0.1:5432/postgres. Its host and
	// port are used; every database on it is reachable through PgBouncer.
	//
	// Required.
	Server string

	// Users may connect through PgBouncer; "trust" authentication still
	// needs them listed.
	//
	// Optional. Default: the Server URL's user
	Users []string

	// PoolMode is "session", "transaction" or "statement".
	//
	// Optional. Default: "transaction"
	PoolMode string

	// DefaultPoolSize is the server connections per database and user.
	//
	// Optional. Default: 20
	DefaultPoolSize int

	// MaxUserConnections caps one user's server connections across all
	// databases; 0 means no cap.
	//
	// Optional. Default: 0
	MaxUserConnections int

	// MaxClientConn caps client connections.
	//
	// Optional. Default: 2000
	MaxClientConn int
}

// PgBouncer is a running PgBouncer. [PgBouncer.Close] stops it.
type PgBouncer struct {
	port int
	dir  string
	user string
	cmd  *exec.Cmd
	done chan struct{}
	exit error
}

// Start writes a configuration into a new temporary directory and starts
// PgBouncer on it, waiting until it accepts connections.
func Start(ctx context.Context, o *Options) (*PgBouncer, error) {
	if o == nil {
		return nil, errors.New("pgbouncer: nil Options")
	}
	opts := *o
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	server, err := url.Parse(opts.Server)
	if err != nil || server.Hostname() == "" {
		return nil, errors.New("pgbouncer: Options.Server must be a postgres:// URL with a host")
	}
	defaults(&opts, server)
	cred, err := pgproc.Credential()
	if err != nil {
		return nil, err
	}
	port, err := pgproc.FreePort(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fiberdb-pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: %w", err)
	}
	b := &PgBouncer{port: port, dir: dir, user: opts.Users[0], done: make(chan struct{})}
	if err := b.writeConfig(&opts, server, cred); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// It outlives ctx, which bounds only the start.
	b.cmd = exec.CommandContext(context.WithoutCancel(ctx), bin, filepath.Join(dir, "pgbouncer.ini"))
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	b.cmd.Stdout, b.cmd.Stderr = nil, nil
	if err := b.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgbouncer: start: %w", err)
	}
	go func() {
		b.exit = b.cmd.Wait() // read only after done closes
		close(b.done)
	}()
	if err := b.waitReady(ctx); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	return b, nil
}

func defaults(o *Options, server *url.URL) {
	if len(o.Users) == 0 {
		o.Users = []string{server.User.Username()}
	}
	if o.PoolMode == "" {
		o.PoolMode = "transaction"
	}
	if o.DefaultPoolSize == 0 {
		o.DefaultPoolSize = 20
	}
	if o.MaxClientConn == 0 {
		o.MaxClientConn = 2000
	}
}

func (b *PgBouncer) writeConfig(o *Options, server *url.URL, cred *syscall.Credential) error {
	port := server.Port()
	if port == "" {
		port = "5432"
	}
	ini := strings.Join([]string{
		"[databases]",
		fmt.Sprintf("* = host=%s port=%s", server.Hostname(), port),
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		"listen_port = " + strconv.Itoa(b.port),
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + filepath.Join(b.dir, "userlist.txt"),
		"pool_mode = " + o.PoolMode,
		"default_pool_size = " + strconv.Itoa(o.DefaultPoolSize),
		"max_user_connections = " + strconv.Itoa(o.MaxUserConnections),
		"max_client_conn = " + strconv.Itoa(o.MaxClientConn),
		"ignore_startup_parameters = extra_float_digits",
		"logfile = " + filepath.Join(b.dir, "pgbouncer.log"),
		"pidfile = " + filepath.Join(b.dir, "pgbouncer.pid"),
		"",
	}, "\n")
	var users strings.Builder
	for _, u := range o.Users {
		fmt.Fprintf(&users, "%q \"\"\n", u)
	}
	files := map[string]string{"pgbouncer.ini": ini, "userlist.txt": users.String()}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(b.dir, name), []byte(body), 0o600); err != nil {
			return fmt.Errorf("pgbouncer: %w", err)
		}
	}
	if cred == nil {
		return nil
	}
	for _, name := range []string{"", "pgbouncer.ini", "userlist.txt"} {
		if err := os.Chown(filepath.Join(b.dir, name), int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgbouncer: %w", err)
		}
	}
	return nil
}

// waitReady polls the port until PgBouncer listens, it exits, or ctx ends.
func (b *PgBouncer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", b.addr())
		if err == nil {
			return c.Close() //nolint:wrapcheck // a probe socket; its Close error is the answer
		}
		select {
		case <-b.done:
			return fmt.Errorf("pgbouncer: exited at start (%w): %s", b.exit, b.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgbouncer: not ready: %w: %s", ctx.Err(), b.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (b *PgBouncer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// URL returns a URL for database through PgBouncer, as the first of
// Options.Users.
func (b *PgBouncer) URL(database string) string {
	u := url.URL{Scheme: "postgres", User: url.User(b.user), Host: b.addr(), Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// Dir returns the directory holding its configuration and log.
func (b *PgBouncer) Dir() string { return b.dir }

// Port returns the port PgBouncer listens on.
func (b *PgBouncer) Port() int { return b.port }

// Close stops PgBouncer and removes its directory. It is safe to call twice.
func (b *PgBouncer) Close() error {
	if b.cmd.Process != nil {
		// SIGINT is PgBouncer's immediate shutdown. A process that already
		// exited answers os.ErrProcessDone, which is what Close wants.
		if err := b.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("pgbouncer: stop: %w", err)
		}
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			if err := b.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				return fmt.Errorf("pgbouncer: kill: %w", err)
			}
			<-b.done
		}
	}
	if err := os.RemoveAll(b.dir); err != nil {
		return fmt.Errorf("pgbouncer: %w", err)
	}
	return nil
}

// logTail returns the last lines of PgBouncer's log, for errors.
func (b *PgBouncer) logTail() string {
	f, err := os.Open(filepath.Join(b.dir, "pgbouncer.log"))
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > 5 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, " | ")
}

func findBinary() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}
