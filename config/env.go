package config

import (
	"slices"
	"strings"

	"github.com/knadh/koanf/providers/env/v2"
)

// DefaultEnvPrefix starts every environment variable [EnvProvider] reads.
const DefaultEnvPrefix = "FIBERDB_"

// EnvOptions configures [EnvProvider].
type EnvOptions struct {
	// Prefix starts every variable read; it is case-sensitive.
	//
	// Optional. Default: "FIBERDB_"
	Prefix string

	// Key and SettingsKey must match the [Options] given to [Load].
	//
	// Optional. Default: "SQLALCHEMY_ENGINES" and "FIBERDB"
	Key, SettingsKey string

	// Environ lists the variables as "NAME=value" strings; tests pass their
	// own so that they can run in parallel.
	//
	// Optional. Default: os.Environ
	Environ func() []string
}

// EnvProvider returns a koanf provider that maps environment variables onto
// the keys [Load] reads. "__" separates key parts, and everything after the
// prefix is lower-cased, so engine names set through env vars must be lower
// case:
//
//	FIBERDB_ENGINES__ACME=postgres://…                 SQLALCHEMY_ENGINES.acme.url
//	FIBERDB_ENGINES__ACME__URL=postgres://…            SQLALCHEMY_ENGINES.acme.url
//	FIBERDB_ENGINES__ACME__URL__HOST=db1               SQLALCHEMY_ENGINES.acme.url.host
//	FIBERDB_ENGINES__ACME__POOL_MAX_CONNS=8            SQLALCHEMY_ENGINES.acme.pool_max_conns
//	FIBERDB_ENGINES__ACME__HOSTS=a.example.com,b.example.com
//	FIBERDB_ENGINE_DEFAULTS__POOL_MAX_CONN_IDLE_TIME=5m FIBERDB.engine_defaults.pool_max_conn_idle_time
//	FIBERDB_TENANT_HEADER=X-Tenant                      FIBERDB.tenant_header
//	FIBERDB_BASE_DOMAIN=example.com                     FIBERDB.base_domain
//	FIBERDB_TENANTS=acme,globex                         FIBERDB.tenants
//
// Load it after the file so that env vars override file values:
//
//	k.Load(file.Provider("fiberdb.yaml"), yaml.Parser())
//	k.Load(config.EnvProvider(config.EnvOptions{}), nil)
//
// FIBERDB_ENGINES__<NAME> is a shortcut for FIBERDB_ENGINES__<NAME>__URL.
// koanf merges maps key by key but replaces a string with a map, so an engine
// whose options env vars override must use the map form ({url: …}) in the
// file, not the string shortcut.
func EnvProvider(o EnvOptions) *env.Env {
	if o.Prefix == "" {
		o.Prefix = DefaultEnvPrefix
	}
	if o.Key == "" {
		o.Key = DefaultKey
	}
	if o.SettingsKey == "" {
		o.SettingsKey = DefaultSettingsKey
	}
	return env.Provider(".", env.Opt{
		Prefix:      o.Prefix,
		EnvironFunc: o.Environ,
		TransformFunc: func(name, value string) (string, any) {
			rest := strings.ToLower(strings.TrimPrefix(name, o.Prefix))
			parts := strings.Split(rest, "__")
			for _, p := range parts {
				// A "." would split the key again; an empty part is a typo.
				if p == "" || strings.Contains(p, ".") {
					return "", nil
				}
			}
			switch {
			case parts[0] == "engines" && len(parts) == 2:
				// The whole-engine shortcut sets the url, so it merges with
				// the same engine's option variables in any order.
				return o.Key + "." + parts[1] + ".url", value
			case parts[0] == "engines" && len(parts) > 2:
				return o.Key + "." + strings.Join(parts[1:], "."), value
			case slices.Contains(settingKeys, parts[0]):
				return o.SettingsKey + "." + strings.Join(parts, "."), value
			}
			// Other FIBERDB_ variables (FIBERDB_TEST_DATABASE_URL, …) are
			// not configuration.
			return "", nil
		},
	})
}
