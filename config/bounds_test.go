package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

// Issue 12: counts that passed Load and then killed the process
// (pool_min_conns = pool_max_conns = 2147483647 made pgxpool allocate 34 GiB;
// pool_min_conns 1000 opened 1000 connections at once), periods that made
// every request fail (pool_max_conn_lifetime 1ns), and url parameters checked
// less than the same options in a map. Every form gets the same rule and the
// same bound, named in the message.
func TestLoadBoundsEveryForm(t *testing.T) {
	t.Parallel()
	type form struct {
		name string
		k    func(t *testing.T, opt, value string) *koanf.Koanf
		key  string // where the error is reported
		pre  string // what the reason starts with there
	}
	forms := []form{
		{
			name: "option",
			k: func(t *testing.T, opt, value string) *koanf.Koanf {
				t.Helper()
				return mapKoanf(t, withDefault(map[string]any{"acme": map[string]any{"url": dsn, opt: value}}))
			},
			key: `SQLALCHEMY_ENGINES["acme"][%q]`,
		},
		{
			name: "url parameter",
			k: func(t *testing.T, opt, value string) *koanf.Koanf {
				t.Helper()
				return mapKoanf(t, withDefault(map[string]any{"acme": dsn + "&" + opt + "=" + value}))
			},
			key: `SQLALCHEMY_ENGINES["acme"]["url"]`,
			pre: "sets %s, which ",
		},
		{
			name: "env var",
			k: func(t *testing.T, opt, value string) *koanf.Koanf {
				t.Helper()
				return fileAndEnv(t, "FIBERDB_ENGINES__ACME__"+upper(opt)+"="+value)
			},
			key: `SQLALCHEMY_ENGINES["acme"][%q]`,
		},
		{
			name: "engine default",
			k: func(t *testing.T, opt, value string) *koanf.Koanf {
				t.Helper()
				m := withDefault(map[string]any{})
				m[config.DefaultSettingsKey] = map[string]any{"engine_defaults": map[string]any{opt: value}}
				return mapKoanf(t, m)
			},
			key: `FIBERDB["engine_defaults"][%q]`,
		},
	}
	tests := []struct {
		opt, value, reason string
	}{
		{"pool_max_conns", "2147483647", "must be between 1 and 10000"},
		{"pool_min_conns", "2147483647", "must be between 0 and 100"},
		{"pool_min_conns", "1000", "must be between 0 and 100"},
		{"pool_min_idle_conns", "1000", "must be between 0 and 100"},
		{"statement_cache_capacity", "2147483647", "must be between 0 and 10000"},
		{"description_cache_capacity", "100000", "must be between 0 and 10000"},
		{"pool_max_conn_lifetime", "1ns", "must be 0 (off) or at least 1s"},
		{"pool_max_conn_lifetime", "-1s", "must be 0 (off) or at least 1s"},
		{"pool_max_conn_lifetime_jitter", "-1s", "must be at least 0s"},
		{"pool_max_conn_idle_time", "-1s", "must be at least 1s"},
		{"pool_max_conn_idle_time", "999ms", "must be at least 1s"},
		{"pool_health_check_period", "1ms", "must be at least 1s"},
		{"pool_ping_timeout", "1ns", "must be 0 (off) or at least 100ms"},
	}
	for _, f := range forms {
		for _, tt := range tests {
			t.Run(f.name+" "+tt.opt+"="+tt.value, func(t *testing.T) {
				t.Parallel()
				key := f.key
				if key != `SQLALCHEMY_ENGINES["acme"]["url"]` {
					key = sprintf(key, tt.opt)
				}
				reason := tt.reason
				if f.pre != "" {
					reason = sprintf(f.pre, tt.opt) + reason
				}
				_, err := config.Load(f.k(t, tt.opt, tt.value))
				require.EqualError(t, err, "'"+key+"' "+reason+".")
				requireKeyErrors(t, err)
			})
		}
	}
}

