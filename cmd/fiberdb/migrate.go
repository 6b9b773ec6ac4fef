package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/fiberdb/fiberdb/lifecycle"
)

// migrateCommand is "fiberdb migrate".
func migrateCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs, configPath, dir := commandFlags("fiberdb migrate", stderr, "")
	only := fs.String("tenants", "", "comma-separated `names` of the tenants to migrate (default: every engine but default)")
	parallel := fs.Int("parallel", max(runtime.NumCPU(), 4), "how many tenants migrate at once")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *parallel < 1 {
		return usagef("-parallel must be at least 1")
	}
	conf, err := loadConfig(ctx, *configPath, environ)
	if err != nil {
		return err
	}
	migs, err := loadMigrations(*dir)
	if err != nil {
		return err
	}
	tenants, err := lifecycle.Tenants(conf, splitList(*only))
	if err != nil {
		return &usageError{err: err}
	}

	d := newDisplay(stdout, environ, len(tenants))
	start := time.Now()
	results, err := lifecycle.Migrate(ctx, conf, migs, lifecycle.Options{
		Tenants:  tenants,
		Parallel: *parallel,
		Progress: d.step,
	})
	d.finish(results, time.Since(start))
	if errors.Is(err, lifecycle.ErrFailed) {
		return errReported
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// loadMigrations reads dir's migrations; every error is a *usageError.
func loadMigrations(dir string) (*lifecycle.Migrations, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, usagef("-dir %s: not a directory of migrations", dir)
	}
	migs, err := lifecycle.LoadMigrations(os.DirFS(dir))
	if err != nil {
		return nil, usagef("-dir %s: %w", dir, err)
	}
	return migs, nil
}

// commandFlags starts the flags of a command: -config and -dir, whose
// usage ends with dirNote.
func commandFlags(name string, stderr io.Writer, dirNote string) (fs *flag.FlagSet, configPath, dir *string) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath = fs.String("config", "fiberdb.yaml", "configuration `file` (YAML); \"\" reads the environment only")
	dir = fs.String("dir", "migrations", "`directory` of the migration files (NNN_name.sql)"+dirNote)
	return fs, configPath, dir
}

// parseFlags parses args, flags and positional arguments in any order, and
// returns the positional ones: exactly want of them. -h prints the usage
// and returns errHelp.
func parseFlags(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &usageError{err: err, printed: true}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != want {
		if len(positional) > want {
			return nil, usagef("%s: unexpected argument %q", fs.Name(), positional[want])
		}
		return nil, usagef("%s: missing argument", fs.Name())
	}
	return positional, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
