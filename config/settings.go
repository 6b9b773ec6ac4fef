package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fiberdb/fiberdb/internal/hostname"
)

// Upper bounds of the settings that count something. They are far above any
// sane value and far below what would exhaust memory.
const (
	maxTotalConnsLimit = 100_000
	maxOpenPoolsLimit  = 1_000_000
	concurrencyLimit   = 100_000
)

// settingKeys are the keys of the settings map, sorted.
var settingKeys = []string{
	"base_domain", "engine_defaults", "max_open_pools", "max_total_conns", "overrides",
	"pool_idle_timeout", "tenant_header", "tenant_max_concurrency", "tenants",
}

// rawSettings are the settings that need the engines to be checked.
type rawSettings struct {
	defaults  map[string]any // engine_defaults
	tenants   any
	overrides any
}

// loadSettings reads the settings map into conf and returns what needs the
// engines for later checks.
func loadSettings(k interface{ Get(string) any }, o Options, conf *Config) (rs rawSettings, errs []error) {
	raw := k.Get(o.SettingsKey)
	if raw == nil {
		return rs, nil
	}
	settings, ok := toMap(raw)
	if !ok {
		return rs, []error{keyErr(o.SettingsKey, "must be a map, not "+typeName(raw), ErrInvalidOption)}
	}
	for _, key := range sortedKeys(settings) {
		v := settings[key]
		sub := o.SettingsKey + "[" + strconv.Quote(key) + "]"
		var err error
		switch key {
		case "engine_defaults":
			m, ok := toMap(v)
			if !ok {
				err = keyErr(sub, "must be a map of pool options, not "+typeName(v), ErrInvalidOption)
			}
			rs.defaults = m
		case "tenant_header":
			conf.TenantHeader, err = tenantHeader(sub, v)
		case "base_domain":
			conf.BaseDomain, err = baseDomain(sub, v)
		case "tenants":
			rs.tenants = v
		case "overrides":
			rs.overrides = v
		case "max_total_conns":
			conf.MaxTotalConns, err = countSetting(sub, v, maxTotalConnsLimit)
		case "max_open_pools":
			conf.MaxOpenPools, err = countSetting(sub, v, maxOpenPoolsLimit)
		case "tenant_max_concurrency":
			conf.TenantMaxConcurrency, err = countSetting(sub, v, concurrencyLimit)
		case "pool_idle_timeout":
			conf.PoolIdleTimeout, err = timeoutSetting(sub, v)
		case malformedEnvKey:
			err = keyErr(sub, "holds environment variables whose names have an empty or dotted part between \"__\" ("+
				strings.Join(malformedNames(v), ", ")+")", ErrInvalidOption)
		default:
			err = keyErr(sub, unknownReason("setting", key, settingKeys), ErrInvalidOption)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rs, errs
}

func tenantHeader(key string, v any) (string, error) {
	s, ok := toString(v)
	s = strings.TrimSpace(s)
	if !ok || (s != "" && !isHeaderName(s)) {
		return "", keyErr(key, "must be an HTTP header name such as X-Tenant", ErrInvalidOption)
	}
	return s, nil
}

func baseDomain(key string, v any) (string, error) {
	s, ok := toString(v)
	if ok && strings.TrimSpace(s) == "" {
		return "", nil
	}
	d, err := hostname.Normalize(s)
	if !ok || err != nil || strings.Contains(d, ":") {
		return "", keyErr(key, "must be a domain name such as example.com", ErrInvalidOption)
	}
	return d, nil
}

// countSetting reads an int between 0 (off) and limit.
func countSetting(key string, v any, limit int) (int, error) {
	n, err := toInt(v)
	if err != nil {
		return 0, keyErr(key, err.Error(), ErrInvalidOption)
	}
	if n < 0 || n > int64(limit) {
		return 0, keyErr(key, fmt.Sprintf("must be between 0 (off) and %d", limit), ErrInvalidOption)
	}
	return int(n), nil
}

// timeoutSetting reads a duration that is 0 (off) or at least minPeriod.
func timeoutSetting(key string, v any) (time.Duration, error) {
	d, err := toDuration(v)
	if err != nil {
		return 0, keyErr(key, err.Error(), ErrInvalidOption)
	}
	if d != 0 && d < minPeriod {
		return 0, keyErr(key, "must be 0 (off) or at least "+minPeriod.String(), ErrInvalidOption)
	}
	return d, nil
}

// engineDefaults merges Options.EngineDefaults under the settings'
// engine_defaults and checks that both hold only pool options.
func engineDefaults(o Options, settings map[string]any) (map[string]any, []error) {
	merged := map[string]any{}
	var errs []error
	// Values are checked here, so that a bad one is reported once, at its own
	// key, rather than at every engine it would be merged into.
	scratch := &pgxpool.Config{ConnConfig: &pgx.ConnConfig{}}
	check := func(prefix string, m map[string]any) {
		for _, key := range sortedKeys(m) {
			sub := prefix + "[" + strconv.Quote(key) + "]"
			apply, ok := poolOptions[key]
			if !ok {
				errs = append(errs, keyErr(sub, "is not a known pool option"+hint(key, PoolOptions()), ErrInvalidOption))
				continue
			}
			if err := apply(scratch, m[key]); err != nil {
				errs = append(errs, keyErr(sub, err.Error(), ErrInvalidOption))
				continue
			}
			merged[key] = m[key]
		}
	}
	check("Options.EngineDefaults", o.EngineDefaults)
	check(o.SettingsKey+`["engine_defaults"]`, settings)
	return merged, errs
}

// resolveTenants fills conf.Tenants and checks that subdomain routing cannot
// map one label to two engines. raw is the engines map as configured: a
// tenant whose engine failed to load is not reported again as undefined.
func resolveTenants(o Options, conf *Config, tenants any, raw map[string]any) []error {
	key := o.SettingsKey + `["tenants"]`
	if tenants == nil {
		for name := range conf.Engines {
			if name != DefaultEngine {
				conf.Tenants = append(conf.Tenants, name)
			}
		}
	} else {
		names, ok := toStrings(tenants)
		if !ok {
			return []error{keyErr(key, "must be a list of engine names", ErrInvalidOption)}
		}
		var errs []error
		seen := map[string]bool{}
		for i, name := range names {
			if _, defined := raw[name]; !defined {
				errs = append(errs, keyErr(key+"["+strconv.Itoa(i)+"]",
					fmt.Sprintf("names engine %q, but '%s[%q]' was not defined", name, o.Key, name), ErrUndefinedEngine))
				continue
			}
			if _, loaded := conf.Engines[name]; loaded && !seen[name] {
				seen[name] = true
				conf.Tenants = append(conf.Tenants, name)
			}
		}
		if len(errs) > 0 {
			return errs
		}
	}
	sort.Strings(conf.Tenants)

	if conf.BaseDomain == "" {
		return nil
	}
	var errs []error
	labels := map[string]string{}
	for _, name := range conf.Tenants {
		label := strings.ToLower(name)
		if prev, dup := labels[label]; dup {
			errs = append(errs, keyErr(o.Key+"["+strconv.Quote(name)+"]",
				fmt.Sprintf("and engine %q both answer subdomain %q of base_domain", prev, label), ErrDuplicateHost))
			continue
		}
		labels[label] = name
	}
	return errs
}

func isHeaderName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !isWordByte(c) && c != '-' {
			return false
		}
	}
	return true
}

// malformedNames lists the variables [EnvProvider] could not map, without
// their values.
func malformedNames(v any) []string {
	m, _ := toMap(v)
	return sortedKeys(m)
}
