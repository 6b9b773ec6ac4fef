package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

func TestCloneSharesNothing(t *testing.T) {
	t.Parallel()
	conf := loadOK(t, yamlKoanf(t, sharedYAML+"  max_total_conns: 20\n  pool_idle_timeout: 1m\n"))
	clone := conf.Clone()
	require.Equal(t, conf.Names(), clone.Names())
	require.Equal(t, conf.Tenants, clone.Tenants)
	require.Equal(t, conf.Hosts(), clone.Hosts())
	require.Equal(t, conf.Engines["globex"].Settings, clone.Engines["globex"].Settings)
	require.Equal(t, 20, clone.MaxTotalConns)
	require.NoError(t, clone.Validate())

	clone.Tenants[0] = "changed"
	clone.Engines["acme"].Hosts[0] = "changed.example.com"
	clone.Engines["acme"].SearchPath = "changed"
	clone.Engines["globex"].Settings["app.tenant"] = "changed"
	delete(clone.Engines, "initech")
	clone.MaxTotalConns = 1

	require.Equal(t, "acme", conf.Tenants[0])
	require.Equal(t, []string{"acme.example.com"}, conf.Engines["acme"].Hosts)
	require.Equal(t, "acme", conf.Engines["acme"].SearchPath)
	require.Equal(t, "globex", conf.Engines["globex"].Settings["app.tenant"])
	require.Contains(t, conf.Engines, "initech")
	require.Equal(t, 20, conf.MaxTotalConns)
	require.Equal(t, time.Minute, clone.PoolIdleTimeout)

	// The pool configurations are copies too.
	require.NotSame(t, conf.Engines["saas"], clone.Engines["saas"])
	require.Equal(t, conf.Engines["saas"].PoolConfig().ConnString(), clone.Engines["saas"].PoolConfig().ConnString())

	var none *config.Config
	require.Nil(t, none.Clone())
}

// Issue 12: a hand-built Config made fiberdb.Open panic on a nil pointer.
func TestHandBuiltConfig(t *testing.T) {
	t.Parallel()
	hand := &config.Config{Engines: map[string]*config.Engine{"default": {Name: "default"}}}
	require.Nil(t, hand.Engines["default"].PoolConfig())
	var nilEngine *config.Engine
	require.Nil(t, nilEngine.PoolConfig())

	err := hand.Validate()
	require.ErrorIs(t, err, config.ErrNotLoaded)
	require.EqualError(t, err, `'SQLALCHEMY_ENGINES["default"]' must be created by config.Load: it has no pool configuration.`)

	var none *config.Config
	require.ErrorIs(t, none.Validate(), config.ErrNotLoaded)

	withNil := &config.Config{Engines: map[string]*config.Engine{"default": nil}}
	require.ErrorIs(t, withNil.Validate(), config.ErrNotLoaded)
}

func TestValidateChecksChangedFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *config.Config)
		is   error
		want string
	}{
		{
			name: "an engine renamed",
			edit: func(c *config.Config) { c.Engines["acme"].Name = "other" },
			is:   config.ErrNotLoaded,
			want: `'SQLALCHEMY_ENGINES["acme"]' must be created by config.Load, with the name it has in Engines.`,
		},
		{
			name: "a pool naming a shared engine",
			edit: func(c *config.Config) { c.Engines["globex"].Pool = "acme" },
			is:   config.ErrUndefinedEngine,
			want: `'SQLALCHEMY_ENGINES["globex"]["pool"]' names engine "acme", which is not an engine with a pool of its own.`,
		},
		{
			name: "a pool set on an engine with its own",
			edit: func(c *config.Config) { c.Engines["initech"].Pool = "saas" },
			is:   config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["initech"]["pool"]' must not be set on an engine with a pool of its own.`,
		},
		{
			name: "a host not normalized",
			edit: func(c *config.Config) { c.Engines["acme"].Hosts = []string{"ACME.example.com"} },
			is:   config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["acme"]["hosts"][0]' is not a normalized host name.`,
		},
		{
			name: "a host claimed twice",
			edit: func(c *config.Config) { c.Engines["globex"].Hosts = []string{"acme.example.com"} },
			is:   config.ErrDuplicateHost,
			want: `'SQLALCHEMY_ENGINES["globex"]["hosts"][0]' claims host "acme.example.com", which engine "acme" already claims at ` +
				`'SQLALCHEMY_ENGINES["acme"]["hosts"][0]'.`,
		},
		{
			name: "a search_path with a comma",
			edit: func(c *config.Config) { c.Engines["acme"].SearchPath = "a,b" },
			is:   config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["acme"]["search_path"]' must be one schema name of 1 to 63 bytes, without a comma.`,
		},
		{
			name: "a search_path naming the pool's user (review S4)",
			edit: func(c *config.Config) { c.Engines["acme"].SearchPath = "app" },
			is:   config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["acme"]["search_path"]' must not be "app", the user engine "saas" connects as: ` +
				`its engines without a search_path would find this schema's tables first ("$user" leads PostgreSQL's default search_path).`,
		},
		{
			name: "a setting name in upper case",
			edit: func(c *config.Config) { c.Engines["acme"].Settings = map[string]string{"App.Tenant": "x"} },
			is:   config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["acme"]["settings"]["App.Tenant"]' must be lower case.`,
		},
		{
			name: "a setting name that is not a GUC name",
			edit: func(c *config.Config) { c.Engines["acme"].Settings = map[string]string{"app tenant": "x"} },
			is:   config.ErrInvalidOption,
			want: `'SQLALCHEMY_ENGINES["acme"]["settings"]["app tenant"]' is not a valid setting name (identifiers joined by dots, such as app.tenant).`,
		},
		{
			name: "a base domain not normalized",
			edit: func(c *config.Config) { c.BaseDomain = "Example.COM" },
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["base_domain"]' must be a normalized domain name such as example.com.`,
		},
		{
			name: "a tenant header that is not a header name",
			edit: func(c *config.Config) { c.TenantHeader = "X Tenant" },
			is:   config.ErrInvalidOption,
			want: `'FIBERDB["tenant_header"]' must be an HTTP header name such as X-Tenant.`,
		},
		{
			name: "limits out of range",
			edit: func(c *config.Config) {
				c.MaxTotalConns, c.MaxOpenPools, c.TenantMaxConcurrency, c.PoolIdleTimeout = -1, -1, 1<<30, time.Nanosecond
			},
			is: config.ErrInvalidOption,
			want: `'FIBERDB["max_total_conns"]' must be between 0 (off) and 100000.` + "\n" +
				`'FIBERDB["max_open_pools"]' must be between 0 (off) and 1000000.` + "\n" +
				`'FIBERDB["tenant_max_concurrency"]' must be between 0 (off) and 100000.` + "\n" +
				`'FIBERDB["pool_idle_timeout"]' must be 0 (off) or at least 1s.`,
		},
		{
			name: "a tenant that names no engine",
			edit: func(c *config.Config) { c.Tenants = append(c.Tenants, "nope") },
			is:   config.ErrUndefinedEngine,
			want: `'FIBERDB["tenants"][4]' names engine "nope", but 'SQLALCHEMY_ENGINES["nope"]' was not defined.`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := loadOK(t, yamlKoanf(t, sharedYAML)).Clone()
			tt.edit(conf)
			err := conf.Validate()
			require.ErrorIs(t, err, tt.is)
			require.EqualError(t, err, tt.want)
			requireKeyErrors(t, err)
		})
	}
}
