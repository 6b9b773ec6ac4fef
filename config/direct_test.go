package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

// pgbouncerYAML is DESIGN.md's shared-pools example with a direct_url next
// to each PgBouncer url.
const pgbouncerYAML = `
SQLALCHEMY_ENGINES:
  default:
    url: postgres://app:pw@pgbouncer:6432/central
    direct_url: postgres://app:pw@db:5432/central
  saas:
    url: postgres://app@pgbouncer:6432/saas
    direct_url: {host: db, port: 5432, user: migrator, database: saas, params: {sslmode: disable}}
    default_query_exec_mode: exec
    connect_timeout: 3s
  acme:   {pool: saas, search_path: acme}
  kv:
    url: postgres://app@pgbouncer:6432/kv
    direct_url: "host=db port=5432 user=app dbname=kv connect_timeout=9"
  plain: postgres://app@db:5432/plain
FIBERDB:
  engine_defaults: {connect_timeout: 7s, statement_cache_capacity: 5}
`

// direct is the part of a direct connection's configuration the tests check.
type direct struct {
	Host, User, Database string
	Port                 uint16
	ConnectTimeout       time.Duration
	ExecMode             pgx.QueryExecMode
	StatementCache       int
}

func directOf(cc *pgx.ConnConfig) direct {
	return direct{
		Host: cc.Host, User: cc.User, Database: cc.Database, Port: cc.Port,
		ConnectTimeout: cc.ConnectTimeout, ExecMode: cc.DefaultQueryExecMode, StatementCache: cc.StatementCacheCapacity,
	}
}

func TestLoadDirectURL(t *testing.T) {
	t.Parallel()
	conf := loadOK(t, yamlKoanf(t, pgbouncerYAML))
	require.NoError(t, conf.Validate())
	exec := pgx.QueryExecModeCacheStatement

	tests := []struct {
		name   string
		engine string
		want   direct
	}{
		{
			name:   "a URL string",
			engine: "default",
			want:   direct{Host: "db", User: "app", Database: "central", Port: 5432, ConnectTimeout: 7 * time.Second, ExecMode: exec, StatementCache: 5},
		},
		{
			name:   "the map form, with the engine's own options",
			engine: "saas",
			want: direct{
				Host: "db", User: "migrator", Database: "saas", Port: 5432,
				ConnectTimeout: 3 * time.Second, ExecMode: pgx.QueryExecModeExec, StatementCache: 5,
			},
		},
		{
			name:   "a shared-pool engine has its pool's engine's",
			engine: "acme",
			want: direct{
				Host: "db", User: "migrator", Database: "saas", Port: 5432,
				ConnectTimeout: 3 * time.Second, ExecMode: pgx.QueryExecModeExec, StatementCache: 5,
			},
		},
		{
			name:   "a keyword/value DSN whose own parameter beats the defaults",
			engine: "kv",
			want:   direct{Host: "db", User: "app", Database: "kv", Port: 5432, ConnectTimeout: 9 * time.Second, ExecMode: exec, StatementCache: 5},
		},
		{
			name:   "no direct_url is the url",
			engine: "plain",
			want:   direct{Host: "db", User: "app", Database: "plain", Port: 5432, ConnectTimeout: 7 * time.Second, ExecMode: exec, StatementCache: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cc := conf.DirectConfig(tt.engine)
			require.NotNil(t, cc)
			require.Equal(t, tt.want, directOf(cc))
		})
	}

	t.Run("the pool keeps the url", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "pgbouncer", poolConfig(t, conf, "saas").ConnConfig.Host)
		require.Equal(t, "pgbouncer", poolConfig(t, conf, "default").ConnConfig.Host)
		require.Equal(t, poolConfig(t, conf, "plain").ConnString(), conf.DirectConfig("plain").ConnString())
	})
	t.Run("a copy each call, and in a clone", func(t *testing.T) {
		t.Parallel()
		conf.DirectConfig("saas").RuntimeParams["search_path"] = "changed"
		require.NotContains(t, conf.DirectConfig("saas").RuntimeParams, "search_path")
		clone := conf.Clone()
		require.Equal(t, directOf(conf.DirectConfig("saas")), directOf(clone.DirectConfig("saas")))
		require.NoError(t, clone.Validate())
	})
	t.Run("nil for no engine, a hand-built one, or no Config", func(t *testing.T) {
		t.Parallel()
		require.Nil(t, conf.DirectConfig("nope"))
		hand := &config.Config{Engines: map[string]*config.Engine{"default": {Name: "default"}}}
		require.Nil(t, hand.DirectConfig("default"))
		require.Nil(t, hand.Engines["default"].DirectConfig())
		var none *config.Config
		require.Nil(t, none.DirectConfig("default"))
	})
	t.Run("a shared-pool engine's is its pool's engine's, without its search_path", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "acme", conf.Engines["acme"].SearchPath)
		require.Equal(t, conf.DirectConfig("saas").ConnString(), conf.DirectConfig("acme").ConnString())
		require.Equal(t, conf.DirectConfig("saas").RuntimeParams, conf.DirectConfig("acme").RuntimeParams)
		require.NotContains(t, conf.DirectConfig("acme").RuntimeParams, "search_path")
	})
	t.Run("Engine.DirectConfig, nil for a shared-pool engine", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"default", "saas", "kv", "plain"} {
			require.Equal(t, directOf(conf.DirectConfig(name)), directOf(conf.Engines[name].DirectConfig()), name)
		}
		require.Equal(t, "db", conf.Engines["saas"].DirectConfig().Host, "the direct_url's, not the url's")
		require.Nil(t, conf.Engines["acme"].DirectConfig())
		conf.Engines["saas"].DirectConfig().RuntimeParams["search_path"] = "changed"
		require.NotContains(t, conf.Engines["saas"].DirectConfig().RuntimeParams, "search_path", "a copy each call")
	})
}

