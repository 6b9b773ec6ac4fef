// Command migratebench times "fiberdb migrate" over many tenant databases:
// the first run, which applies every migration, and a second run, which has
// nothing to apply. It starts a private PostgreSQL, creates the landlord
// database and -tenants tenant databases, writes a config and a few
// migrations into a temporary directory, and runs the fiberdb binary given
// by -bin (bench/migrate.sh builds it) twice.
//
// The baseline, measured in the same run and alternating with the no-op run
// (5 rounds, medians compared), is the least any tool must do to learn that
// a tenant is up to date: open a connection to each tenant database and
// read one row, with the same parallelism.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fiberdb/fiberdb/pgserver"
)

var migrations = map[string]string{
	"001_accounts.sql": `CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now());
---- create above / drop below ----
DROP TABLE accounts;
`,
	"002_todos.sql": `CREATE TABLE todos (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts, title text NOT NULL, done boolean NOT NULL DEFAULT false);
CREATE INDEX todos_account ON todos (account_id) WHERE NOT done;
`,
	"003_tags.sql": `CREATE TABLE tags (todo_id bigint NOT NULL REFERENCES todos ON DELETE CASCADE, tag text NOT NULL, PRIMARY KEY (todo_id, tag));
ALTER TABLE todos ADD COLUMN due date;
`,
}

func main() {
	bin := flag.String("bin", "", "the fiberdb binary (required)")
	tenants := flag.Int("tenants", 200, "how many tenant databases")
	parallel := flag.Int("parallel", 4, "fiberdb migrate's -parallel, and the baseline's")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "usage: migratebench -bin path/to/fiberdb [-tenants 200] [-parallel 4]")
		os.Exit(2)
	}
	if err := run(*bin, *tenants, *parallel); err != nil {
		fmt.Fprintln(os.Stderr, "migratebench:", err)
		os.Exit(1)
	}
}

func run(bin string, n, parallel int) error {
	ctx := context.Background()
	pg, err := pgserver.Start(ctx)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	dir, err := os.MkdirTemp("", "migratebench-")
	if err == nil {
		err = measure(ctx, pg, dir, bin, n, parallel)
		err = errors.Join(err, os.RemoveAll(dir))
	}
	return errors.Join(err, pg.Close())
}

// measure creates the databases, the config and the migrations in dir, and
// prints the times.
func measure(ctx context.Context, pg *pgserver.Server, dir, bin string, n, parallel int) error {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("tenant_%03d", i)
	}
	start := time.Now()
	if err := pg.CreateDatabase(ctx, "central", ""); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	if err := each(names, parallel, func(name string) error { return pg.CreateDatabase(ctx, name, "") }); err != nil {
		return fmt.Errorf("create databases: %w", err)
	}
	fmt.Printf("created %d tenant databases in %s\n", n, time.Since(start).Round(time.Millisecond))

	var cfg strings.Builder
	fmt.Fprintf(&cfg, "SQLALCHEMY_ENGINES:\n  default: %q\n", pg.ConnString("central"))
	for _, name := range names {
		fmt.Fprintf(&cfg, "  %s: %q\n", name, pg.ConnString(name))
	}
	if err := os.WriteFile(filepath.Join(dir, "fiberdb.yaml"), []byte(cfg.String()), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "migrations"), 0o750); err != nil {
		return fmt.Errorf("write migrations: %w", err)
	}
	for file, body := range migrations {
		if err := os.WriteFile(filepath.Join(dir, "migrations", file), []byte(body), 0o600); err != nil {
			return fmt.Errorf("write migrations: %w", err)
		}
	}

	first, summary, err := migrate(ctx, bin, dir, parallel)
	if err != nil {
		return err
	}
	fmt.Printf("first run:  %s  (%s)\n", first.Round(time.Millisecond), summary)

	// The no-op run and the baseline alternate, so that both see the same
	// load on a shared machine; the medians are compared.
	var noops, bases []time.Duration
	for round := range rounds {
		noop, summary, err := migrate(ctx, bin, dir, parallel)
		if err != nil {
			return err
		}
		base, err := baseline(ctx, pg, names, parallel)
		if err != nil {
			return err
		}
		noops, bases = append(noops, noop), append(bases, base)
		fmt.Printf("round %d: no-op run %s (%s); baseline %s\n", round+1, noop.Round(time.Millisecond), summary, base.Round(time.Millisecond))
	}
	noop, base := median(noops), median(bases)
	fmt.Printf("median no-op run: %s, %s a tenant\n", noop.Round(time.Millisecond), (noop / time.Duration(n)).Round(10*time.Microsecond))
	fmt.Printf("median baseline:  %s, %s a tenant (connect to each tenant database and SELECT 1, %d at a time)\n",
		base.Round(time.Millisecond), (base / time.Duration(n)).Round(10*time.Microsecond), parallel)
	fmt.Printf("no-op run / baseline = %.2f (per round:", float64(noop)/float64(base))
	for i := range noops {
		fmt.Printf(" %.2f", float64(noops[i])/float64(bases[i]))
	}
	fmt.Println(")")
	return nil
}

// rounds is how many times the no-op run and the baseline alternate.
const rounds = 5

// baseline connects to each tenant database and reads one row, parallel at
// a time: the least any tool must do to learn a tenant's version.
func baseline(ctx context.Context, pg *pgserver.Server, names []string, parallel int) (time.Duration, error) {
	start := time.Now()
	err := each(names, parallel, func(name string) error {
		conn, cerr := pgx.Connect(ctx, pg.ConnString(name))
		if cerr != nil {
			return cerr
		}
		var one int
		return errors.Join(conn.QueryRow(ctx, "SELECT 1").Scan(&one), conn.Close(ctx))
	})
	if err != nil {
		return 0, fmt.Errorf("baseline: %w", err)
	}
	return time.Since(start), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// migrate runs "fiberdb migrate" once and returns its time and summary line.
func migrate(ctx context.Context, bin, dir string, parallel int) (time.Duration, string, error) {
	cmd := exec.CommandContext(ctx, bin, "migrate", //nolint:gosec // G204: timing the binary given by -bin is the point
		"-config", "fiberdb.yaml", "-dir", "migrations", "-parallel", strconv.Itoa(parallel))
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.Output()
	elapsed := time.Since(start)
	if err != nil {
		return 0, "", fmt.Errorf("fiberdb migrate: %w\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return elapsed, lines[len(lines)-1], nil
}

// each runs f on every name, parallel at a time, and joins the errors.
func each(names []string, parallel int, f func(string) error) error {
	next := make(chan string)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for name := range next {
				if err := f(name); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, name := range names {
		next <- name
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}
