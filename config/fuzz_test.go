package config_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/internal/hostname"
)

var sentinels = []error{
	config.ErrNoEngines, config.ErrNoURL, config.ErrInvalidURL, config.ErrInvalidOption,
	config.ErrInvalidEngineName, config.ErrUndefinedEngine, config.ErrDuplicateHost,
}

// fuzzYAML puts the fuzzed strings into one of four shapes of configuration.
// Strings are quoted; value is inserted raw, so it can be a number, a list, a
// map or broken YAML.
func fuzzYAML(name, url, key, value, host string, form uint8) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SQLALCHEMY_ENGINES:\n  default: %q\n", dsn)
	switch form % 4 {
	case 0: // string shortcut
		fmt.Fprintf(&b, "  %q: %q\n", name, url)
	case 1: // map with a url, an option and a host
		fmt.Fprintf(&b, "  %q:\n    url: %q\n    %q: %s\n    hosts: [%q]\n", name, url, key, value, host)
	case 2: // url map; url is the password
		fmt.Fprintf(&b, "  %q:\n    url: {host: %q, password: %q, params: {%q: %s}}\n", name, host, url, key, value)
	default: // settings
		fmt.Fprintf(&b, "  %q:\n    url: %q\n    hosts: [%q]\nFIBERDB:\n  tenants: [%q]\n  base_domain: %q\n  %q: %s\n",
			name, url, host, name, host, key, value)
	}
	return b.String()
}

// parseYAML returns false when doc is not YAML.
func parseYAML(doc string) (*koanf.Koanf, bool) {
	k := koanf.New(".")
	return k, k.Load(rawbytes.Provider([]byte(doc)), yaml.Parser()) == nil
}

var validEngineName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

func FuzzLoad(f *testing.F) {
	seeds := []struct {
		name, url, key, value, host string
		form                        uint8
	}{
		{"acme", "postgres://app@127.0.0.1:5432/acme?sslmode=disable", "pool_max_conns", "8", "acme.example.com", 1},
		{"acme", "postgres://app@127.0.0.1:5432/acme", "pool_max_conn_idle_time", "5m", "ACME.Example.COM.", 1},
		{"acme", "postgres://app@127.0.0.1:5432/acme", "pool_max_conn_idle_time", "300", "acme.localhost:8080", 1},
		{"acme", "postgres://app@127.0.0.1:5432/acme", "pool_min_conns", "9", "[::1]:80", 1},
		{"acme", "postgres://app@127.0.0.1:5432/acme", "pool_max_conns", "0", "a.com..", 1},
		{"acme", "postgres://app@127.0.0.1:5432/acme", "pool_max_con", "8.5", "\u212Aacme.com", 1},
		{"acme", "postgres://app@127.0.0.1:5432/acme", "default_query_exec_mode", "exec", "a b", 1},
		{"acme", "postgres://app@127.0.0.1:5432/acme", "pool_min_idle_conns", "[1, 2]", "x.example.com", 1},
		{"acme", "postgres://app@127.0.0.1:5432/acme", "connect_timeout", "{host: /tmp}", "h", 1},
		{"acme", "postgres://app@127.0.0.1:5432/acme?pool_health_check_period=0s", "connect_timeout", "-1s", "h", 1},
		{"Default", "postgres://u:s3cret@h:bad/db", "pool_ping_timeout", "1s", "h", 1},
		{"acme", "postgres://u@h:notaport/db", "", "", "", 0},
		{"a b", "postgres://app@h/db", "", "", "", 0},
		{"a.b", "postgres://app@h/db", "", "", "", 0},
		{strings.Repeat("a", 64), "postgres://app@h/db", "", "", "", 0},
		{"acme", "host=h password=s3cret port=bad", "", "", "", 0},
		{"acme", "   ", "", "", "", 0},
		{"acme", "s3cret'\\pw", "sslmode", "disable", "/tmp", 2},
		{"acme", "s3cretpw", "port", "notaport", "127.0.0.1", 2},
		{"acme", "s3cretpw", "sslmode", "verify-full", "127.0.0.1", 2},
		{"acme", "s3cretpw", "pool_health_check_period", "0s", "127.0.0.1", 2},
		{"acme", "s3cretpw", "ssl mode", "x", "h", 2},
		{"acme", "postgres://app@h/db", "tenant_header", "X-Tenant", "example.com", 3},
		{"ACME", "postgres://app@h/db", "tenant_header", "X Tenant", "example.com/", 3},
		{"acme", "postgres://app@h/db", "engine_defaults", "{pool_max_conns: x}", "example.com", 3},
		{"acme", "postgres://app@h/db", "bogus", "1", "[::1]", 3},
	}
	for _, s := range seeds {
		f.Add(s.name, s.url, s.key, s.value, s.host, s.form)
	}

	f.Fuzz(func(t *testing.T, name, url, key, value, host string, form uint8) {
		doc := fuzzYAML(name, url, key, value, host, form)
		k, ok := parseYAML(doc)
		if !ok {
			t.Skip("not YAML")
		}
		conf, err := config.Load(k)
		if err != nil {
			require.Nil(t, conf)
			errs := []error{err}
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				errs = joined.Unwrap()
			}
			for _, e := range errs {
				require.True(t, slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(e, s) }),
					"%q wraps no sentinel", e)
				var ke *config.KeyError
				require.ErrorAs(t, e, &ke)
			}
			_, again := config.Load(k)
			require.EqualError(t, again, err.Error(), "Load is not deterministic")

			// The url-map password never reaches the message, unless it
			// also appears there with a different password.
			if form%4 == 2 && len(url) >= 4 {
				if k, ok := parseYAML(fuzzYAML(name, "XXXXXXXX", key, value, host, form)); ok {
					_, other := config.Load(k)
					if other != nil && !strings.Contains(other.Error(), url) {
						require.NotContains(t, err.Error(), url, "the password leaks")
					}
				}
			}
			return
		}

		require.NotNil(t, conf)
		for _, n := range conf.Names() {
			require.Regexp(t, validEngineName, n)
			pc := conf.Engines[n].PoolConfig()
			require.GreaterOrEqual(t, pc.MaxConns, int32(1))
			require.LessOrEqual(t, pc.MinConns, pc.MaxConns)
			require.LessOrEqual(t, pc.MinIdleConns, pc.MaxConns)
			require.GreaterOrEqual(t, pc.HealthCheckPeriod, time.Millisecond)
			for _, h := range conf.Engines[n].Hosts {
				norm, err := hostname.Normalize(h)
				require.NoError(t, err)
				require.Equal(t, h, norm)
			}
		}
		require.IsNonDecreasing(t, conf.Tenants)
		for _, n := range conf.Tenants {
			require.Contains(t, conf.Engines, n)
		}
		if conf.BaseDomain != "" {
			norm, err := hostname.Normalize(conf.BaseDomain)
			require.NoError(t, err)
			require.Equal(t, conf.BaseDomain, norm)
		}
	})
}
