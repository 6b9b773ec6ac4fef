package config_test

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

// dsn is a valid connection string that needs no TLS.
const dsn = "postgres://app@127.0.0.1:5432/central?sslmode=disable"

// mapKoanf loads m as nested maps; the empty delimiter keeps keys such as
// "a.b" whole.
func mapKoanf(t *testing.T, m map[string]any) *koanf.Koanf {
	t.Helper()
	k := koanf.New(".")
	require.NoError(t, k.Load(confmap.Provider(m, ""), nil))
	return k
}

func yamlKoanf(t *testing.T, doc string) *koanf.Koanf {
	t.Helper()
	k := koanf.New(".")
	require.NoError(t, k.Load(rawbytes.Provider([]byte(doc)), yaml.Parser()))
	return k
}

// withEngines returns a configuration holding engines under the default key.
func withEngines(engines map[string]any) map[string]any {
	return map[string]any{config.DefaultKey: engines}
}

// withDefault adds a valid "default" engine to engines.
func withDefault(engines map[string]any) map[string]any {
	engines["default"] = dsn
	return withEngines(engines)
}

func loadOK(t *testing.T, k *koanf.Koanf, opts ...config.Options) *config.Config {
	t.Helper()
	conf, err := config.Load(k, opts...)
	require.NoError(t, err)
	require.NotNil(t, conf)
	return conf
}

func poolConfig(t *testing.T, conf *config.Config, name string) *pgxpool.Config {
	t.Helper()
	require.Contains(t, conf.Engines, name)
	pc := conf.Engines[name].PoolConfig()
	require.NotNil(t, pc)
	return pc
}

func TestLoadURLForms(t *testing.T) {
	t.Parallel()

	type conn struct {
		Host     string
		Port     uint16
		User     string
		Password string
		Database string
		Params   map[string]string
	}
	central := conn{
		Host: "127.0.0.1", Port: 5432, User: "app", Password: "s3cret", Database: "central",
		Params: map[string]string{"application_name": "fiberdb"},
	}
	urlMap := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{
			"host": "127.0.0.1", "port": 5432, "user": "app", "password": "s3cret", "database": "central",
			"params": map[string]any{"sslmode": "disable", "application_name": "fiberdb"},
		}
		if edit != nil {
			edit(m)
		}
		return map[string]any{"url": m}
	}

	tests := []struct {
		name   string
		engine any
		want   conn
	}{
		{
			name:   "string dsn",
			engine: "postgres://app:s3cret@127.0.0.1:5432/central?sslmode=disable&application_name=fiberdb",
			want:   central,
		},
		{
			name:   "map with a string url",
			engine: map[string]any{"url": "postgres://app:s3cret@127.0.0.1:5432/central?sslmode=disable&application_name=fiberdb"},
			want:   central,
		},
		{
			name:   "keyword/value dsn",
			engine: "host=127.0.0.1 port=5432 user=app password=s3cret dbname=central sslmode=disable application_name=fiberdb",
			want:   central,
		},
		{name: "map with a url map", engine: urlMap(nil), want: central},
		{name: "url map with the port as a string", engine: urlMap(func(m map[string]any) { m["port"] = "5432" }), want: central},
		{name: "url map with the port as a JSON number", engine: urlMap(func(m map[string]any) { m["port"] = float64(5432) }), want: central},
		{
			name:   "url map with a unix socket directory as host",
			engine: urlMap(func(m map[string]any) { m["host"] = "/tmp" }),
			want: conn{
				Host: "/tmp", Port: 5432, User: "app", Password: "s3cret", Database: "central",
				Params: map[string]string{"application_name": "fiberdb"},
			},
		},
		{
			name:   "url map quotes a password holding a quote, a backslash and a space",
			engine: urlMap(func(m map[string]any) { m["password"] = `it's a \secret` }),
			want: conn{
				Host: "127.0.0.1", Port: 5432, User: "app", Password: `it's a \secret`, Database: "central",
				Params: map[string]string{"application_name": "fiberdb"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := loadOK(t, mapKoanf(t, withEngines(map[string]any{"default": tt.engine})))
			cc := poolConfig(t, conf, "default").ConnConfig
			got := conn{
				Host: cc.Host, Port: cc.Port, User: cc.User, Password: cc.Password, Database: cc.Database,
				Params: cc.RuntimeParams,
			}
			require.Equal(t, tt.want, got)
			require.Nil(t, cc.TLSConfig, "sslmode=disable must leave TLS off")
		})
	}
}

// poolOptionRows covers every option in config.PoolOptions; each sets a value
// that differs from pgxpool's default, which the test checks first.
var poolOptionRows = []struct {
	name  string
	value any
	get   func(pc *pgxpool.Config) any
	want  any
}{
	{"pool_max_conns", 9, func(pc *pgxpool.Config) any { return pc.MaxConns }, int32(9)},
	{"pool_min_conns", 2, func(pc *pgxpool.Config) any { return pc.MinConns }, int32(2)},
	{"pool_min_idle_conns", 3, func(pc *pgxpool.Config) any { return pc.MinIdleConns }, int32(3)},
	{"pool_max_conn_lifetime", "2h", func(pc *pgxpool.Config) any { return pc.MaxConnLifetime }, 2 * time.Hour},
	{"pool_max_conn_lifetime_jitter", "30s", func(pc *pgxpool.Config) any { return pc.MaxConnLifetimeJitter }, 30 * time.Second},
	{"pool_max_conn_idle_time", "7m", func(pc *pgxpool.Config) any { return pc.MaxConnIdleTime }, 7 * time.Minute},
	{"pool_health_check_period", "45s", func(pc *pgxpool.Config) any { return pc.HealthCheckPeriod }, 45 * time.Second},
	{"pool_ping_timeout", "3s", func(pc *pgxpool.Config) any { return pc.PingTimeout }, 3 * time.Second},
	{"connect_timeout", "4s", func(pc *pgxpool.Config) any { return pc.ConnConfig.ConnectTimeout }, 4 * time.Second},
	{"statement_cache_capacity", 17, func(pc *pgxpool.Config) any { return pc.ConnConfig.StatementCacheCapacity }, 17},
	{"description_cache_capacity", 19, func(pc *pgxpool.Config) any { return pc.ConnConfig.DescriptionCacheCapacity }, 19},
	{
		"default_query_exec_mode", "simple_protocol",
		func(pc *pgxpool.Config) any { return pc.ConnConfig.DefaultQueryExecMode }, pgx.QueryExecModeSimpleProtocol,
	},
}

