package config_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

// The example from DESIGN.md ("Shared pools"), in YAML, where koanf splits
// the setting name app.tenant into nested maps.
const sharedYAML = `
SQLALCHEMY_ENGINES:
  default: postgres://app@db/central
  saas: {url: postgres://app@pgbouncer:6432/saas, default_query_exec_mode: exec}
  acme:   {pool: saas, search_path: acme, hosts: [acme.example.com]}
  globex: {pool: saas, settings: {app.tenant: globex, statement_timeout: 5000}, hosts: [globex.example.com]}
  initech: {url: postgres://app@db/initech, search_path: Initech, settings: {app: {tenant: initech}}}
FIBERDB:
  engine_defaults: {pool_max_conns: 4}
`

func TestLoadSharedPools(t *testing.T) {
	t.Parallel()
	conf := loadOK(t, yamlKoanf(t, sharedYAML))

	require.Equal(t, []string{"acme", "default", "globex", "initech", "saas"}, conf.Names())
	require.Equal(t, []string{"acme", "globex", "initech", "saas"}, conf.Tenants, "a pool's engine is still an engine")
	require.Equal(t, map[string]string{"acme.example.com": "acme", "globex.example.com": "globex"}, conf.Hosts())

	acme := conf.Engines["acme"]
	require.Equal(t, "saas", acme.Pool)
	require.Equal(t, "acme", acme.SearchPath)
	require.Nil(t, acme.Settings)
	require.Nil(t, acme.PoolConfig(), "a shared engine has no pool of its own")

	globex := conf.Engines["globex"]
	require.Equal(t, "saas", globex.Pool)
	require.Equal(t, map[string]string{"app.tenant": "globex", "statement_timeout": "5000"}, globex.Settings)

	// search_path and settings apply on an engine with its own pool too.
	initech := conf.Engines["initech"]
	require.Empty(t, initech.Pool)
	require.Equal(t, "Initech", initech.SearchPath, "kept as written: fiberdb quotes it")
	require.Equal(t, map[string]string{"app.tenant": "initech"}, initech.Settings)
	require.EqualValues(t, 4, poolConfig(t, conf, "initech").MaxConns)

	saas := poolConfig(t, conf, "saas")
	require.Equal(t, "pgbouncer", saas.ConnConfig.Host)
	require.EqualValues(t, 4, saas.MaxConns, "engine_defaults reach the pool's engine, not its tenants")
	require.NoError(t, conf.Validate())
}

func TestLoadSharedPoolsFromEnv(t *testing.T) {
	t.Parallel()
	k := fileAndEnv(t,
		"FIBERDB_ENGINES__SAAS=postgres://app@db/saas",
		"FIBERDB_ENGINES__INITECH__POOL=saas",
		"FIBERDB_ENGINES__INITECH__SEARCH_PATH=acme",
		"FIBERDB_ENGINES__INITECH__SETTINGS__APP__TENANT=acme",
	)
	conf := loadOK(t, k)
	acme := conf.Engines["initech"]
	require.Equal(t, "saas", acme.Pool)
	require.Equal(t, "acme", acme.SearchPath)
	require.Equal(t, map[string]string{"app.tenant": "acme"}, acme.Settings)
}

