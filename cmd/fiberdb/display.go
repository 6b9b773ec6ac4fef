package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/fiberdb/fiberdb/internal/cliutil"
	"github.com/fiberdb/fiberdb/lifecycle"
)

// statusWidth bounds the live status line, so that it never wraps (a
// wrapped line cannot be redrawn in place) on a terminal of 80 columns.
const statusWidth = 79

// display shows a migration run as it goes: on a terminal, one status line
// redrawn in place; elsewhere, a plain line as each migration starts. Its
// step method is lifecycle's Progress, whose calls are serialized.
type display struct {
	w     io.Writer
	tty   bool
	total int

	done, failed int
	running      []string          // tenants in progress, in start order
	current      map[string]string // tenant → the migration it runs
}

func newDisplay(w io.Writer, environ []string, total int) *display {
	return &display{w: w, tty: isTerminal(w, environ), total: total, current: map[string]string{}}
}

// isTerminal reports whether w is a terminal that can redraw a line.
func isTerminal(w io.Writer, environ []string) bool {
	f, ok := w.(*os.File)
	if !ok || lookupEnv(environ, "TERM") == "dumb" {
		return false
	}
	return isatty.IsTerminal(f.Fd())
}

func (d *display) step(s lifecycle.Step) {
	switch s.Kind {
	case lifecycle.StepStart:
		d.running = append(d.running, s.Tenant)
	case lifecycle.StepMigration:
		d.current[s.Tenant] = s.Migration
		if !d.tty {
			fmt.Fprintf(d.w, "%s: %s\n", s.Tenant, s.Migration)
		}
	case lifecycle.StepDone:
		d.done++
		if s.Result.Err != nil {
			d.failed++
		}
		delete(d.current, s.Tenant)
		for i, name := range d.running {
			if name == s.Tenant {
				d.running = append(d.running[:i], d.running[i+1:]...)
				break
			}
		}
	}
	if d.tty {
		fmt.Fprint(d.w, "\r\x1b[K"+d.status())
	}
}

// status is the live line: "[37/200] 1 failed · acme 002_add_todos.sql, globex …".
func (d *display) status() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%d/%d]", d.done, d.total)
	if d.failed > 0 {
		fmt.Fprintf(&b, " %d failed", d.failed)
	}
	for i, name := range d.running {
		sep := " · "
		if i > 0 {
			sep = ", "
		}
		item := name
		if m := d.current[name]; m != "" {
			item += " " + m
		}
		if b.Len()+len(sep)+len(item) > statusWidth-2 {
			b.WriteString(" …")
			break
		}
		b.WriteString(sep + item)
	}
	return b.String()
}

// finish clears the status line and prints one line per tenant, in name
// order, and a summary.
func (d *display) finish(results []lifecycle.Result, elapsed time.Duration) {
	if d.tty {
		fmt.Fprint(d.w, "\r\x1b[K")
	}
	width := 0
	for i := range results {
		width = max(width, len(results[i].Tenant))
	}
	migrated, upToDate, failed := 0, 0, 0
	for i := range results {
		r := &results[i]
		fmt.Fprintln(d.w, resultLine(r, width))
		switch {
		case r.Err != nil:
			failed++
		case r.UpToDate():
			upToDate++
		default:
			migrated++
		}
	}
	fmt.Fprintf(d.w, "%d tenants in %s: %d migrated, %d up to date, %d failed\n",
		len(results), round(elapsed), migrated, upToDate, failed)
}

// resultLine is a tenant's final line; tenants that shared one run (a pool
// engine and its row-level-security tenants) each get its outcome and name
// the others:
//
//	acme     0 → 3  migrated in 41ms
//	globex   3 → 3  up to date in 2ms
//	initech  0 → 1  FAILED in 12ms: 002_todos.sql: ERROR: … (SQLSTATE 42P07)
//	r1       0 → 3  migrated in 45ms, shared with r2, r3 and saas
func resultLine(r *lifecycle.Result, width int) string {
	versions := version(r.From) + " → " + version(r.To)
	in := " in " + round(r.Duration).String() + sharedWith(r.Shared)
	var outcome string
	switch {
	case r.Err != nil:
		outcome = "FAILED" + in + ": " + cliutil.OneLine(r.Err)
	case r.UpToDate():
		outcome = "up to date" + in
	default:
		outcome = "migrated" + in
	}
	return fmt.Sprintf("%-*s  %s  %s", width, r.Tenant, versions, outcome)
}

// sharedWith notes the other tenants of a shared run: ", shared with r2, r3
// and saas", or ", shared with r2, r3 and 97 more"; "" for a run of one.
func sharedWith(names []string) string {
	switch n := len(names); {
	case n == 0:
		return ""
	case n == 1:
		return ", shared with " + names[0]
	case n <= 3:
		return ", shared with " + strings.Join(names[:n-1], ", ") + " and " + names[n-1]
	default:
		return fmt.Sprintf(", shared with %s, %s and %d more", names[0], names[1], n-2)
	}
}

func version(v int64) string {
	if v < 0 {
		return "?"
	}
	return strconv.FormatInt(v, 10)
}

// round keeps durations readable: 41ms, 1.23s.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
