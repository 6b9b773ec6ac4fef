package config_test

import (
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

// fileAndEnv loads the YAML fixture, then env over it, as the EnvProvider
// documentation says to.
func fileAndEnv(t *testing.T, env ...string) *koanf.Koanf {
	t.Helper()
	k := koanf.New(".")
	require.NoError(t, k.Load(file.Provider("testdata/fiberdb.yaml"), yaml.Parser()))
	o := config.EnvOptions{Environ: func() []string { return env }}
	require.NoError(t, k.Load(config.EnvProvider(o), nil))
	return k
}

func TestEnvProviderOverridesFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   []string
		check func(t *testing.T, conf *config.Config)
	}{
		{
			name: "no variables keep the file values",
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				require.Equal(t, int32(8), poolConfig(t, conf, "acme").MaxConns)
				require.Equal(t, "X-Tenant", conf.TenantHeader)
			},
		},
		{
			name: "an engine pool option",
			env:  []string{"FIBERDB_ENGINES__ACME__POOL_MAX_CONNS=7"},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				require.Equal(t, int32(7), poolConfig(t, conf, "acme").MaxConns)
				require.Equal(t, "acme", poolConfig(t, conf, "acme").ConnConfig.Database, "the file url stays")
			},
		},
		{
			name: "an engine url",
			env:  []string{"FIBERDB_ENGINES__ACME__URL=postgres://other@db.internal:6432/acme2?sslmode=disable"},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				cc := poolConfig(t, conf, "acme").ConnConfig
				require.Equal(t, "db.internal", cc.Host)
				require.Equal(t, uint16(6432), cc.Port)
				require.Equal(t, "acme2", cc.Database)
				require.Equal(t, int32(8), poolConfig(t, conf, "acme").MaxConns, "the file options stay")
				require.Equal(t, "acme", conf.Hosts()["acme.example.com"], "the file hosts stay")
			},
		},
		{
			name: "one key of a url map",
			env:  []string{"FIBERDB_ENGINES__GLOBEX__URL__HOST=/var/run/postgresql"},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				cc := poolConfig(t, conf, "globex").ConnConfig
				require.Equal(t, "/var/run/postgresql", cc.Host)
				require.Equal(t, "globex", cc.Database)
			},
		},
		{
			name: "a new engine as a string",
			env:  []string{"FIBERDB_ENGINES__NEW=postgres://app@127.0.0.1:5432/new?sslmode=disable"},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				require.Equal(t, []string{"acme", "default", "globex", "new"}, conf.Names())
				require.Equal(t, "new", poolConfig(t, conf, "new").ConnConfig.Database)
				require.Equal(t, int32(4), poolConfig(t, conf, "new").MaxConns, "engine_defaults apply")
				require.Equal(t, []string{"acme", "globex", "new"}, conf.Tenants)
			},
		},
		{
			name: "hosts as a comma-separated list",
			env:  []string{"FIBERDB_ENGINES__ACME__HOSTS=a.example.com,B.example.com"},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				require.Equal(t, []string{"a.example.com", "b.example.com"}, conf.Engines["acme"].Hosts)
				require.Equal(t, map[string]string{"a.example.com": "acme", "b.example.com": "acme"}, conf.Hosts())
			},
		},
		{
			name: "an engine default",
			env:  []string{"FIBERDB_ENGINE_DEFAULTS__POOL_MAX_CONN_IDLE_TIME=7m"},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				for _, name := range conf.Names() {
					require.Equal(t, 7*time.Minute, poolConfig(t, conf, name).MaxConnIdleTime, name)
				}
				require.Equal(t, int32(4), poolConfig(t, conf, "default").MaxConns, "other file defaults stay")
			},
		},
		{
			name: "tenant_header",
			env:  []string{"FIBERDB_TENANT_HEADER=X-Org"},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				require.Equal(t, "X-Org", conf.TenantHeader)
			},
		},
		{
			name: "an empty tenant_header turns header routing off",
			env:  []string{"FIBERDB_TENANT_HEADER="},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				require.Empty(t, conf.TenantHeader)
			},
		},
		{
			name: "base_domain",
			env:  []string{"FIBERDB_BASE_DOMAIN=Tenants.Example.ORG"},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				require.Equal(t, "tenants.example.org", conf.BaseDomain)
			},
		},
		{
			name: "tenants",
			env:  []string{"FIBERDB_TENANTS=acme"},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				require.Equal(t, []string{"acme"}, conf.Tenants)
			},
		},
		{
			name: "fiberdb's tool variables and other prefixes are ignored",
			env: []string{
				"FIBERDB_TEST_DATABASE_URL=postgres://u:p@h:notaport/db",
				"FIBERDB_PG_BINDIR=/usr/lib/postgresql/17/bin",
				"OTHER_ENGINES__ACME__POOL_MAX_CONNS=junk",
				"fiberdb_engines__acme__pool_max_conns=junk",
				"NOEQUALSIGN",
			},
			check: func(t *testing.T, conf *config.Config) {
				t.Helper()
				require.Equal(t, []string{"acme", "default", "globex"}, conf.Names())
				require.Equal(t, int32(8), poolConfig(t, conf, "acme").MaxConns)
				require.Equal(t, "X-Tenant", conf.TenantHeader)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := loadOK(t, fileAndEnv(t, tt.env...))
			tt.check(t, conf)
		})
	}
}

func TestEnvProviderErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  string
		is   error
		want string
	}{
		{
			name: "a pool option that is not an integer",
			env:  "FIBERDB_ENGINES__ACME__POOL_MAX_CONNS=eight",
			is:   config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["acme"]["pool_max_conns"]' must be an integer.`,
		},
		{
			name: "an unknown engine option",
			env:  "FIBERDB_ENGINES__ACME__POOL_MAX_CON=7",
			is:   config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["acme"]["pool_max_con"]' is not a known option (did you mean "pool_max_conns"?).`,
		},
		{
			name: "tenants naming an undefined engine",
			env:  "FIBERDB_TENANTS=acme,nope",
			is:   config.ErrUndefinedEngine,
			want: `'FIBERDB["tenants"][1]' names engine "nope", but 'SQLALCHEMY_ENGINES["nope"]' was not defined.`,
		},
		{
			// Issue 13: the same typo in the file was an error, but ignored here.
			name: "a misspelled setting",
			env:  "FIBERDB_TENANT_HEADR=X-Org",
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["tenant_headr"]' is not a known setting (did you mean "tenant_header"?).`,
		},
		{
			name: "a name with empty parts",
			env:  "FIBERDB_ENGINES____URL=s3cret",
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["malformed_env"]' holds environment variables whose names have an empty or dotted part between "__" (FIBERDB_ENGINES____URL).`,
		},
		{
			name: "a name with a dot",
			env:  "FIBERDB_TENANT.HEADER=s3cret",
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["malformed_env"]' holds environment variables whose names have an empty or dotted part between "__" (FIBERDB_TENANT_HEADER).`,
		},
		{
			name: "engines without a name",
			env:  "FIBERDB_ENGINES=s3cret",
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["malformed_env"]' holds environment variables whose names have an empty or dotted part between "__" (FIBERDB_ENGINES).`,
		},
		{
			name: "an engine name ending in an empty part",
			env:  "FIBERDB_ENGINES__=s3cret",
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["malformed_env"]' holds environment variables whose names have an empty or dotted part between "__" (FIBERDB_ENGINES__).`,
		},
		{
			// Issue 13: an option on a misspelled engine name defines a new
			// engine, as the same typo in the file does; the error says so.
			name: "an option on a misspelled engine name",
			env:  "FIBERDB_ENGINES__ACEM__POOL_MAX_CONNS=3",
			is:   config.ErrNoURL,
			want: `'SQLALCHEMY_ENGINES["acem"]["url"]' must be defined: engine "acem" is defined by its other keys alone (did you mean "acme"?).`,
		},
		{
			name: "a url part that is not one",
			env:  "FIBERDB_ENGINES__ACME__URL__HOTS=db2",
			is:   config.ErrInvalidURL,
			want: `'SQLALCHEMY_ENGINES["acme"]["url"]["hots"]' is not a known url key (host, port, user, password, database, params).`,
		},
		{
			name: "a bad duration default",
			env:  "FIBERDB_ENGINE_DEFAULTS__POOL_MAX_CONN_IDLE_TIME=300",
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["engine_defaults"]["pool_max_conn_idle_time"]' must be a duration such as "30s" or "5m".`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf, err := config.Load(fileAndEnv(t, tt.env))
			require.Nil(t, conf)
			require.ErrorIs(t, err, tt.is)
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestEnvProviderCustomPrefixAndKeys(t *testing.T) {
	t.Parallel()
	env := []string{
		"APP_ENGINES__DEFAULT=postgres://app@127.0.0.1:5432/main?sslmode=disable",
		"APP_ENGINES__ACME__URL=postgres://app@127.0.0.1:5432/acme?sslmode=disable",
		"APP_ENGINES__ACME__POOL_MAX_CONNS=3",
		"APP_TENANT_HEADER=X-Org",
		// The default prefix is not read.
		"FIBERDB_ENGINES__GLOBEX=postgres://app@127.0.0.1:5432/globex",
		"FIBERDB_TENANT_HEADER=X-Tenant",
	}
	k := koanf.New(".")
	require.NoError(t, k.Load(config.EnvProvider(config.EnvOptions{
		Prefix: "APP_", Key: "DATABASES", SettingsKey: "APPDB",
		Environ: func() []string { return env },
	}), nil))

	conf := loadOK(t, k, config.Options{Key: "DATABASES", SettingsKey: "APPDB"})
	require.Equal(t, "DATABASES", conf.Key)
	require.Equal(t, []string{"acme", "default"}, conf.Names())
	require.Equal(t, "main", poolConfig(t, conf, "default").ConnConfig.Database)
	require.Equal(t, int32(3), poolConfig(t, conf, "acme").MaxConns)
	require.Equal(t, "X-Org", conf.TenantHeader)

	// The default keys hold nothing, so a Load that expects them finds no engines.
	_, err := config.Load(k)
	require.EqualError(t, err, `'SQLALCHEMY_ENGINES["default"]' must be defined.`)
	require.ErrorIs(t, err, config.ErrNoEngines)
}

// Regression: a whole-engine variable and an option variable for the same
// engine used to collide in koanf's unflattening, in map order, so Load
// succeeded or failed at random.
func TestEnvEngineShortcutMergesWithOptions(t *testing.T) {
	t.Parallel()
	for range 50 {
		k := fileAndEnv(t,
			"FIBERDB_ENGINES__NEW=postgres://app@127.0.0.1:5432/new",
			"FIBERDB_ENGINES__NEW__POOL_MAX_CONNS=3",
		)
		conf := loadOK(t, k)
		pc := conf.Engines["new"].PoolConfig()
		require.Equal(t, "new", pc.ConnConfig.Database)
		require.EqualValues(t, 3, pc.MaxConns)
		require.Len(t, conf.Engines, 4, "no stray engine")
	}
}