func TestLoadSharedPoolErrors(t *testing.T) {
	t.Parallel()
	saas := map[string]any{"url": dsn}
	tests := []struct {
		name    string
		engines map[string]any
		is      error
		want    string
	}{
		{
			name:    "pool naming no engine",
			engines: map[string]any{"acme": map[string]any{"pool": "nope"}},
			is:      config.ErrUndefinedEngine,
			want:    `'SQLALCHEMY_ENGINES["acme"]["pool"]' names engine "nope", but 'SQLALCHEMY_ENGINES["nope"]' was not defined.`,
		},
		{
			name:    "pool that is not a name",
			engines: map[string]any{"acme": map[string]any{"pool": 5}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["pool"]' must name the engine whose pool this engine uses.`,
		},
		{
			name:    "pool together with url",
			engines: map[string]any{"saas": saas, "acme": map[string]any{"pool": "saas", "url": dsn}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["url"]' must not be set together with pool: the engine uses the url of the pool's engine.`,
		},
		{
			name: "pool naming an engine that itself shares a pool",
			engines: map[string]any{
				"saas": saas,
				"acme": map[string]any{"pool": "saas"}, "globex": map[string]any{"pool": "acme"},
			},
			is:   config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["globex"]["pool"]' names engine "acme", which itself uses the pool of engine "saas": name "saas" instead.`,
		},
		{
			name:    "pool naming its own engine",
			engines: map[string]any{"acme": map[string]any{"pool": "acme"}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["pool"]' names engine "acme", which itself uses the pool of engine "acme": name "acme" instead.`,
		},
		{
			name:    "pool with a pool option",
			engines: map[string]any{"saas": saas, "acme": map[string]any{"pool": "saas", "pool_max_conns": 2}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["pool_max_conns"]' is a pool option, but this engine has no pool of its own (set it on the engine that pool names).`,
		},
		{
			name:    "pool with an unknown option",
			engines: map[string]any{"saas": saas, "acme": map[string]any{"pool": "saas", "serch_path": "x"}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["serch_path"]' is not a known option (did you mean "search_path"?).`,
		},
		{
			name:    "a search_path that is a list",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "search_path": "acme, public"}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["search_path"]' must be one schema name of 1 to 63 bytes, without a comma.`,
		},
		{
			name:    "a blank search_path",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "search_path": " "}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["search_path"]' must be one schema name of 1 to 63 bytes, without a comma.`,
		},
		{
			name:    "a search_path over 63 bytes",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "search_path": string(make([]byte, 64))}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["search_path"]' must be one schema name of 1 to 63 bytes, without a comma.`,
		},
		{
			name:    "settings that are not a map",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "settings": "app.tenant=acme"}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["settings"]' must be a map of setting names to values, not string.`,
		},
		{
			name:    "a setting name that is not a GUC name",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "settings": map[string]any{"app-tenant": "acme"}}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["settings"]["app-tenant"]' is not a valid setting name (identifiers joined by dots, such as app.tenant).`,
		},
		{
			name:    "a setting name starting with a digit",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "settings": map[string]any{"app": map[string]any{"1x": "a"}}}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["settings"]["app.1x"]' is not a valid setting name (identifiers joined by dots, such as app.tenant).`,
		},
		{
			name:    "search_path among the settings",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "settings": map[string]any{"search_path": "acme"}}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["settings"]["search_path"]' must be set with the engine's search_path key.`,
		},
		{
			name:    "a setting given twice in two cases",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "settings": map[string]any{"App.Tenant": "a", "app.tenant": "b"}}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["settings"]["app.tenant"]' is set twice (setting names are case-insensitive).`,
		},
		{
			name:    "a setting value that is a list",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "settings": map[string]any{"app.tenant": []any{"a"}}}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["settings"]["app.tenant"]' must be a string, number or boolean, not []interface {}.`,
		},
		{
			name:    "a setting value with a NUL byte",
			engines: map[string]any{"acme": map[string]any{"url": dsn, "settings": map[string]any{"app.tenant": "a\x00b"}}},
			is:      config.ErrInvalidOption,
			want:    `'SQLALCHEMY_ENGINES["acme"]["settings"]["app.tenant"]' must not contain a NUL byte.`,
		},
		{
			// Review S4: "$user", public, the search_path of the pool's
			// tenants without one, would find the schema app first.
			name: "a search_path naming the user of the pool's url",
			engines: map[string]any{
				"saas": saas, "app": map[string]any{"pool": "saas", "search_path": "app"},
				"initech": map[string]any{"pool": "saas", "settings": map[string]any{"app.tenant": "initech"}},
			},
			is: config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["app"]["search_path"]' must not be "app", the user engine "saas" connects as: ` +
				`its engines without a search_path would find this schema's tables first ("$user" leads PostgreSQL's default search_path).`,
		},
		{
			name: "a shared engine's host claimed twice",
			engines: map[string]any{
				"saas": map[string]any{"url": dsn, "hosts": []any{"a.example.com"}},
				"acme": map[string]any{"pool": "saas", "hosts": []any{"a.example.com"}},
			},
			is: config.ErrDuplicateHost,
			want: `'SQLALCHEMY_ENGINES["saas"]["hosts"][0]' claims host "a.example.com", which engine "acme" already claims at ` +
				`'SQLALCHEMY_ENGINES["acme"]["hosts"][0]'.`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(mapKoanf(t, withDefault(tt.engines)))
			require.ErrorIs(t, err, tt.is)
			require.EqualError(t, err, tt.want)
			requireKeyErrors(t, err)
		})
	}
}