func TestPoolOptionsAreAllTested(t *testing.T) {
	t.Parallel()
	names := config.PoolOptions()
	require.IsIncreasing(t, names)
	tested := make([]string, 0, len(poolOptionRows))
	for _, row := range poolOptionRows {
		tested = append(tested, row.name)
	}
	require.ElementsMatch(t, names, tested)
}

func TestLoadPoolOptions(t *testing.T) {
	t.Parallel()
	baseline := poolConfig(t, loadOK(t, mapKoanf(t, withEngines(map[string]any{"default": dsn}))), "default")

	for _, tt := range poolOptionRows {
		t.Run(tt.name+" sets its pool field", func(t *testing.T) {
			t.Parallel()
			require.NotEqual(t, tt.want, tt.get(baseline), "pick a value that differs from the default")
			k := mapKoanf(t, withEngines(map[string]any{
				"default": map[string]any{"url": dsn, tt.name: tt.value},
			}))
			require.Equal(t, tt.want, tt.get(poolConfig(t, loadOK(t, k), "default")))
		})
	}
}

func TestLoadQueryExecModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value any
		want  pgx.QueryExecMode
	}{
		{"cache_statement", "cache_statement", pgx.QueryExecModeCacheStatement},
		{"cache_describe", "cache_describe", pgx.QueryExecModeCacheDescribe},
		{"describe_exec", "describe_exec", pgx.QueryExecModeDescribeExec},
		{"exec", "exec", pgx.QueryExecModeExec},
		{"simple_protocol", "simple_protocol", pgx.QueryExecModeSimpleProtocol},
		{"an unknown mode is rejected", "simple", 0},
		{"upper case is rejected", "EXEC", 0},
		{"a number is rejected", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := mapKoanf(t, withEngines(map[string]any{
				"default": map[string]any{"url": dsn, "default_query_exec_mode": tt.value},
			}))
			conf, err := config.Load(k)
			if tt.want == 0 {
				require.EqualError(t, err, `'SQLALCHEMY_ENGINES["default"]["default_query_exec_mode"]' must be one of `+
					`cache_statement, cache_describe, describe_exec, exec, simple_protocol.`)
				require.ErrorIs(t, err, config.ErrInvalidOption)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, poolConfig(t, conf, "default").ConnConfig.DefaultQueryExecMode)
		})
	}
}

func TestLoadCoercion(t *testing.T) {
	t.Parallel()
	const (
		notInt      = `'SQLALCHEMY_ENGINES["default"]["pool_max_conns"]' must be an integer.`
		notDuration = `'SQLALCHEMY_ENGINES["default"]["pool_max_conn_idle_time"]' must be a duration such as "30s" or "5m".`
	)
	maxConns := func(pc *pgxpool.Config) any { return pc.MaxConns }
	idleTime := func(pc *pgxpool.Config) any { return pc.MaxConnIdleTime }

	tests := []struct {
		name    string
		option  string
		value   any
		get     func(pc *pgxpool.Config) any
		want    any
		wantErr string
	}{
		{name: "an int", option: "pool_max_conns", value: 8, get: maxConns, want: int32(8)},
		{name: "an int64", option: "pool_max_conns", value: int64(8), get: maxConns, want: int32(8)},
		{name: "a uint8", option: "pool_max_conns", value: uint8(8), get: maxConns, want: int32(8)},
		{name: "a string holding an int", option: "pool_max_conns", value: "8", get: maxConns, want: int32(8)},
		{name: "a string holding a padded int", option: "pool_max_conns", value: " 8 ", get: maxConns, want: int32(8)},
		{name: "a whole JSON float", option: "pool_max_conns", value: float64(8), get: maxConns, want: int32(8)},
		{name: "a JSON number", option: "pool_max_conns", value: json.Number("8"), get: maxConns, want: int32(8)},
		{name: "a string holding a fraction", option: "pool_max_conns", value: "8.5", wantErr: notInt},
		{name: "a string holding letters", option: "pool_max_conns", value: "abc", wantErr: notInt},
		{name: "an empty string", option: "pool_max_conns", value: "", wantErr: notInt},
		{name: "a fractional float", option: "pool_max_conns", value: 8.5, wantErr: notInt},
		{name: "a fractional JSON number", option: "pool_max_conns", value: json.Number("8.5"), wantErr: notInt},
		{name: "a bool as an int", option: "pool_max_conns", value: true, wantErr: notInt},
		{name: "a list as an int", option: "pool_max_conns", value: []any{8}, wantErr: notInt},
		{
			name: "an int beyond int32", option: "pool_max_conns", value: int64(1) << 31,
			wantErr: `'SQLALCHEMY_ENGINES["default"]["pool_max_conns"]' must be between 1 and 10000.`,
		},

		{name: "a duration string", option: "pool_max_conn_idle_time", value: "5m", get: idleTime, want: 5 * time.Minute},
		{name: "a padded duration string", option: "pool_max_conn_idle_time", value: " 5m ", get: idleTime, want: 5 * time.Minute},
		{name: "a compound duration string", option: "pool_max_conn_idle_time", value: "1h30m", get: idleTime, want: 90 * time.Minute},
		{name: "a time.Duration", option: "pool_max_conn_idle_time", value: 5 * time.Minute, get: idleTime, want: 5 * time.Minute},
		{name: "an int as a duration", option: "pool_max_conn_idle_time", value: 300, wantErr: notDuration},
		{name: "a float as a duration", option: "pool_max_conn_idle_time", value: float64(300), wantErr: notDuration},
		{name: "a string holding a bare number", option: "pool_max_conn_idle_time", value: "300", wantErr: notDuration},
		{name: "a string holding words", option: "pool_max_conn_idle_time", value: "5 minutes", wantErr: notDuration},
		{
			name: "a negative duration", option: "pool_max_conn_idle_time", value: "-5m",
			wantErr: `'SQLALCHEMY_ENGINES["default"]["pool_max_conn_idle_time"]' must be at least 1s.`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := mapKoanf(t, withEngines(map[string]any{
				"default": map[string]any{"url": dsn, tt.option: tt.value},
			}))
			conf, err := config.Load(k)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.ErrorIs(t, err, config.ErrInvalidOption)
				require.Nil(t, conf)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, tt.get(poolConfig(t, conf, "default")))
		})
	}
}