func TestLoadDirectURLErrors(t *testing.T) {
	t.Parallel()
	engine := func(e map[string]any) *koanf.Koanf {
		return mapKoanf(t, withDefault(map[string]any{"saas": e}))
	}
	withURL := func(direct any) *koanf.Koanf {
		return engine(map[string]any{"url": dsn, "direct_url": direct})
	}
	const key = `'SQLALCHEMY_ENGINES["saas"]["direct_url"]' `

	tests := []struct {
		name  string
		koanf *koanf.Koanf
		is    error
		want  string
	}{
		{
			name:  "a bad port, never quoting the password",
			koanf: withURL("postgres://app:s3cret@db:99999/saas"),
			is:    config.ErrInvalidURL,
			want:  key + "is not a valid PostgreSQL connection string: invalid port.",
		},
		{
			name:  "an empty string",
			koanf: withURL(""),
			is:    config.ErrNoURL,
			want:  key + "must be defined.",
		},
		{
			name:  "a number",
			koanf: withURL(5432),
			is:    config.ErrInvalidURL,
			want:  key + "must be a connection string or a map, not int.",
		},
		{
			name:  "an unknown key of the map form",
			koanf: withURL(map[string]any{"hots": "db"}),
			is:    config.ErrInvalidURL,
			want:  `'SQLALCHEMY_ENGINES["saas"]["direct_url"]["hots"]' is not a known url key (host, port, user, password, database, params).`,
		},
		{
			name:  "an unencoded @ in the password",
			koanf: withURL("postgres://app:p@ss@db/saas"),
			is:    config.ErrInvalidURL,
			want:  key + `must percent-encode "@" as %40 and "/" as %2F in its user name, password and database name.`,
		},
		{
			name:  "a pool parameter, which no pool uses",
			koanf: withURL("postgres://app@db/saas?pool_max_conns=4"),
			is:    config.ErrInvalidURL,
			want:  key + "sets pool_max_conns, but no pool is made from a direct_url: set it on the engine.",
		},
		{
			name:  "a connection parameter out of bounds",
			koanf: withURL("postgres://app@db/saas?statement_cache_capacity=-1"),
			is:    config.ErrInvalidURL,
			want:  key + "sets statement_cache_capacity, which must be between 0 and 10000.",
		},
		{
			name:  "a bad option of the engine, reported once",
			koanf: engine(map[string]any{"url": dsn, "direct_url": dsn, "pool_max_conns": 0}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["saas"]["pool_max_conns"]' must be between 1 and 10000.`,
		},
		{
			name:  "a direct_url without a url",
			koanf: engine(map[string]any{"direct_url": dsn}),
			is:    config.ErrNoURL,
			want:  `'SQLALCHEMY_ENGINES["saas"]["url"]' must be defined.`,
		},
		{
			name:  "a bad url and a bad direct_url, both reported",
			koanf: engine(map[string]any{"url": "postgres://app@db:99999/saas", "direct_url": ""}),
			is:    config.ErrInvalidURL,
			want: `'SQLALCHEMY_ENGINES["saas"]["url"]' is not a valid PostgreSQL connection string: invalid port.` + "\n" +
				key + "must be defined.",
		},
		{
			name: "with pool",
			koanf: mapKoanf(t, withDefault(map[string]any{
				"saas": dsn,
				"acme": map[string]any{"pool": "saas", "direct_url": dsn},
			})),
			is: config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["acme"]["direct_url"]' must not be set together with pool: ` +
				`the engine's tables are in the pool's engine's database, so set direct_url on that engine.`,
		},
		{
			name:  "a misspelling",
			koanf: engine(map[string]any{"url": dsn, "directUrl": dsn}),
			is:    config.ErrInvalidOption,
			want:  `'SQLALCHEMY_ENGINES["saas"]["directUrl"]' is not a known option (did you mean "direct_url"?).`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf, err := config.Load(tt.koanf)
			require.Nil(t, conf)
			require.ErrorIs(t, err, tt.is)
			require.EqualError(t, err, tt.want)
			require.NotContains(t, err.Error(), "s3cret")
			requireKeyErrors(t, err)
		})
	}
}

func TestDirectURLFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want direct
	}{
		{
			name: "a whole direct_url over an engine written as a string",
			env:  []string{"FIBERDB_ENGINES__PLAIN__DIRECT_URL=postgres://migrator@db2:5433/plain"},
			want: direct{Host: "db2", User: "migrator", Database: "plain", Port: 5433},
		},
		{
			name: "a part of the file's direct_url string",
			env:  []string{"FIBERDB_ENGINES__DEFAULT__DIRECT_URL__HOST=db3"},
			want: direct{Host: "db3", User: "app", Database: "central", Port: 5432},
		},
		{
			name: "a part of the file's direct_url map",
			env:  []string{"FIBERDB_ENGINES__SAAS__DIRECT_URL__PORT=6543"},
			want: direct{Host: "db", User: "migrator", Database: "saas", Port: 6543},
		},
		{
			name: "a part of a keyword/value direct_url",
			env:  []string{"FIBERDB_ENGINES__KV__DIRECT_URL__USER=owner"},
			want: direct{Host: "db", User: "owner", Database: "kv", Port: 5432},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := loadOK(t, yamlAndEnv(t, pgbouncerYAML, tt.env...))
			name := strings.ToLower(strings.Split(tt.env[0], "__")[1])
			got := directOf(conf.DirectConfig(name))
			require.Equal(t, tt.want, direct{Host: got.Host, User: got.User, Database: got.Database, Port: got.Port})
			require.Equal(t, loadOK(t, yamlKoanf(t, pgbouncerYAML)).Engines[name].PoolConfig().ConnString(),
				poolConfig(t, conf, name).ConnString(), "the url is untouched")
		})
	}
}