func TestLoadBoundsAccept(t *testing.T) {
	t.Parallel()
	conf := loadOK(t, mapKoanf(t, withDefault(map[string]any{
		"acme": map[string]any{
			"url":            dsn + "&pool_max_conn_lifetime=0s&pool_health_check_period=1s",
			"pool_max_conns": 10000, "pool_min_conns": 100, "pool_min_idle_conns": 100,
			"statement_cache_capacity": 10000, "pool_ping_timeout": "0s", "connect_timeout": "100ms",
			"pool_max_conn_idle_time": "1s", "pool_max_conn_lifetime_jitter": "0s",
		},
	})))
	pc := poolConfig(t, conf, "acme")
	require.EqualValues(t, 10000, pc.MaxConns)
	require.EqualValues(t, 100, pc.MinConns)
	require.Zero(t, pc.MaxConnLifetime, "0 turns the lifetime off")

	// url parameters are checked against each other, too.
	_, err := config.Load(mapKoanf(t, withDefault(map[string]any{"acme": dsn + "&pool_max_conns=2&pool_min_conns=3"})))
	require.EqualError(t, err, `'SQLALCHEMY_ENGINES["acme"]["url"]' sets pool_min_conns above pool_max_conns (2).`)
}

// Issue 12: an invalid url hid the engine's other errors, so each fix
// revealed the next.
func TestLoadBadURLHidesNothing(t *testing.T) {
	t.Parallel()
	for name, url := range map[string]any{
		"string":  "postgres://u@h:bad/db",
		"map":     map[string]any{"host": "h", "hots": "x"},
		"missing": nil,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			acme := map[string]any{"pool_max_conns": "x", "hosts": []any{"a b"}, "search_path": "a,b"}
			if url != nil {
				acme["url"] = url
			}
			_, err := config.Load(mapKoanf(t, withDefault(map[string]any{"acme": acme})))
			require.ErrorIs(t, err, config.ErrInvalidOption)
			for _, key := range []string{`["url"]`, `["hosts"][0]`, `["pool_max_conns"]`, `["search_path"]`} {
				require.Contains(t, err.Error(), `'SQLALCHEMY_ENGINES["acme"]`+key)
			}
			requireKeyErrors(t, err)
		})
	}
}

// Issue 12: an unescaped "@" in a password moved the password's tail into
// the host, which every connect error then printed.
func TestLoadRefusesUnescapedUserinfo(t *testing.T) {
	t.Parallel()
	const want = `'SQLALCHEMY_ENGINES["acme"]["url"]' must percent-encode "@" as %40 and "/" as %2F ` +
		`in its user name, password and database name.`
	for _, url := range []string{
		"postgres://u:S3C@RETpw@host/db",
		"postgresql://u:S3C@RETpw@host:5432/db?sslmode=disable",
		"postgres://host?user=u@S3C:RETpw",
		"postgres://u@host/S3C@RETpw",
		"postgres://u:S3C/RETpw@host/db",
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(mapKoanf(t, withDefault(map[string]any{"acme": url})))
			require.ErrorIs(t, err, config.ErrInvalidURL)
			require.EqualError(t, err, want)
			for _, part := range []string{"S3C", "RETpw", "host"} {
				require.NotContains(t, err.Error(), part)
			}
		})
	}
	for _, url := range []string{
		"postgres://u:S3C%40RETpw@host/db",
		"postgres://u:S3C%2FRETpw@host/db",
		"postgres://host/db?user=u@corp",
		"postgres://u@host/db#x@y",
		"host=h user=u password=S3C@RET/pw dbname=db",
	} {
		t.Run("accepts "+url, func(t *testing.T) {
			t.Parallel()
			loadOK(t, mapKoanf(t, withDefault(map[string]any{"acme": url})))
		})
	}
	pc := poolConfig(t, loadOK(t, mapKoanf(t, withDefault(map[string]any{"acme": "postgres://u:S3C%40RETpw@host/db"}))), "acme")
	require.Equal(t, "host", pc.ConnConfig.Host)
	require.Equal(t, "S3C@RETpw", pc.ConnConfig.Password)
}

func upper(s string) string { return strings.ToUpper(s) }

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
