package config_test

import (
	"testing"

	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

// quickStart is the README's Quick-start file, where acme's url is a string.
const quickStart = `
SQLALCHEMY_ENGINES:
  default: postgres://app@127.0.0.1:5432/central
  acme:
    url: postgres://app:pw@127.0.0.1:5433/acme?sslmode=disable&application_name=shop
    hosts: [acme.example.com]
  globex:
    url: {host: 127.0.0.1, port: 5432, user: app, database: globex, params: {sslmode: disable}}
  kv: "host=127.0.0.1 port=5434 user=app dbname=kv sslmode=disable"
  Initech: postgres://app@127.0.0.1:5432/initech
FIBERDB:
  engine_defaults: {pool_max_conns: 8}
`

func yamlAndEnv(t *testing.T, doc string, env ...string) *koanf.Koanf {
	t.Helper()
	k := yamlKoanf(t, doc)
	require.NoError(t, k.Load(config.EnvProvider(config.EnvOptions{Environ: func() []string { return env }}), nil))
	return k
}

// Issue 13: FIBERDB_ENGINES__ACME__URL__HOST=db2 over a url written as a
// string gave acme a url of that host alone (user root, no database), and
// option variables over an engine written as a string, or named in another
// case, gave "must be defined".
func TestEnvMergesIntoTheFile(t *testing.T) {
	t.Parallel()
	type conn struct {
		Host     string
		Port     uint16
		User     string
		Password string
		Database string
		App      string
		MaxConns int32
	}
	tests := []struct {
		name   string
		env    []string
		engine string
		want   conn
	}{
		{
			name:   "a host into a url string",
			env:    []string{"FIBERDB_ENGINES__ACME__URL__HOST=db2"},
			engine: "acme",
			want:   conn{Host: "db2", Port: 5433, User: "app", Password: "pw", Database: "acme", App: "shop", MaxConns: 8},
		},
		{
			name: "every part into a url string",
			env: []string{
				"FIBERDB_ENGINES__ACME__URL__HOST=db2", "FIBERDB_ENGINES__ACME__URL__PORT=6432",
				"FIBERDB_ENGINES__ACME__URL__USER=bob", "FIBERDB_ENGINES__ACME__URL__PASSWORD=p@ss/w&rd?#",
				"FIBERDB_ENGINES__ACME__URL__DATABASE=acme2", "FIBERDB_ENGINES__ACME__URL__PARAMS__APPLICATION_NAME=x y",
			},
			engine: "acme",
			want:   conn{Host: "db2", Port: 6432, User: "bob", Password: "p@ss/w&rd?#", Database: "acme2", App: "x y", MaxConns: 8},
		},
		{
			name:   "a host into a keyword/value string",
			env:    []string{"FIBERDB_ENGINES__KV__URL__HOST=db2", "FIBERDB_ENGINES__KV__URL__PASSWORD=it's"},
			engine: "kv",
			want:   conn{Host: "db2", Port: 5434, User: "app", Password: "it's", Database: "kv", MaxConns: 8},
		},
		{
			name:   "a host into a url map",
			env:    []string{"FIBERDB_ENGINES__GLOBEX__URL__HOST=db2"},
			engine: "globex",
			want:   conn{Host: "db2", Port: 5432, User: "app", Database: "globex", MaxConns: 8},
		},
		{
			name:   "an option into an engine written as a string",
			env:    []string{"FIBERDB_ENGINES__DEFAULT__POOL_MAX_CONNS=3"},
			engine: "default",
			want:   conn{Host: "127.0.0.1", Port: 5432, User: "app", Database: "central", MaxConns: 3},
		},
		{
			name:   "an option and a url part into an engine named in another case",
			env:    []string{"FIBERDB_ENGINES__INITECH__POOL_MAX_CONNS=3", "FIBERDB_ENGINES__INITECH__URL__HOST=db2"},
			engine: "Initech",
			want:   conn{Host: "db2", Port: 5432, User: "app", Database: "initech", MaxConns: 3},
		},
		{
			name:   "a whole url replaces a url string",
			env:    []string{"FIBERDB_ENGINES__ACME=postgres://u@db3/other?sslmode=disable"},
			engine: "acme",
			want:   conn{Host: "db3", Port: 5432, User: "u", Database: "other", MaxConns: 8},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := loadOK(t, yamlAndEnv(t, quickStart, tt.env...))
			require.Equal(t, []string{"Initech", "acme", "default", "globex", "kv"}, conf.Names(), "no engine added")
			cc := poolConfig(t, conf, tt.engine).ConnConfig
			got := conn{
				Host: cc.Host, Port: cc.Port, User: cc.User, Password: cc.Password, Database: cc.Database,
				App: cc.RuntimeParams["application_name"], MaxConns: poolConfig(t, conf, tt.engine).MaxConns,
			}
			require.Equal(t, tt.want, got)
			require.Equal(t, "acme", conf.Hosts()["acme.example.com"], "the file's hosts stay")
		})
	}
}

func TestEnvMergeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		env  []string
		is   error
		want string
	}{
		{
			name: "an engine named in two other cases",
			doc:  "SQLALCHEMY_ENGINES: {default: '" + dsn + "', Acme: '" + dsn + "', ACME: '" + dsn + "'}\n",
			env:  []string{"FIBERDB_ENGINES__ACME__POOL_MAX_CONNS=3"},
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["overrides"]["acme"]' matches engines "ACME" and "Acme" of 'SQLALCHEMY_ENGINES' in another case: ` +
				`environment variable names are lower-cased, so give these engines names that differ in more than case.`,
		},
		{
			name: "a url part that makes a multi-host url ambiguous",
			doc:  "SQLALCHEMY_ENGINES: {default: 'postgres://app@h1:5432,h2:5433/db'}\n",
			env:  []string{"FIBERDB_ENGINES__DEFAULT__URL__HOST=db2"},
			is:   config.ErrInvalidURL,
			want: `'SQLALCHEMY_ENGINES["default"]["url"]' is not a valid PostgreSQL connection string: could not match 2 port numbers to 1 hosts.`,
		},
		{
			name: "direct_url parts over an engine with no url to lay them over",
			doc:  "SQLALCHEMY_ENGINES: {default: '" + dsn + "', saas: {pool_max_conns: 3}}\n",
			env:  []string{"FIBERDB_ENGINES__SAAS__DIRECT_URL__HOST=db"},
			is:   config.ErrNoURL,
			want: `'FIBERDB["overrides"]["saas"]["direct_url"]' sets parts of a direct_url, but engine "saas" has no direct_url, ` +
				`nor a url to lay them over: set FIBERDB_ENGINES__SAAS__DIRECT_URL whole.` + "\n" +
				`'SQLALCHEMY_ENGINES["saas"]["url"]' must be defined.`,
		},
		{
			name: "an override that is a list",
			doc:  "SQLALCHEMY_ENGINES: {default: '" + dsn + "'}\nFIBERDB: {overrides: {default: [x]}}\n",
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["overrides"]["default"]' must be a connection string or a map with a url, not []interface {}.`,
		},
		{
			name: "overrides that are not a map",
			doc:  "SQLALCHEMY_ENGINES: {default: '" + dsn + "'}\nFIBERDB: {overrides: x}\n",
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["overrides"]' must be a map of engine names, not string.`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(yamlAndEnv(t, tt.doc, tt.env...))
			require.ErrorIs(t, err, tt.is)
			require.EqualError(t, err, tt.want)
			requireKeyErrors(t, err)
		})
	}
}

// Issue 13: a misspelled top-level key was never read, so the only error
// was that "default" was not defined.
func TestLoadHintsMisspelledTopLevelKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{
			name: "the engines key in lower case",
			doc:  "sqlalchemy_engines: {default: '" + dsn + "'}\n",
			want: `'sqlalchemy_engines' is not read (did you mean "SQLALCHEMY_ENGINES"? keys are case-sensitive).` + "\n" +
				`'SQLALCHEMY_ENGINES["default"]' must be defined.`,
		},
		{
			name: "the engines key singular",
			doc:  "SQLALCHEMY_ENGINE: {default: '" + dsn + "'}\n",
			want: `'SQLALCHEMY_ENGINE' is not read (did you mean "SQLALCHEMY_ENGINES"? keys are case-sensitive).` + "\n" +
				`'SQLALCHEMY_ENGINES["default"]' must be defined.`,
		},
		{
			name: "the settings key in lower case",
			doc:  "SQLALCHEMY_ENGINES: {default: '" + dsn + "'}\nfiberdb: {tenant_header: X-Tenant}\nfiberdb_app: {}\nSERVER: {}\n",
			want: `'fiberdb' is not read (did you mean "FIBERDB"? keys are case-sensitive).`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(yamlKoanf(t, tt.doc))
			require.ErrorIs(t, err, config.ErrInvalidOption)
			require.EqualError(t, err, tt.want)
			requireKeyErrors(t, err)
		})
	}
}

// Issue 13: an engine with a bad option was reported again wherever it was
// named, as "not defined".
func TestBadEngineIsReportedOnce(t *testing.T) {
	t.Parallel()
	doc := "SQLALCHEMY_ENGINES:\n  default: '" + dsn + "'\n  saas: {url: '" + dsn + "', pool_max_conns: x}\n" +
		"  acme: {pool: saas}\nFIBERDB: {tenants: [saas, acme]}\n"
	_, err := config.Load(yamlKoanf(t, doc))
	require.EqualError(t, err, `'SQLALCHEMY_ENGINES["saas"]["pool_max_conns"]' must be an integer.`)
}