func TestLoadLimits(t *testing.T) {
	t.Parallel()
	k := mapKoanf(t, map[string]any{
		config.DefaultKey: map[string]any{"default": dsn},
		config.DefaultSettingsKey: map[string]any{
			"max_total_conns": "90", "max_open_pools": 50, "pool_idle_timeout": "10m", "tenant_max_concurrency": float64(8),
		},
	})
	conf := loadOK(t, k)
	require.Equal(t, 90, conf.MaxTotalConns)
	require.Equal(t, 50, conf.MaxOpenPools)
	require.Equal(t, 10*time.Minute, conf.PoolIdleTimeout)
	require.Equal(t, 8, conf.TenantMaxConcurrency)

	off := loadOK(t, mapKoanf(t, withEngines(map[string]any{"default": dsn})))
	require.Zero(t, off.MaxTotalConns+off.MaxOpenPools+off.TenantMaxConcurrency)
	require.Zero(t, off.PoolIdleTimeout)
}

func TestLoadLimitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key   string
		value any
		want  string
	}{
		{key: "max_total_conns", value: -1, want: `'FIBERDB["max_total_conns"]' must be between 0 (off) and 100000.`},
		{key: "max_total_conns", value: "2147483647", want: `'FIBERDB["max_total_conns"]' must be between 0 (off) and 100000.`},
		{key: "max_total_conns", value: "ten", want: `'FIBERDB["max_total_conns"]' must be an integer.`},
		{key: "max_open_pools", value: -5, want: `'FIBERDB["max_open_pools"]' must be between 0 (off) and 1000000.`},
		{key: "max_open_pools", value: 1.5, want: `'FIBERDB["max_open_pools"]' must be an integer.`},
		{key: "tenant_max_concurrency", value: "-1", want: `'FIBERDB["tenant_max_concurrency"]' must be between 0 (off) and 100000.`},
		{key: "tenant_max_concurrency", value: true, want: `'FIBERDB["tenant_max_concurrency"]' must be an integer.`},
		{key: "pool_idle_timeout", value: "-1s", want: `'FIBERDB["pool_idle_timeout"]' must be 0 (off) or at least 1s.`},
		{key: "pool_idle_timeout", value: "1ns", want: `'FIBERDB["pool_idle_timeout"]' must be 0 (off) or at least 1s.`},
		{key: "pool_idle_timeout", value: 60, want: `'FIBERDB["pool_idle_timeout"]' must be a duration such as "30s" or "5m".`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.key, tt.value), func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(mapKoanf(t, map[string]any{
				config.DefaultKey:         map[string]any{"default": dsn},
				config.DefaultSettingsKey: map[string]any{tt.key: tt.value},
			}))
			require.ErrorIs(t, err, config.ErrInvalidOption)
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestLimitsFromEnv(t *testing.T) {
	t.Parallel()
	k := fileAndEnv(t,
		"FIBERDB_MAX_TOTAL_CONNS=90", "FIBERDB_MAX_OPEN_POOLS=40",
		"FIBERDB_POOL_IDLE_TIMEOUT=5m", "FIBERDB_TENANT_MAX_CONCURRENCY=4",
	)
	conf := loadOK(t, k)
	require.Equal(t, 90, conf.MaxTotalConns)
	require.Equal(t, 40, conf.MaxOpenPools)
	require.Equal(t, 5*time.Minute, conf.PoolIdleTimeout)
	require.Equal(t, 4, conf.TenantMaxConcurrency)
}
