package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/lifecycle"
)

// On a terminal the display redraws one status line in place and clears it
// before the final lines; a file gets no escape sequence at all.
func TestDisplayOnATerminal(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	d := &display{w: &out, tty: true, total: 3, current: map[string]string{}}
	d.step(lifecycle.Step{Kind: lifecycle.StepStart, Tenant: "acme"})
	d.step(lifecycle.Step{Kind: lifecycle.StepStart, Tenant: "globex"})
	d.step(lifecycle.Step{Kind: lifecycle.StepMigration, Tenant: "acme", Version: 2, Migration: "002_todos.sql"})
	require.Equal(t, "[0/3] · acme 002_todos.sql, globex", d.status())

	failed := lifecycle.Result{Tenant: "globex", From: 1, To: 1, Duration: 12 * time.Millisecond, Err: errors.New("002_todos.sql: boom\nsecond line")}
	d.step(lifecycle.Step{Kind: lifecycle.StepDone, Tenant: "globex", Result: &failed})
	require.Equal(t, "[1/3] 1 failed · acme 002_todos.sql", d.status())
	require.NotContains(t, out.String(), "\n", "only redraws so far")
	require.True(t, strings.HasSuffix(out.String(), "\r\x1b[K[1/3] 1 failed · acme 002_todos.sql"))

	out.Reset()
	d.finish([]lifecycle.Result{
		{Tenant: "acme", From: 0, To: 2, Duration: 41 * time.Millisecond},
		failed,
		{Tenant: "initech", From: -1, To: -1, Duration: time.Millisecond, Err: errors.New("read version: refused")},
	}, 1234*time.Millisecond)
	require.Equal(t, "\r\x1b[K"+
		"acme     0 → 2  migrated in 41ms\n"+
		"globex   1 → 1  FAILED in 12ms: 002_todos.sql: boom; second line\n"+
		"initech  ? → ?  FAILED in 1ms: read version: refused\n"+
		"3 tenants in 1.23s: 1 migrated, 0 up to date, 2 failed\n", out.String())
}

func TestDisplayStatusFitsOneLine(t *testing.T) {
	t.Parallel()
	d := &display{w: &bytes.Buffer{}, tty: true, total: 200, current: map[string]string{}}
	for _, name := range []string{"alpha-corporation", "beta-industries", "gamma-holdings", "delta-partners", "epsilon"} {
		d.step(lifecycle.Step{Kind: lifecycle.StepStart, Tenant: name})
		d.step(lifecycle.Step{Kind: lifecycle.StepMigration, Tenant: name, Migration: "017_add_invoice_indexes.sql"})
	}
	require.LessOrEqual(t, len([]rune(d.status())), statusWidth)
	require.True(t, strings.HasSuffix(d.status(), " …"))
}

// Tenants that shared one run (a pool engine and its row-level-security
// tenants) each get its line, naming the others.
func TestDisplaySharedRun(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	d := &display{w: &out, total: 3, current: map[string]string{}}
	d.finish([]lifecycle.Result{
		{Tenant: "r1", From: 0, To: 1, Duration: 45 * time.Millisecond, Shared: []string{"saas"}},
		{Tenant: "r2", From: 1, To: 1, Duration: 2 * time.Millisecond, Shared: []string{"r3", "saas"}},
		{Tenant: "r3", From: 0, To: 0, Duration: time.Millisecond, Shared: []string{"r1", "r2", "r4", "saas"}, Err: errors.New("001_init.sql: boom")},
	}, 50*time.Millisecond)
	require.Equal(t, ""+
		"r1  0 → 1  migrated in 45ms, shared with saas\n"+
		"r2  1 → 1  up to date in 2ms, shared with r3 and saas\n"+
		"r3  0 → 0  FAILED in 1ms, shared with r1, r2 and 2 more: 001_init.sql: boom\n"+
		"3 tenants in 50ms: 1 migrated, 1 up to date, 1 failed\n", out.String())
}