// urlOnlyYAML has engines with a url in each form and no direct_url.
const urlOnlyYAML = `
SQLALCHEMY_ENGINES:
  default: postgres://app:pw@pgbouncer:6432/central?pool_max_conns=4&application_name=shop
  saas: {url: postgres://app:pw@pgbouncer:6432/saas, pool_max_conns: 3}
  globex:
    url: {host: pgbouncer, port: 6432, user: app, password: pw, database: globex, params: {application_name: shop}}
`

// Review of direct_url: FIBERDB_ENGINES__SAAS__DIRECT_URL__HOST=db over an
// engine without a direct_url gave the direct_url host='db' alone, which
// connects as the OS user to its namesake database without an error.
func TestDirectURLPartsOverTheURL(t *testing.T) {
	t.Parallel()
	type conn struct {
		Host, User, Password, Database, App string
		Port                                uint16
	}
	tests := []struct {
		name     string
		env      []string
		engine   string
		want     conn
		poolPort uint16
	}{
		{
			name:     "a url string of an engine map",
			env:      []string{"FIBERDB_ENGINES__SAAS__DIRECT_URL__HOST=db"},
			engine:   "saas",
			want:     conn{Host: "db", Port: 6432, User: "app", Password: "pw", Database: "saas"},
			poolPort: 6432,
		},
		{
			name:     "a url map",
			env:      []string{"FIBERDB_ENGINES__GLOBEX__DIRECT_URL__HOST=db", "FIBERDB_ENGINES__GLOBEX__DIRECT_URL__PORT=5432"},
			engine:   "globex",
			want:     conn{Host: "db", Port: 5432, User: "app", Password: "pw", Database: "globex", App: "shop"},
			poolPort: 6432,
		},
		{
			name:     "an engine written as a string, whose pool_max_conns is its pool's",
			env:      []string{"FIBERDB_ENGINES__DEFAULT__DIRECT_URL__HOST=db"},
			engine:   "default",
			want:     conn{Host: "db", Port: 6432, User: "app", Password: "pw", Database: "central", App: "shop"},
			poolPort: 6432,
		},
		{
			name:     "a url part too, which the direct_url keeps",
			env:      []string{"FIBERDB_ENGINES__SAAS__DIRECT_URL__HOST=db", "FIBERDB_ENGINES__SAAS__URL__PORT=6433"},
			engine:   "saas",
			want:     conn{Host: "db", Port: 6433, User: "app", Password: "pw", Database: "saas"},
			poolPort: 6433,
		},
		{
			name:     "an engine of the environment alone",
			env:      []string{"FIBERDB_ENGINES__NEW=postgres://app:pw@pgbouncer:6432/new", "FIBERDB_ENGINES__NEW__DIRECT_URL__HOST=db"},
			engine:   "new",
			want:     conn{Host: "db", Port: 6432, User: "app", Password: "pw", Database: "new"},
			poolPort: 6432,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := loadOK(t, yamlAndEnv(t, urlOnlyYAML, tt.env...))
			cc := conf.DirectConfig(tt.engine)
			require.NotNil(t, cc)
			got := conn{
				Host: cc.Host, User: cc.User, Password: cc.Password, Database: cc.Database,
				App: cc.RuntimeParams["application_name"], Port: cc.Port,
			}
			require.Equal(t, tt.want, got)
			pool := poolConfig(t, conf, tt.engine)
			require.Equal(t, "pgbouncer", pool.ConnConfig.Host, "the url keeps its host")
			require.Equal(t, tt.poolPort, pool.ConnConfig.Port)
		})
	}
	t.Run("the url's pool_max_conns stays with its pool", func(t *testing.T) {
		t.Parallel()
		conf := loadOK(t, yamlAndEnv(t, urlOnlyYAML, "FIBERDB_ENGINES__DEFAULT__DIRECT_URL__HOST=db"))
		require.EqualValues(t, 4, poolConfig(t, conf, "default").MaxConns)
		require.NotContains(t, conf.DirectConfig("default").RuntimeParams, "pool_max_conns")
	})
}
