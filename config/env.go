package config

import (
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

	// Key is not used: engine variables land under SettingsKey's
	// "overrides", which [Load] merges into the engines under its own
	// Options.Key. It is kept so that EnvOptions and [Options] can be
	// written alike.
	Key string

	// SettingsKey must match the [Options] given to [Load].
	//
	// Optional. Default: "FIBERDB"
	SettingsKey string

	// Environ lists the variables as "NAME=value" strings; tests pass their
	// own so that they can run in parallel.
	//
	// Optional. Default: os.Environ
	Environ func() []string
}

// Names under the prefix that are not configuration: fiberdb's own test and
// server tools read them (FIBERDB_TEST_DATABASE_URL, FIBERDB_PG_BINDIR).
var reservedEnv = []string{"test_", "pg_"}

// malformedEnvKey is the setting where [EnvProvider] puts the names of
// variables it cannot map, so that [Load] reports them.
const malformedEnvKey = "malformed_env"

// EnvProvider returns a koanf provider that maps environment variables onto
// the keys [Load] reads. "__" separates key parts, and everything after the
// prefix is lower-cased:
//
//	FIBERDB_ENGINES__ACME=postgres://…                  SQLALCHEMY_ENGINES.acme.url
//	FIBERDB_ENGINES__ACME__URL=postgres://…             SQLALCHEMY_ENGINES.acme.url
//	FIBERDB_ENGINES__ACME__URL__HOST=db1                SQLALCHEMY_ENGINES.acme.url's host
//	FIBERDB_ENGINES__ACME__DIRECT_URL=postgres://…      SQLALCHEMY_ENGINES.acme.direct_url
//	FIBERDB_ENGINES__ACME__DIRECT_URL__PORT=5432        SQLALCHEMY_ENGINES.acme.direct_url's port
//	FIBERDB_ENGINES__ACME__POOL_MAX_CONNS=8             SQLALCHEMY_ENGINES.acme.pool_max_conns
//	FIBERDB_ENGINES__ACME__HOSTS=a.example.com,b.example.com
//	FIBERDB_ENGINES__ACME__SETTINGS__APP__TENANT=acme   SQLALCHEMY_ENGINES.acme.settings.app.tenant
//	FIBERDB_ENGINE_DEFAULTS__POOL_MAX_CONN_IDLE_TIME=5m FIBERDB.engine_defaults.pool_max_conn_idle_time
//	FIBERDB_TENANT_HEADER=X-Tenant                      FIBERDB.tenant_header
//	FIBERDB_MAX_TOTAL_CONNS=90                          FIBERDB.max_total_conns
//
// Load it after the file so that env vars override file values:
//
//	k.Load(file.Provider("fiberdb.yaml"), yaml.Parser())
//	k.Load(config.EnvProvider(config.EnvOptions{}), nil)
//
// Engine variables land in FIBERDB.overrides, not in SQLALCHEMY_ENGINES:
// koanf's merge would replace an engine or url written as a string with a
// map holding only the variable's part, and so connect somewhere else
// without an error. [Load] merges them instead: a url part replaces that part
// of the file's url, whatever its form, and the rest of the url is kept (a
// direct_url part, of the direct_url, or of a copy of the url when the engine
// has no direct_url); an option joins an engine written as a string. An
// engine named in another case in the file (Acme) is matched
// case-insensitively, since variable names are lower-cased.
//
// Every other variable under the prefix is a setting, so a misspelled one is
// an error from Load, as the same misspelling in the file is; so is a name
// with an empty or dotted part between "__". Names starting with the prefix
// and TEST_ or PG_ are left to fiberdb's tools.
func EnvProvider(o EnvOptions) *env.Env {
	if o.Prefix == "" {
		o.Prefix = DefaultEnvPrefix
	}
	if o.SettingsKey == "" {
		o.SettingsKey = DefaultSettingsKey
	}
	return env.Provider(".", env.Opt{
		Prefix:      o.Prefix,
		EnvironFunc: o.Environ,
		TransformFunc: func(name, value string) (string, any) {
			rest := strings.ToLower(strings.TrimPrefix(name, o.Prefix))
			for _, r := range reservedEnv {
				if strings.HasPrefix(rest, r) {
					return "", nil
				}
			}
			parts := strings.Split(rest, "__")
			malformed := parts[0] == "engines" && len(parts) == 1
			for _, p := range parts {
				// A "." would split the key again; an empty part is a typo.
				malformed = malformed || p == "" || strings.Contains(p, ".")
			}
			switch {
			case malformed:
				// The name, never the value, which may hold a password.
				return o.SettingsKey + "." + malformedEnvKey + "." + strings.ReplaceAll(name, ".", "_"), ""
			case parts[0] == "engines" && len(parts) == 2:
				// The whole-engine shortcut sets the url, so it merges with
				// the same engine's option variables in any order.
				return o.SettingsKey + ".overrides." + parts[1] + ".url", value
			case parts[0] == "engines":
				return o.SettingsKey + ".overrides." + strings.Join(parts[1:], "."), value
			}
			return o.SettingsKey + "." + strings.Join(parts, "."), value
		},
	})
}
