// Package pgserver runs a private, throwaway PostgreSQL server from the
// machine's binaries, for tests and demos: its own data directory in a
// temporary folder, a free port on 127.0.0.1, trust authentication, fsync
// off. It never touches a server it did not start, except to create and drop
// databases on one given to [Connect].
//
// It imports nothing of testing, so programs (cmd/demo, benchmarks) can use
// it; fiberdbtest builds its test helpers on it.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fiberdb/fiberdb/internal/pgproc"
)

// ErrNoBinaries: no PostgreSQL server binaries were found. Install Debian's
// postgresql package, or set FIBERDB_PG_BINDIR.
var ErrNoBinaries = errors.New("pgserver: no PostgreSQL server binaries (initdb, postgres) found")

// Server is a private PostgreSQL server: its own data directory in a
// temporary folder, listening on 127.0.0.1 on a free port, trusting every
// local connection. It is meant for tests and demos, never for data you keep
// (fsync is off).
//
// The server runs as a child of this process. If the process dies without
// calling Close, the kernel sends the server SIGQUIT (a parent-death signal),
// so it never outlives its parent.
type Server struct {
	base *url.URL // superuser DSN; Path is replaced per database

	// Set only for a server this package started.
	bindir   string
	dir      string
	port     int
	maxConns int
	cred     *syscall.Credential

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	started bool
}

// Options configures [Start].
type Options struct {
	// BinDir holds initdb and postgres.
	//
	// Optional. Default: $FIBERDB_PG_BINDIR, else `pg_config --bindir`, else
	// the newest /usr/lib/postgresql/*/bin.
	BinDir string

	// MaxConnections is the server's max_connections. Three of them are
	// reserved for superusers (superuser_reserved_connections), so a role
	// that is not one gets MaxConnections-3.
	//
	// Optional. Default: 300
	MaxConnections int
}

// Start creates a cluster in a new temporary directory and starts a
// server on it. When the process runs as root, which PostgreSQL refuses, the
// server runs as the "postgres" user. The caller must [Server.Close] it.
//
// It first deletes the directories that servers of processes killed outright
// (which Close never ran for) left in the temporary folder.
func Start(ctx context.Context, opts ...Options) (*Server, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	bindir := o.BinDir
	if bindir == "" {
		var err error
		if bindir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	cred, err := pgproc.Credential()
	if err != nil {
		return nil, err
	}
	sweepStale(os.TempDir())
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err = writeOwner(dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	maxConns := o.MaxConnections
	if maxConns <= 0 {
		maxConns = 300
	}
	p := &Server{bindir: bindir, dir: dir, cred: cred, maxConns: maxConns}
	if err = p.initdb(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// A port picked free can be taken before the server binds it: retry.
	for attempt := 0; ; attempt++ {
		if p.port, err = pgproc.FreePort(ctx); err == nil {
			p.base = &url.URL{
				Scheme: "postgres", User: url.User("postgres"),
				Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), Path: "/postgres",
				RawQuery: "sslmode=disable",
			}
			if err = p.Start(ctx); err == nil {
				return p, nil
			}
		}
		if attempt == 2 || ctx.Err() != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// Connect wraps an existing server, given by a superuser URL, so
// that tests can create databases on it. Its Stop, Start and Close do not
// touch the server.
func Connect(rawURL string) (*Server, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("pgserver: database URL must be a postgres:// URL")
	}
	return &Server{base: u}, nil
}

// FindBinDir returns the directory holding the PostgreSQL server binaries:
// $FIBERDB_PG_BINDIR, else `pg_config --bindir`, else the newest
// /usr/lib/postgresql/*/bin (Debian does not put them on PATH).
func FindBinDir() (string, error) {
	has := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "initdb")) //nolint:gosec // G703: the directory is the operator's own setting
		return err == nil
	}
	if dir := os.Getenv("FIBERDB_PG_BINDIR"); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("FIBERDB_PG_BINDIR=%s: %w", dir, ErrNoBinaries)
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		out, err := exec.Command(pgConfig, "--bindir").Output() //nolint:noctx // a local, instant command
		if dir := strings.TrimSpace(string(out)); err == nil && has(dir) {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb") //nolint:errcheck // the pattern is valid
	sort.Slice(matches, func(i, j int) bool { return pgVersion(matches[i]) > pgVersion(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	return "", ErrNoBinaries
}

func pgVersion(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb)))) //nolint:errcheck // a non-numeric version sorts last
	return v
}

// URL returns the superuser connection string of the "postgres" database.
func (p *Server) URL() string { return p.ConnString("postgres") }

// ConnString returns the superuser connection string of database. It always
// has a query string, so a test can add a parameter with "&name=value"; a
// [Connect] URL without one gets sslmode, spelled as pgx would default it
// ($PGSSLMODE, else prefer), which changes nothing.
func (p *Server) ConnString(database string) string {
	u := *p.base
	u.Path = "/" + database
	if u.RawQuery == "" {
		mode := os.Getenv("PGSSLMODE")
		if mode == "" {
			mode = "prefer"
		}
		u.RawQuery = "sslmode=" + url.QueryEscape(mode)
	}
	return u.String()
}

// Port returns the port the server listens on (0 for a [Connect] server).
func (p *Server) Port() int { return p.port }