func TestLoadOptionPrecedence(t *testing.T) {
	t.Parallel()

	type pool struct{ Max, Min, MinIdle int32 }
	tests := []struct {
		name     string
		defaults map[string]any // Options.EngineDefaults
		settings map[string]any // FIBERDB.engine_defaults
		engine   map[string]any // acme's own options
		want     pool           // acme's pool
		wantBase pool           // the pool of "default", which has no options of its own
	}{
		{
			name:     "Options.EngineDefaults apply to an engine without options",
			defaults: map[string]any{"pool_max_conns": 3},
			want:     pool{Max: 3},
			wantBase: pool{Max: 3},
		},
		{
			name:     "settings engine_defaults win over Options.EngineDefaults",
			defaults: map[string]any{"pool_max_conns": 3},
			settings: map[string]any{"pool_max_conns": 5},
			want:     pool{Max: 5},
			wantBase: pool{Max: 5},
		},
		{
			name:     "engine options win over settings engine_defaults",
			defaults: map[string]any{"pool_max_conns": 3},
			settings: map[string]any{"pool_max_conns": 5},
			engine:   map[string]any{"pool_max_conns": 7},
			want:     pool{Max: 7},
			wantBase: pool{Max: 5},
		},
		{
			name:     "engine options win over Options.EngineDefaults",
			defaults: map[string]any{"pool_max_conns": 3},
			engine:   map[string]any{"pool_max_conns": 7},
			want:     pool{Max: 7},
			wantBase: pool{Max: 3},
		},
		{
			name:     "the merge is shallow, option by option",
			defaults: map[string]any{"pool_max_conns": 6, "pool_min_conns": 2},
			settings: map[string]any{"pool_max_conns": 5, "pool_min_idle_conns": 1},
			engine:   map[string]any{"pool_min_conns": 4},
			want:     pool{Max: 5, Min: 4, MinIdle: 1},
			wantBase: pool{Max: 5, Min: 2, MinIdle: 1},
		},
		{
			name:     "an engine option of zero overrides a default of two",
			defaults: map[string]any{"pool_max_conns": 4, "pool_min_conns": 2},
			engine:   map[string]any{"pool_min_conns": 0},
			want:     pool{Max: 4},
			wantBase: pool{Max: 4, Min: 2},
		},
		{
			name:     "an engine option of zero overrides a settings default of two",
			settings: map[string]any{"pool_max_conns": 4, "pool_min_idle_conns": 2},
			engine:   map[string]any{"pool_min_idle_conns": 0},
			want:     pool{Max: 4},
			wantBase: pool{Max: 4, MinIdle: 2},
		},
		{
			name:     "a settings default of zero overrides an Options default of two",
			defaults: map[string]any{"pool_max_conns": 4, "pool_min_conns": 2},
			settings: map[string]any{"pool_min_conns": "0"},
			want:     pool{Max: 4},
			wantBase: pool{Max: 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			acme := map[string]any{"url": dsn}
			maps.Copy(acme, tt.engine)
			m := withEngines(map[string]any{"default": dsn, "acme": acme})
			if tt.settings != nil {
				m[config.DefaultSettingsKey] = map[string]any{"engine_defaults": tt.settings}
			}
			conf := loadOK(t, mapKoanf(t, m), config.Options{EngineDefaults: tt.defaults})

			pc := poolConfig(t, conf, "acme")
			require.Equal(t, tt.want, pool{Max: pc.MaxConns, Min: pc.MinConns, MinIdle: pc.MinIdleConns})

			pc = poolConfig(t, conf, "default")
			require.Equal(t, tt.wantBase, pool{Max: pc.MaxConns, Min: pc.MinConns, MinIdle: pc.MinIdleConns})
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()

	const badName = `is not a valid engine name (1 to 63 of A-Z, a-z, 0-9, _ and -).`
	fromMap := func(m map[string]any) func(t *testing.T) *koanf.Koanf {
		return func(t *testing.T) *koanf.Koanf { t.Helper(); return mapKoanf(t, m) }
	}
	fromYAML := func(doc string) func(t *testing.T) *koanf.Koanf {
		return func(t *testing.T) *koanf.Koanf { t.Helper(); return yamlKoanf(t, doc) }
	}
	acme := func(engine any) func(t *testing.T) *koanf.Koanf {
		return fromMap(withDefault(map[string]any{"acme": engine}))
	}
	settings := func(s map[string]any) func(t *testing.T) *koanf.Koanf {
		m := withDefault(map[string]any{"acme": dsn})
		m[config.DefaultSettingsKey] = s
		return fromMap(m)
	}

	tests := []struct {
		name    string
		koanf   func(t *testing.T) *koanf.Koanf
		opts    config.Options
		is      error
		want    string   // the whole message, when it is contract
		has     []string // otherwise, parts of it
		hasNot  []string // never in the message
		wantAll []error  // further sentinels the joined error wraps
	}{
		{
			name:  "no engines at all",
			koanf: fromMap(map[string]any{}),
			is:    config.ErrNoEngines,
			want:  `'SQLALCHEMY_ENGINES["default"]' must be defined.`,
		},
		{
			name:  "a nil koanf",
			koanf: func(*testing.T) *koanf.Koanf { return nil },
			is:    config.ErrNoEngines,
			want:  `'SQLALCHEMY_ENGINES["default"]' must be defined.`,
		},
		{
			name:  "engines but no default",
			koanf: fromMap(withEngines(map[string]any{"acme": dsn})),
			is:    config.ErrNoEngines,
			want:  `'SQLALCHEMY_ENGINES["default"]' must be defined.`,
		},
		{
			name:  "an empty engines map",
			koanf: fromYAML("SQLALCHEMY_ENGINES: {}\n"),
			is:    config.ErrNoEngines,
			want:  `'SQLALCHEMY_ENGINES["default"]' must be defined.`,
		},
		{
			name:    "engines that are not a map",
			koanf:   fromMap(withEngines(nil)),
			is:      config.ErrNoEngines,
			want:    `'SQLALCHEMY_ENGINES["default"]' must be defined.`,
			wantAll: []error{config.ErrNoEngines},
		},
		{
			name:  "engines given as a string",
			koanf: fromMap(map[string]any{config.DefaultKey: dsn}),
			is:    config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES' must be a map of engine names, not string.` + "\n" +
				`'SQLALCHEMY_ENGINES["default"]' must be defined.`,
			wantAll: []error{config.ErrNoEngines},
		},
		{
			name:  "a map without url",
			koanf: acme(map[string]any{"pool_max_conns": 2}),
			is:    config.ErrNoURL,
			want:  `'SQLALCHEMY_ENGINES["acme"]["url"]' must be defined.`,
		},
		{
			name:  "an empty map for default",
			koanf: fromYAML("SQLALCHEMY_ENGINES:\n  default: {}\n"),
			is:    config.ErrNoURL,
			want:  `'SQLALCHEMY_ENGINES["default"]["url"]' must be defined.`,
		},
		{
			name:  "a null url",
			koanf: fromYAML("SQLALCHEMY_ENGINES:\n  default:\n    url:\n"),
			is:    config.ErrNoURL,
			want:  `'SQLALCHEMY_ENGINES["default"]["url"]' must be defined.`,
		},
		{
			name:  "an empty url",
			koanf: acme(map[string]any{"url": ""}),
			is:    config.ErrNoURL,
			want:  `'SQLALCHEMY_ENGINES["acme"]["url"]' must be defined.`,
		},
		{
			name:  "a blank connection string",
			koanf: acme("   "),
			is:    config.ErrNoURL,
			want:  `'SQLALCHEMY_ENGINES["acme"]["url"]' must be defined.`,
		},
		{
			name:  "an engine that is a number",
			koanf: acme(5),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]' must be a connection string or a map with a url, not int.`,
		},
		{
			name:  "an engine that is a list",
			koanf: acme([]any{dsn}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]' must be a connection string or a map with a url, not []interface {}.`,
		},
		{
			name:  "an unparseable dsn",
			koanf: acme("postgres://u@h:notaport/db"),
			is:    config.ErrInvalidURL,
			has:   []string{`'SQLALCHEMY_ENGINES["acme"]["url"]' is not a valid PostgreSQL connection string`},
		},
		{
			name:   "an unparseable dsn does not leak its password",
			koanf:  acme("postgres://u:s3cret@h:bad/db"),
			is:     config.ErrInvalidURL,
			has:    []string{`'SQLALCHEMY_ENGINES["acme"]["url"]' is not a valid PostgreSQL connection string`},
			hasNot: []string{"s3cret"},
		},
		{
			name:   "an unparseable url in a map does not leak its password",
			koanf:  acme(map[string]any{"url": "postgres://u:s3cret@h:99999/db"}),
			is:     config.ErrInvalidURL,
			has:    []string{`'SQLALCHEMY_ENGINES["acme"]["url"]' is not a valid PostgreSQL connection string`},
			hasNot: []string{"s3cret"},
		},
		{
			name:   "an unparseable keyword/value dsn does not leak its password",
			koanf:  acme("host=h password=s3cret port=notaport"),
			is:     config.ErrInvalidURL,
			has:    []string{`'SQLALCHEMY_ENGINES["acme"]["url"]' is not a valid PostgreSQL connection string`},
			hasNot: []string{"s3cret"},
		},
		{
			name:   "a url map with a bad port does not leak its password",
			koanf:  acme(map[string]any{"url": map[string]any{"host": "h", "port": "notaport", "password": "s3cret"}}),
			is:     config.ErrInvalidURL,
			has:    []string{`'SQLALCHEMY_ENGINES["acme"]["url"]' is not a valid PostgreSQL connection string`},
			hasNot: []string{"s3cret"},
		},
		{
			name:  "a url that is a number",
			koanf: acme(map[string]any{"url": 5}),
			is:    config.ErrInvalidURL,
			want:  `'SQLALCHEMY_ENGINES["acme"]["url"]' must be a connection string or a map, not int.`,
		},
		{
			name:  "an unknown url map key",
			koanf: acme(map[string]any{"url": map[string]any{"host": "h", "dbname": "acme"}}),
			is:    config.ErrInvalidURL,
			want:  `'SQLALCHEMY_ENGINES["acme"]["url"]["dbname"]' is not a known url key (host, port, user, password, database, params).`,
		},
		{
			name:  "url map params that are not a map",
			koanf: acme(map[string]any{"url": map[string]any{"host": "h", "params": "sslmode=disable"}}),
			is:    config.ErrInvalidURL,
			want:  `'SQLALCHEMY_ENGINES["acme"]["url"]["params"]' must be a map, not string.`,
		},
		{
			name:  "a url map param name with a space",
			koanf: acme(map[string]any{"url": map[string]any{"host": "h", "params": map[string]any{"ssl mode": "disable"}}}),
			is:    config.ErrInvalidURL,
			want:  `'SQLALCHEMY_ENGINES["acme"]["url"]["params"]["ssl mode"]' is not a valid connection parameter name.`,
		},
		{
			name:  "a url map value that is a list",
			koanf: acme(map[string]any{"url": map[string]any{"host": []any{"a", "b"}}}),
			is:    config.ErrInvalidURL,
			want:  `'SQLALCHEMY_ENGINES["acme"]["url"]["host"]' must be a string or number, not []interface {}.`,
		},
		{
			name:  "an unknown option",
			koanf: acme(map[string]any{"url": dsn, "pool_max_con": 5}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["pool_max_con"]' is not a known option (did you mean "pool_max_conns"?).`,
		},
		{
			name:  "a bad duration",
			koanf: acme(map[string]any{"url": dsn, "pool_max_conn_lifetime": "1 hour"}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["pool_max_conn_lifetime"]' must be a duration such as "30s" or "5m".`,
		},
		{
			name:  "a zero pool_health_check_period",
			koanf: acme(map[string]any{"url": dsn, "pool_health_check_period": "0s"}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["pool_health_check_period"]' must be at least 1s.`,
		},
		{
			name:  "a zero pool_health_check_period in the dsn",
			koanf: acme(dsn + "&pool_health_check_period=0s"),
			is:    config.ErrInvalidURL,
			want:  `'SQLALCHEMY_ENGINES["acme"]["url"]' sets pool_health_check_period, which must be at least 1s.`,
		},
		{
			name:  "pool_max_conns zero",
			koanf: acme(map[string]any{"url": dsn, "pool_max_conns": 0}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["pool_max_conns"]' must be between 1 and 10000.`,
		},
		{
			name:  "negative pool_min_conns",
			koanf: acme(map[string]any{"url": dsn, "pool_min_conns": -1}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["pool_min_conns"]' must be between 0 and 100.`,
		},
		{
			name:  "pool_min_conns above pool_max_conns",
			koanf: acme(map[string]any{"url": dsn, "pool_max_conns": 2, "pool_min_conns": 3}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["pool_min_conns"]' must not exceed pool_max_conns (2).`,
		},
		{
			name:  "pool_min_idle_conns above pool_max_conns",
			koanf: acme(map[string]any{"url": dsn, "pool_max_conns": 2, "pool_min_idle_conns": 3}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["pool_min_idle_conns"]' must not exceed pool_max_conns (2).`,
		},
		{
			name:  "an unknown option in Options.EngineDefaults",
			koanf: fromMap(withDefault(map[string]any{})),
			opts:  config.Options{EngineDefaults: map[string]any{"pool_max_con": 4}},
			is:    config.ErrInvalidOption,
			want:  `'Options.EngineDefaults["pool_max_con"]' is not a known pool option (did you mean "pool_max_conns"?).`,
		},
		{
			name:  "hosts in settings engine_defaults",
			koanf: settings(map[string]any{"engine_defaults": map[string]any{"hosts": []any{"a.example.com"}}}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["engine_defaults"]["hosts"]' is not a known pool option.`,
		},
		{
			name:  "a bad value in settings engine_defaults names the settings key",
			koanf: settings(map[string]any{"engine_defaults": map[string]any{"pool_max_conn_idle_time": "5 minutes"}}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["engine_defaults"]["pool_max_conn_idle_time"]' must be a duration such as "30s" or "5m".`,
		},
		{
			name:  "a bad value in Options.EngineDefaults names that key",
			koanf: fromMap(withDefault(map[string]any{"acme": dsn})),
			opts:  config.Options{EngineDefaults: map[string]any{"pool_max_conns": 0}},
			is:    config.ErrInvalidOption,
			want:  `'Options.EngineDefaults["pool_max_conns"]' must be between 1 and 10000.`,
		},
		{
			name:  "settings engine_defaults that are not a map",
			koanf: settings(map[string]any{"engine_defaults": "pool_max_conns=4"}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["engine_defaults"]' must be a map of pool options, not string.`,
		},
		{
			name:  "an engine name with a space",
			koanf: fromMap(withDefault(map[string]any{"a b": dsn})),
			is:    config.ErrInvalidEngineName,
			want:  `'SQLALCHEMY_ENGINES["a b"]' ` + badName,
		},
		{
			name:  "an engine name with a space in YAML",
			koanf: fromYAML("SQLALCHEMY_ENGINES:\n  default: " + dsn + "\n  \"a b\": " + dsn + "\n"),
			is:    config.ErrInvalidEngineName,
			want:  `'SQLALCHEMY_ENGINES["a b"]' ` + badName,
		},
		{
			name:  "an engine name with a dot",
			koanf: fromMap(withDefault(map[string]any{"a.b": dsn})),
			is:    config.ErrInvalidEngineName,
			want:  `'SQLALCHEMY_ENGINES["a.b"]' ` + badName,
		},
		{
			name:  "an engine name with a non-ASCII letter",
			koanf: fromMap(withDefault(map[string]any{"café": dsn})),
			is:    config.ErrInvalidEngineName,
			want:  `'SQLALCHEMY_ENGINES["café"]' ` + badName,
		},
		{
			name:  "an empty engine name",
			koanf: fromMap(withDefault(map[string]any{"": dsn})),
			is:    config.ErrInvalidEngineName,
			want:  `'SQLALCHEMY_ENGINES[""]' ` + badName,
		},
		{
			name:  "an engine name of 64 characters",
			koanf: fromMap(withDefault(map[string]any{strings.Repeat("a", 64): dsn})),
			is:    config.ErrInvalidEngineName,
			want:  `'SQLALCHEMY_ENGINES["` + strings.Repeat("a", 64) + `"]' ` + badName,
		},
		{
			name: "a host claimed by two engines",
			koanf: fromMap(withDefault(map[string]any{
				"acme":   map[string]any{"url": dsn, "hosts": []any{"shared.example.com"}},
				"globex": map[string]any{"url": dsn, "hosts": []any{"globex.example.com", "SHARED.Example.com."}},
			})),
			is: config.ErrDuplicateHost,
			want: `'SQLALCHEMY_ENGINES["globex"]["hosts"][1]' claims host "shared.example.com", ` +
				`which engine "acme" already claims at 'SQLALCHEMY_ENGINES["acme"]["hosts"][0]'.`,
		},
		{
			name:  "an invalid host",
			koanf: acme(map[string]any{"url": dsn, "hosts": []any{"acme.example.com", "bad host"}}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["hosts"][1]' is not a valid host name (use punycode for international names).`,
		},
		{
			name:  "a host with a kelvin sign",
			koanf: acme(map[string]any{"url": dsn, "hosts": []any{"\u212Aacme.com"}}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["hosts"][0]' is not a valid host name (use punycode for international names).`,
		},
		{
			name:  "hosts that are not a list",
			koanf: acme(map[string]any{"url": dsn, "hosts": 5}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["acme"]["hosts"]' must be a list of host names.`,
		},
		{
			name:  "tenants naming an undefined engine",
			koanf: settings(map[string]any{"tenants": []any{"acme", "nope"}}),
			is:    config.ErrUndefinedEngine,
			want:  `'FIBERDB["tenants"][1]' names engine "nope", but 'SQLALCHEMY_ENGINES["nope"]' was not defined.`,
		},
		{
			name:  "tenants that are not a list",
			koanf: settings(map[string]any{"tenants": 5}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["tenants"]' must be a list of engine names.`,
		},
		{
			name: "base_domain with engine names that differ only by case",
			koanf: func(t *testing.T) *koanf.Koanf {
				t.Helper()
				m := withDefault(map[string]any{"ACME": dsn, "acme": dsn})
				m[config.DefaultSettingsKey] = map[string]any{"base_domain": "example.com"}
				return mapKoanf(t, m)
			},
			is:   config.ErrDuplicateHost,
			want: `'SQLALCHEMY_ENGINES["acme"]' and engine "ACME" both answer subdomain "acme" of base_domain.`,
		},
		{
			name:  "a tenant_header with a space",
			koanf: settings(map[string]any{"tenant_header": "X Tenant"}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["tenant_header"]' must be an HTTP header name such as X-Tenant.`,
		},
		{
			name:  "a tenant_header with a colon",
			koanf: settings(map[string]any{"tenant_header": "X-Tenant:"}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["tenant_header"]' must be an HTTP header name such as X-Tenant.`,
		},
		{
			name:  "a tenant_header that is a number",
			koanf: settings(map[string]any{"tenant_header": 5}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["tenant_header"]' must be an HTTP header name such as X-Tenant.`,
		},
		{
			name:  "a base_domain with a slash",
			koanf: settings(map[string]any{"base_domain": "example.com/x"}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["base_domain"]' must be a domain name such as example.com.`,
		},
		{
			name:  "a base_domain that is an IPv6 literal",
			koanf: settings(map[string]any{"base_domain": "[::1]"}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["base_domain"]' must be a domain name such as example.com.`,
		},
		{
			name:  "a base_domain that is a number",
			koanf: settings(map[string]any{"base_domain": 5}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["base_domain"]' must be a domain name such as example.com.`,
		},
		{
			name:  "an unknown FIBERDB setting",
			koanf: settings(map[string]any{"tenant_headers": "X-Tenant"}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB["tenant_headers"]' is not a known setting (did you mean "tenant_header"?).`,
		},
		{
			name:  "FIBERDB that is not a map",
			koanf: fromMap(map[string]any{config.DefaultKey: map[string]any{"default": dsn}, config.DefaultSettingsKey: "x"}),
			is:    config.ErrInvalidOption,
			want:  `'FIBERDB' must be a map, not string.`,
		},
		{
			name:  "a custom key in messages",
			koanf: fromMap(map[string]any{"DATABASES": map[string]any{"acme": map[string]any{}}}),
			opts:  config.Options{Key: "DATABASES"},
			is:    config.ErrNoEngines,
			want: `'DATABASES["default"]' must be defined.` + "\n" +
				`'DATABASES["acme"]["url"]' must be defined.`,
			wantAll: []error{config.ErrNoURL},
		},
		{
			name: "a custom settings key in messages",
			koanf: fromMap(map[string]any{
				config.DefaultKey: map[string]any{"default": dsn},
				"APP":             map[string]any{"tenant_header": "X Tenant"},
			}),
			opts: config.Options{SettingsKey: "APP"},
			is:   config.ErrInvalidOption,
			want: `'APP["tenant_header"]' must be an HTTP header name such as X-Tenant.`,
		},
		{
			name: "several problems reported together in key order",
			koanf: func(t *testing.T) *koanf.Koanf {
				t.Helper()
				return mapKoanf(t, map[string]any{
					config.DefaultKey: map[string]any{
						"acme": map[string]any{"url": dsn, "pool_max_conns": 0, "pool_max_con": 1},
						"a b":  dsn,
						"globex": map[string]any{
							"url":   "postgres://u:s3cret@h:bad/db",
							"hosts": []any{"x.example.com"},
						},
						"initech": map[string]any{"pool_min_conns": 1},
					},
					config.DefaultSettingsKey: map[string]any{"tenant_header": "X Tenant", "base_domain": "a/b"},
				})
			},
			is: config.ErrInvalidOption,
			want: strings.Join([]string{
				`'FIBERDB["base_domain"]' must be a domain name such as example.com.`,
				`'FIBERDB["tenant_header"]' must be an HTTP header name such as X-Tenant.`,
				`'SQLALCHEMY_ENGINES["default"]' must be defined.`,
				`'SQLALCHEMY_ENGINES["a b"]' ` + badName,
				`'SQLALCHEMY_ENGINES["acme"]["pool_max_con"]' is not a known option (did you mean "pool_max_conns"?).`,
				`'SQLALCHEMY_ENGINES["acme"]["pool_max_conns"]' must be between 1 and 10000.`,
				`'SQLALCHEMY_ENGINES["globex"]["url"]' is not a valid PostgreSQL connection string: invalid port.`,
				`'SQLALCHEMY_ENGINES["initech"]["url"]' must be defined.`,
			}, "\n"),
			wantAll: []error{config.ErrNoEngines, config.ErrInvalidEngineName, config.ErrInvalidURL, config.ErrNoURL},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf, err := config.Load(tt.koanf(t), tt.opts)
			require.Error(t, err)
			require.Nil(t, conf)
			require.ErrorIs(t, err, tt.is)
			for _, sentinel := range tt.wantAll {
				require.ErrorIs(t, err, sentinel)
			}
			if tt.want != "" {
				require.EqualError(t, err, tt.want)
			}
			for _, part := range tt.has {
				require.Contains(t, err.Error(), part)
			}
			for _, part := range tt.hasNot {
				require.NotContains(t, err.Error(), part)
			}
			requireKeyErrors(t, err)
		})
	}
}

// requireKeyErrors checks that err is one *config.KeyError, or a join of
// them, each naming its key in its message.
func requireKeyErrors(t *testing.T, err error) {
	t.Helper()
	errs := []error{err}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		var ke *config.KeyError
		require.ErrorAs(t, e, &ke)
		require.True(t, strings.HasPrefix(e.Error(), "'"+ke.Key+"' "), "%q does not start with its key", e.Error())
	}
}

func TestLoadAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		conf      map[string]any
		opts      config.Options
		wantNames []string
		wantHosts map[string]string
	}{
		{
			name:      "AllowEmpty with no engines at all",
			conf:      map[string]any{},
			opts:      config.Options{AllowEmpty: true},
			wantNames: []string{},
			wantHosts: map[string]string{},
		},
		{
			name:      "AllowEmpty with engines but no default",
			conf:      withEngines(map[string]any{"acme": dsn}),
			opts:      config.Options{AllowEmpty: true},
			wantNames: []string{"acme"},
			wantHosts: map[string]string{},
		},
		{
			name: "a host listed twice by the same engine",
			conf: withDefault(map[string]any{
				"acme": map[string]any{"url": dsn, "hosts": []any{"acme.example.com", "ACME.example.com.", "acme.example.com:8080"}},
			}),
			wantNames: []string{"acme", "default"},
			wantHosts: map[string]string{"acme.example.com": "acme"},
		},
		{
			name: "hosts as a comma-separated string",
			conf: withDefault(map[string]any{
				"acme": map[string]any{"url": dsn, "hosts": "a.example.com, b.example.com"},
			}),
			wantNames: []string{"acme", "default"},
			wantHosts: map[string]string{"a.example.com": "acme", "b.example.com": "acme"},
		},
		{
			name:      "an engine name of 63 characters",
			conf:      withDefault(map[string]any{strings.Repeat("a", 63): dsn}),
			wantNames: []string{strings.Repeat("a", 63), "default"},
			wantHosts: map[string]string{},
		},
		{
			name:      "engine names with every allowed character",
			conf:      withDefault(map[string]any{"Az09_-": dsn}),
			wantNames: []string{"Az09_-", "default"},
			wantHosts: map[string]string{},
		},
		{
			name: "engine names that differ only by case without base_domain",
			conf: withDefault(map[string]any{
				"ACME": map[string]any{"url": dsn, "hosts": []any{"upper.example.com"}},
				"acme": map[string]any{"url": dsn, "hosts": []any{"lower.example.com"}},
			}),
			wantNames: []string{"ACME", "acme", "default"},
			wantHosts: map[string]string{"upper.example.com": "ACME", "lower.example.com": "acme"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := loadOK(t, mapKoanf(t, tt.conf), tt.opts)
			require.Equal(t, tt.wantNames, conf.Names())
			require.Equal(t, tt.wantHosts, conf.Hosts())
		})
	}
}

func TestLoadTenants(t *testing.T) {
	t.Parallel()
	engines := func() map[string]any {
		return withEngines(map[string]any{"default": dsn, "globex": dsn, "acme": dsn, "Initech": dsn})
	}
	tests := []struct {
		name    string
		tenants any // FIBERDB.tenants; nil leaves it unset
		want    []string
	}{
		{name: "every engine but default, sorted, by default", want: []string{"Initech", "acme", "globex"}},
		{name: "a list overrides the default", tenants: []any{"globex", "acme"}, want: []string{"acme", "globex"}},
		{name: "a list may name default", tenants: []any{"default"}, want: []string{"default"}},
		{name: "a list with duplicates", tenants: []any{"acme", "acme"}, want: []string{"acme"}},
		{name: "a comma-separated string", tenants: "globex, acme", want: []string{"acme", "globex"}},
		{name: "an empty list means no tenants", tenants: []any{}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := engines()
			if tt.tenants != nil {
				m[config.DefaultSettingsKey] = map[string]any{"tenants": tt.tenants}
			}
			conf := loadOK(t, mapKoanf(t, m))
			require.Equal(t, tt.want, conf.Tenants)
		})
	}
}

func TestConfigHostsAndNames(t *testing.T) {
	t.Parallel()
	conf := loadOK(t, mapKoanf(t, withDefault(map[string]any{
		"globex": map[string]any{"url": dsn, "hosts": []any{"globex.example.com:8080", "[::1]"}},
		"acme":   map[string]any{"url": dsn, "hosts": []any{"ACME.Example.COM.", "acme.localhost"}},
	})))
	require.Equal(t, []string{"acme", "default", "globex"}, conf.Names())
	require.Equal(t, map[string]string{
		"acme.example.com":   "acme",
		"acme.localhost":     "acme",
		"globex.example.com": "globex",
		"::1":                "globex",
	}, conf.Hosts())
	require.Equal(t, []string{"acme.example.com", "acme.localhost"}, conf.Engines["acme"].Hosts)
	require.Equal(t, "acme", conf.Engines["acme"].Name)
	require.Empty(t, conf.Engines["default"].Hosts)

	// Hosts returns a new map each time.
	hosts := conf.Hosts()
	delete(hosts, "acme.example.com")
	require.Contains(t, conf.Hosts(), "acme.example.com")
}

func TestPoolConfigReturnsACopy(t *testing.T) {
	t.Parallel()
	conf := loadOK(t, mapKoanf(t, withEngines(map[string]any{
		"default": map[string]any{"url": dsn, "pool_max_conns": 3},
	})))
	pc := poolConfig(t, conf, "default")
	pc.MaxConns = 99
	pc.ConnConfig.Database = "other"
	pc = poolConfig(t, conf, "default")
	require.Equal(t, int32(3), pc.MaxConns)
	require.Equal(t, "central", pc.ConnConfig.Database)
}

func TestLoadDoesNotMutate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		conf    func() map[string]any
		wantErr bool
	}{
		{
			name: "a valid configuration",
			conf: func() map[string]any {
				return map[string]any{
					config.DefaultKey: map[string]any{
						"default": dsn,
						"acme": map[string]any{
							"url": dsn, "pool_max_conns": "8", "hosts": []any{"ACME.example.com."},
						},
						"globex": map[string]any{"url": map[string]any{
							"host": "/tmp", "port": 5432, "params": map[string]any{"sslmode": "disable"},
						}},
					},
					config.DefaultSettingsKey: map[string]any{
						"engine_defaults": map[string]any{"pool_min_conns": 1},
						"tenants":         "acme, globex",
						"base_domain":     "Example.COM",
						"overrides": map[string]any{
							"acme":    map[string]any{"url": map[string]any{"host": "db2", "params": map[string]any{"sslmode": "require"}}},
							"default": map[string]any{"pool_max_conns": 3, "hosts": []any{"central.example.com"}},
							"globex":  map[string]any{"url": map[string]any{"port": 5433}},
						},
					},
				}
			},
		},
		{
			name:    "an invalid configuration",
			wantErr: true,
			conf: func() map[string]any {
				return map[string]any{
					config.DefaultKey: map[string]any{
						"acme":   map[string]any{"pool_max_conns": "x", "hosts": []any{"a b"}},
						"globex": map[string]any{"url": map[string]any{"hots": "h"}},
					},
					config.DefaultSettingsKey: map[string]any{"tenants": []any{"nope"}, "bogus": 1},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := tt.conf()
			k := koanf.New(".")
			require.NoError(t, k.Load(confmap.Provider(m, ""), nil))
			defaults := map[string]any{"pool_max_conns": "6", "pool_max_conn_idle_time": "5m"}

			before := k.All() // a deep copy
			raw := k.Raw()
			_, err := config.Load(k, config.Options{EngineDefaults: defaults})
			require.Equal(t, tt.wantErr, err != nil, "Load returned %v", err)

			require.Equal(t, before, k.All())
			require.Equal(t, raw, k.Raw())
			require.Equal(t, map[string]any{"pool_max_conns": "6", "pool_max_conn_idle_time": "5m"}, defaults)
			require.Equal(t, tt.conf(), m)
		})
	}
}

func TestLoadCustomKey(t *testing.T) {
	t.Parallel()
	k := mapKoanf(t, map[string]any{
		"DATABASES": map[string]any{"default": dsn, "acme": dsn},
		// The default key is not read when another is given.
		config.DefaultKey: map[string]any{"default": "postgres://u@h:bad/db"},
	})
	conf := loadOK(t, k, config.Options{Key: "DATABASES"})
	require.Equal(t, "DATABASES", conf.Key)
	require.Equal(t, []string{"acme", "default"}, conf.Names())

	_, err := config.Load(k)
	require.ErrorIs(t, err, config.ErrInvalidURL)
}

func TestLoadYAMLFixture(t *testing.T) {
	t.Parallel()
	k := koanf.New(".")
	require.NoError(t, k.Load(file.Provider("testdata/fiberdb.yaml"), yaml.Parser()))
	conf := loadOK(t, k)

	require.Equal(t, config.DefaultKey, conf.Key)
	require.Equal(t, []string{"acme", "default", "globex"}, conf.Names())
	require.Equal(t, []string{"acme", "globex"}, conf.Tenants)
	require.Equal(t, "X-Tenant", conf.TenantHeader)
	require.Equal(t, "example.com", conf.BaseDomain)
	require.Equal(t, map[string]string{"acme.example.com": "acme", "acme.localhost": "acme"}, conf.Hosts())

	tests := []struct {
		engine   string
		database string
		maxConns int32
		tls      bool
	}{
		{engine: "default", database: "central", maxConns: 4, tls: true},
		{engine: "acme", database: "acme", maxConns: 8, tls: true},
		{engine: "globex", database: "globex", maxConns: 4, tls: false},
	}
	for _, tt := range tests {
		t.Run(tt.engine+" engine", func(t *testing.T) {
			t.Parallel()
			pc := poolConfig(t, conf, tt.engine)
			require.Equal(t, "127.0.0.1", pc.ConnConfig.Host)
			require.Equal(t, uint16(5432), pc.ConnConfig.Port)
			require.Equal(t, "app", pc.ConnConfig.User)
			require.Equal(t, tt.database, pc.ConnConfig.Database)
			require.Equal(t, tt.maxConns, pc.MaxConns)
			require.Equal(t, 5*time.Minute, pc.MaxConnIdleTime)
			require.Equal(t, tt.tls, pc.ConnConfig.TLSConfig != nil, "sslmode prefer tries TLS; disable does not")
		})
	}
}

// An engine's own url is per-engine configuration: its pool parameters win
// over engine_defaults and Options.EngineDefaults, as its map options do.
func TestURLPoolParamsBeatDefaults(t *testing.T) {
	t.Parallel()
	k := mapKoanf(t, map[string]any{
		config.DefaultKey: map[string]any{
			"default": dsn + "&pool_max_conns=9&connect_timeout=3",
			"other":   dsn,
		},
		config.DefaultSettingsKey: map[string]any{"engine_defaults": map[string]any{"pool_max_conns": 2, "connect_timeout": "7s"}},
	})
	conf := loadOK(t, k, config.Options{EngineDefaults: map[string]any{"pool_max_conns": 5}})
	def := conf.Engines["default"].PoolConfig()
	require.EqualValues(t, 9, def.MaxConns)
	require.Equal(t, 3*time.Second, def.ConnConfig.ConnectTimeout)
	other := conf.Engines["other"].PoolConfig()
	require.EqualValues(t, 2, other.MaxConns)
	require.Equal(t, 7*time.Second, other.ConnConfig.ConnectTimeout)
}
