package fiberdb

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

// loadPC loads one engine with opts (url defaulted) and returns its pool
// config, as Open and Apply see it.
func loadPC(t *testing.T, opts map[string]any) *pgxpool.Config {
	t.Helper()
	e := map[string]any{"url": "postgres://u@127.0.0.1:1/db?sslmode=disable"}
	for k, v := range opts {
		e[k] = v
	}
	return looseConf(t, map[string]any{"x": e}, nil).Engines["x"].PoolConfig()
}

// looseConf loads engines, which need not include "default", and
// settings (FIBERDB; nil for none).
func looseConf(t *testing.T, engines, settings map[string]any) *config.Config {
	t.Helper()
	m := map[string]any{config.DefaultKey: engines}
	if settings != nil {
		m[config.DefaultSettingsKey] = settings
	}
	k := koanf.New(".")
	require.NoError(t, k.Load(confmap.Provider(m, ""), nil))
	conf, err := config.Load(k, config.Options{AllowEmpty: true})
	require.NoError(t, err)
	return conf
}

// openAB opens engines a and b with settings. Their pools never connect:
// the url's port is closed and nothing dials it, so they can open inside a
// synctest bubble. The caller closes the engines.
func openAB(t *testing.T, settings map[string]any) *Engines {
	t.Helper()
	e, err := Open(t.Context(), looseConf(t, map[string]any{
		"a": "postgres://u@127.0.0.1:1/a",
		"b": "postgres://u@127.0.0.1:1/b",
	}, settings))
	require.NoError(t, err)
	return e
}

// Apply keeps an engine whose pool config is the same, so samePoolConfig
// must see a change of any option an engine may set: every name
// config.PoolOptions lists, with a value that differs from the default.
func TestSamePoolConfigSeesEveryOption(t *testing.T) {
	value := func(opt string) any {
		switch {
		case strings.HasSuffix(opt, "_conns"):
			return 3
		case strings.HasSuffix(opt, "_capacity"):
			return 7
		case opt == "default_query_exec_mode":
			return "exec"
		case strings.HasSuffix(opt, "_lifetime"), strings.HasSuffix(opt, "_time"), strings.HasSuffix(opt, "_period"),
			strings.HasSuffix(opt, "_timeout"), strings.HasSuffix(opt, "_jitter"):
			return "7s"
		}
		t.Fatalf("no test value for pool option %q: teach this test, and samePoolConfig, about it", opt)
		return nil
	}
	base := loadPC(t, nil)
	require.True(t, samePoolConfig(base, loadPC(t, nil)), "the same config twice")
	for _, opt := range config.PoolOptions() {
		t.Run(opt, func(t *testing.T) {
			require.False(t, samePoolConfig(base, loadPC(t, map[string]any{opt: value(opt)})), opt)
		})
	}
	require.False(t, samePoolConfig(base, loadPC(t, map[string]any{"url": "postgres://u@127.0.0.1:1/other?sslmode=disable"})),
		"another url")
}