// Dir returns the server's temporary directory ("" for a [Connect] server).
func (p *Server) Dir() string { return p.dir }

// PID returns the server's process id, or 0 when it is not running.
func (p *Server) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return 0
	}
	return p.cmd.Process.Pid
}

// Start starts the server on its data directory and waits until it accepts
// connections. It is for restarting a server after [Server.Stop]; a
// running server is left alone.
func (p *Server) Start(ctx context.Context) error {
	if p.dir == "" {
		return errors.New("pgserver: cannot start a server this process did not create")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(p.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	defer logf.Close()
	//nolint:gosec,noctx // G204: the binary is the machine's own PostgreSQL; the server outlives ctx and Stop ends it
	cmd := exec.Command(filepath.Join(p.bindir, "postgres"),
		"-D", filepath.Join(p.dir, "data"), "-k", p.dir, "-p", strconv.Itoa(p.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections="+strconv.Itoa(p.maxConns), "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = p.sysProcAttr()
	// Pdeathsig fires when the thread that forked the child exits; a locked
	// thread is only ever that of the goroutine that locked it, so lock for
	// the fork and let the runtime keep the thread.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() //nolint:errcheck // the exit status is in postgres.log
	p.cmd, p.exited, p.started = cmd, exited, true

	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, p.URL())
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-exited:
			p.started = false
			return fmt.Errorf("start postgres: server exited; see %s: %w", filepath.Join(p.dir, "postgres.log"), err)
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("start postgres: %w", ctx.Err()), p.stopLocked(syscall.SIGINT))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("start postgres: not ready after 30s: %w", err), p.stopLocked(syscall.SIGINT))
		}
	}
}

// Stop shuts the server down (fast shutdown: sessions are ended) and keeps
// its data, so [Server.Start] can bring it back.
func (p *Server) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopLocked(syscall.SIGINT)
}

// stopLocked sends sig (SIGINT: fast shutdown; SIGQUIT: immediate, for data
// about to be deleted) and waits for the server to exit.
func (p *Server) stopLocked(sig syscall.Signal) error {
	if !p.started {
		return nil
	}
	p.started = false
	_ = p.cmd.Process.Signal(sig) //nolint:errcheck // it may have exited already
	select {
	case <-p.exited:
		return nil
	case <-time.After(15 * time.Second):
	}
	_ = p.cmd.Process.Kill() //nolint:errcheck // it may have exited already
	<-p.exited
	return errors.New("pgserver: postgres did not stop in 15s and was killed")
}

// Close stops the server at once (an immediate shutdown: the data is about
// to be deleted) and removes its directory. It is safe to call twice.
func (p *Server) Close() error {
	if p.dir == "" {
		return nil
	}
	p.mu.Lock()
	err := p.stopLocked(syscall.SIGQUIT)
	p.mu.Unlock()
	if rmErr := os.RemoveAll(p.dir); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	return err
}

// CreateDatabase creates database name, copied from template ("" for the
// server's default).
func (p *Server) CreateDatabase(ctx context.Context, name, template string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	return p.exec(ctx, sql)
}

// DropDatabase drops database name, ending its sessions first; a template
// database is unmarked first, since PostgreSQL refuses to drop one. A missing
// database is not an error.
func (p *Server) DropDatabase(ctx context.Context, name string) error {
	// ALTER DATABASE has no IF EXISTS; a DO block gives it one. DROP
	// DATABASE cannot run in the DO block's transaction: a second statement.
	return p.exec(ctx,
		fmt.Sprintf(`DO $$ BEGIN
	IF EXISTS (SELECT FROM pg_database WHERE datname = %[1]s AND datistemplate) THEN
		EXECUTE format('ALTER DATABASE %%I IS_TEMPLATE false', %[1]s);
	END IF;
END $$`, quoteLiteral(name)),
		"DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// SetTemplate marks database name as a template (or unmarks it), so that any
// user with CREATEDB may copy it and PostgreSQL refuses to drop it.
func (p *Server) SetTemplate(ctx context.Context, name string, template bool) error {
	return p.exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE "+strconv.FormatBool(template))
}

// Exec runs each statement in order on one superuser connection to the
// "postgres" database, each outside a transaction block (so CREATE and DROP
// DATABASE work).
func (p *Server) Exec(ctx context.Context, statements ...string) error {
	return p.exec(ctx, statements...)
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on, so only ' needs doubling).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (p *Server) exec(ctx context.Context, statements ...string) error {
	conn, err := pgx.Connect(ctx, p.URL())
	if err != nil {
		return fmt.Errorf("pgserver: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, sql := range statements {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
	}
	return nil
}

func (p *Server) initdb(ctx context.Context) error {
	data := filepath.Join(p.dir, "data")
	//nolint:gosec // G204: the binary is the machine's own PostgreSQL, its arguments fixed
	cmd := exec.CommandContext(ctx, filepath.Join(p.bindir, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C")
	cmd.SysProcAttr = p.sysProcAttr()
	if p.cred != nil {
		if err := os.Chown(p.dir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (p *Server) sysProcAttr() *syscall.SysProcAttr {
	// Setpgid keeps a terminal's Ctrl-C (sent to the foreground group) from
	// reaching the server before its parent has shut down cleanly.
	return &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
}
