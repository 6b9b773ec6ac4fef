package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/internal/pgbouncer"
)

// mode is one way of serving the app: how its engines connect.
type mode struct {
	name string
	// settings go under FIBERDB.
	settings map[string]any
	// options go on every engine.
	options map[string]any
	// bouncer, when set, starts a PgBouncer for the round.
	bouncer *pgbouncer.Options
}

func budgetMode(s *settings) mode {
	settings := map[string]any{"max_total_conns": s.budget}
	for kv := range strings.SplitSeq(s.extra, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			settings[k] = v // config.Load coerces strings
		}
	}
	return mode{
		name:     "budget",
		settings: settings,
		options:  map[string]any{"pool_max_conns": s.poolSize},
	}
}

// budgetExecMode is budgetMode with pgbouncerMode's exec mode: pgx's
// default caches a prepared statement per connection, which costs a
// round trip on every new connection.
func budgetExecMode(s *settings) mode {
	m := budgetMode(s)
	m.name = "budget-ex"
	m.options = map[string]any{"pool_max_conns": s.poolSize, "default_query_exec_mode": "exec"}
	return m
}

func noBudgetMode(s *settings) mode {
	return mode{name: "nobudget", options: map[string]any{"pool_max_conns": s.poolSize}}
}

// pgbouncerMode routes every engine through PgBouncer 1.18 in transaction
// mode, which keeps no prepared statement across transactions: pgx must not
// cache statements there (exec mode).
func pgbouncerMode(s *settings) mode {
	return mode{
		name:    "pgbouncer",
		options: map[string]any{"pool_max_conns": s.poolSize, "default_query_exec_mode": "exec"},
		bouncer: &pgbouncer.Options{
			Users: []string{role}, PoolMode: "transaction",
			MaxUserConnections: s.budget, DefaultPoolSize: s.poolSize,
			MaxClientConn: s.tenants*s.poolSize + 100,
		},
	}
}

// open starts the mode's PgBouncer, if any, and opens its engines: one per
// tenant, routed by "<tenant>.localhost". stop closes both.
func (m *mode) open(ctx context.Context, e *env) (engines *fiberdb.Engines, stop func(), err error) {
	proxy, stopBouncer := "", func() {}
	if m.bouncer != nil {
		o := *m.bouncer
		o.Server = e.pg.URL()
		b, berr := pgbouncer.Start(ctx, &o)
		if berr != nil {
			return nil, nil, fmt.Errorf("start pgbouncer: %w", berr)
		}
		proxy = net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port()))
		stopBouncer = func() { _ = b.Close() }
	}
	conf, err := m.config(e, proxy)
	if err == nil {
		engines, err = fiberdb.Open(ctx, conf, fiberdb.OpenOptions{Logger: quiet})
	}
	if err != nil {
		stopBouncer()
		return nil, nil, err
	}
	return engines, closer(engines, stopBouncer), nil
}

// closer closes engines, then stops their PgBouncer.
func closer(engines *fiberdb.Engines, stopBouncer func()) func() {
	return func() { engines.Close(); stopBouncer() }
}

func (m *mode) config(e *env, proxy string) (*config.Config, error) {
	engines := map[string]any{config.DefaultEngine: e.url(e.tenants[0], proxy)}
	for _, name := range e.tenants {
		opts := map[string]any{"url": e.url(name, proxy), "hosts": []any{name + ".localhost"}}
		for k, v := range m.options {
			opts[k] = v
		}
		engines[name] = opts
	}
	root := map[string]any{config.DefaultKey: engines}
	if m.settings != nil {
		root[config.DefaultSettingsKey] = m.settings
	}
	k := koanf.New(".")
	err := k.Load(confmap.Provider(root, ""), nil)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	conf, err := config.Load(k)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return conf, nil
}
