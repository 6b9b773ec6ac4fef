// Package config loads fiberdb's named engines and tenant routing from koanf.
//
// It is the Go counterpart of Flask-SQLAlchemy-Lite's SQLALCHEMY_ENGINES: a
// map of engine name to PostgreSQL connection string, or to a map with a
// required "url" and pool options. [Load] parses and validates everything up
// front and opens nothing: no pool, no connection, no network. It never
// mutates the koanf instance or the caller's maps.
package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/internal/hostname"
)

const (
	// DefaultKey is the koanf key of the engines map.
	DefaultKey = "SQLALCHEMY_ENGINES"
	// DefaultSettingsKey is the koanf key of fiberdb's own settings.
	DefaultSettingsKey = "FIBERDB"
	// DefaultEngine names the central (landlord) engine.
	DefaultEngine = "default"
)

// Options changes how [Load] reads the configuration. The zero value is the
// strict default.
type Options struct {
	// Key is the koanf key of the engines map.
	//
	// Optional. Default: "SQLALCHEMY_ENGINES"
	Key string

	// SettingsKey is the koanf key of fiberdb's settings (engine_defaults,
	// tenant_header, base_domain, tenants).
	//
	// Optional. Default: "FIBERDB"
	SettingsKey string

	// EngineDefaults are pool options merged under every engine's own options,
	// like Flask-SQLAlchemy-Lite's engine_options. The settings'
	// engine_defaults win over these, and an engine's own options win over both.
	//
	// Optional. Default: nil
	EngineDefaults map[string]any

	// AllowEmpty accepts a configuration without a "default" engine, or with
	// no engines at all (Flask-SQLAlchemy-Lite's require_default_engine=False).
	//
	// Optional. Default: false
	AllowEmpty bool
}

// Config is a validated configuration, ready for fiberdb.Open.
type Config struct {
	// Key is the koanf key the engines were read from, for error messages.
	Key string
	// Engines maps each engine name to its definition.
	Engines map[string]*Engine
	// Tenants are the engines that subdomain and header routing may select,
	// sorted. Unless the settings list them, every engine but "default".
	Tenants []string
	// TenantHeader is the request header naming the tenant; empty means
	// header routing is off.
	TenantHeader string
	// BaseDomain routes <engine>.<BaseDomain> to <engine>; empty means off.
	BaseDomain string
}

// Engine is one named engine.
type Engine struct {
	// Name is the engine's name, the key it has in the engines map.
	Name string
	// Hosts are the normalized host names routed to this engine.
	Hosts []string

	pool *pgxpool.Config
}

// PoolConfig returns a copy of the engine's pool configuration, built by
// pgxpool.ParseConfig and then set from the engine's options. Each call
// returns a new copy, so callers may change it freely.
func (e *Engine) PoolConfig() *pgxpool.Config { return e.pool.Copy() }

// Names returns the engine names, sorted.
func (c *Config) Names() []string { return sortedKeys(c.Engines) }

// Hosts returns a new map from each normalized host to its engine's name.
func (c *Config) Hosts() map[string]string {
	hosts := make(map[string]string)
	for name, e := range c.Engines {
		for _, h := range e.Hosts {
			hosts[h] = name
		}
	}
	return hosts
}

var engineName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// Load reads and validates the engines map and fiberdb's settings from k.
//
// It reports every problem it finds, joined with [errors.Join] in key order;
// each is a [*KeyError] naming the exact key and wrapping one of the
// package's sentinel errors, for example
//
//	'SQLALCHEMY_ENGINES["acme"]["url"]' must be defined.
//
// Values that arrive as strings, as env vars do, are coerced where a number
// or duration is meant: "8" becomes 8 and "5m" five minutes.
func Load(k *koanf.Koanf, opts ...Options) (*Config, error) {
	o := Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Key == "" {
		o.Key = DefaultKey
	}
	if o.SettingsKey == "" {
		o.SettingsKey = DefaultSettingsKey
	}
	if k == nil {
		k = koanf.New(".")
	}

	conf := &Config{Key: o.Key, Engines: map[string]*Engine{}}
	settings, tenants, errs := loadSettings(k, o, conf)
	defaults, derrs := engineDefaults(o, settings)
	errs = append(errs, derrs...)

	raw := k.Get(o.Key)
	engines, ok := toMap(raw)
	if raw != nil && !ok {
		errs = append(errs, keyErr(o.Key, "must be a map of engine names, not "+typeName(raw), ErrInvalidOption))
	}
	if _, hasDefault := engines[DefaultEngine]; !hasDefault && !o.AllowEmpty {
		errs = append(errs, keyErr(o.Key+`["`+DefaultEngine+`"]`, "must be defined", ErrNoEngines))
	}

	claimed := map[string]claim{}
	for _, name := range sortedKeys(engines) {
		e, eerrs := loadEngine(o.Key, name, engines[name], defaults, claimed)
		errs = append(errs, eerrs...)
		if e != nil {
			conf.Engines[name] = e
		}
	}

	errs = append(errs, resolveTenants(o, conf, tenants)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return conf, nil
}

// loadSettings reads the settings map into conf and returns engine_defaults
// and the raw tenants list for later checks.
func loadSettings(k *koanf.Koanf, o Options, conf *Config) (defaults map[string]any, tenants any, errs []error) {
	raw := k.Get(o.SettingsKey)
	if raw == nil {
		return nil, nil, nil
	}
	settings, ok := toMap(raw)
	if !ok {
		return nil, nil, []error{keyErr(o.SettingsKey, "must be a map, not "+typeName(raw), ErrInvalidOption)}
	}
	for _, key := range sortedKeys(settings) {
		v := settings[key]
		sub := o.SettingsKey + "[" + strconv.Quote(key) + "]"
		switch key {
		case "engine_defaults":
			m, ok := toMap(v)
			if !ok {
				errs = append(errs, keyErr(sub, "must be a map of pool options, not "+typeName(v), ErrInvalidOption))
				continue
			}
			defaults = m
		case "tenant_header":
			s, ok := toString(v)
			s = strings.TrimSpace(s)
			if !ok || (s != "" && !isHeaderName(s)) {
				errs = append(errs, keyErr(sub, "must be an HTTP header name such as X-Tenant", ErrInvalidOption))
				continue
			}
			conf.TenantHeader = s
		case "base_domain":
			s, ok := toString(v)
			if !ok {
				errs = append(errs, keyErr(sub, "must be a domain name such as example.com", ErrInvalidOption))
				continue
			}
			if strings.TrimSpace(s) == "" {
				continue
			}
			d, err := hostname.Normalize(s)
			if err != nil || strings.Contains(d, ":") {
				errs = append(errs, keyErr(sub, "must be a domain name such as example.com", ErrInvalidOption))
				continue
			}
			conf.BaseDomain = d
		case "tenants":
			tenants = v
		default:
			errs = append(errs, keyErr(sub, "is not a known setting (engine_defaults, tenant_header, base_domain, tenants)", ErrInvalidOption))
		}
	}
	return defaults, tenants, errs
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
				errs = append(errs, keyErr(sub, "is not a known pool option", ErrInvalidOption))
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

// claim records which engine, through which key, routes a host.
type claim struct{ engine, key string }

func loadEngine(root, name string, raw any, defaults map[string]any, claimed map[string]claim) (*Engine, []error) {
	key := root + "[" + strconv.Quote(name) + "]"
	if !engineName.MatchString(name) {
		return nil, []error{keyErr(key, "is not a valid engine name (1 to 63 of A-Z, a-z, 0-9, _ and -)", ErrInvalidEngineName)}
	}

	var entry map[string]any
	switch v := raw.(type) {
	case string:
		entry = map[string]any{"url": v}
	default:
		m, ok := toMap(v)
		if !ok {
			return nil, []error{keyErr(key, "must be a connection string or a map with a url, not "+typeName(v), ErrInvalidOption)}
		}
		entry = m
	}

	urlKey := key + `["url"]`
	rawURL, ok := entry["url"]
	if !ok || rawURL == nil {
		return nil, []error{keyErr(urlKey, "must be defined", ErrNoURL)}
	}
	var dsn string
	switch u := rawURL.(type) {
	case string:
		dsn = u
	default:
		m, ok := toMap(u)
		if !ok {
			return nil, []error{keyErr(urlKey, "must be a connection string or a map, not "+typeName(u), ErrInvalidURL)}
		}
		var errs []error
		if dsn, errs = dsnFromMap(urlKey, m); len(errs) > 0 {
			return nil, errs
		}
	}
	if strings.TrimSpace(dsn) == "" {
		return nil, []error{keyErr(urlKey, "must be defined", ErrNoURL)}
	}
	pc, err := parseDSN(urlKey, dsn)
	if err != nil {
		return nil, []error{err}
	}

	e := &Engine{Name: name, pool: pc}
	var errs []error
	opts := make(map[string]any, len(defaults)+len(entry))
	inURL := urlOptions(dsn)
	for k, v := range defaults {
		if !inURL[k] { // an option in the engine's own url beats the defaults
			opts[k] = v
		}
	}
	for k, v := range entry {
		opts[k] = v
	}
	for _, opt := range sortedKeys(opts) {
		sub := key + "[" + strconv.Quote(opt) + "]"
		switch opt {
		case "url":
			continue
		case "hosts":
			errs = append(errs, claimHosts(e, sub, opts[opt], claimed)...)
			continue
		}
		apply, known := poolOptions[opt]
		if !known {
			errs = append(errs, keyErr(sub, "is not a known option", ErrInvalidOption))
			continue
		}
		if err := apply(pc, opts[opt]); err != nil {
			errs = append(errs, keyErr(sub, err.Error(), ErrInvalidOption))
		}
	}
	if pc.HealthCheckPeriod < time.Millisecond {
		// Only a pool_health_check_period in the url gets here; pgxpool's
		// health check ticker would panic on it in a background goroutine.
		errs = append(errs, keyErr(urlKey, "sets pool_health_check_period below 1ms", ErrInvalidURL))
	}
	if pc.MinConns > pc.MaxConns {
		errs = append(errs, keyErr(key+`["pool_min_conns"]`, fmt.Sprintf("must not exceed pool_max_conns (%d)", pc.MaxConns), ErrInvalidOption))
	}
	if pc.MinIdleConns > pc.MaxConns {
		errs = append(errs, keyErr(key+`["pool_min_idle_conns"]`, fmt.Sprintf("must not exceed pool_max_conns (%d)", pc.MaxConns), ErrInvalidOption))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return e, nil
}

func claimHosts(e *Engine, key string, raw any, claimed map[string]claim) []error {
	hosts, ok := toStrings(raw)
	if !ok {
		return []error{keyErr(key, "must be a list of host names", ErrInvalidOption)}
	}
	var errs []error
	for i, h := range hosts {
		sub := key + "[" + strconv.Itoa(i) + "]"
		norm, err := hostname.Normalize(h)
		if err != nil {
			errs = append(errs, keyErr(sub, "is not a valid host name (use punycode for international names)", ErrInvalidOption))
			continue
		}
		if prev, taken := claimed[norm]; taken {
			if prev.engine == e.Name {
				continue // listed twice by the same engine
			}
			errs = append(errs, keyErr(sub, fmt.Sprintf("claims host %q, which engine %q already claims at '%s'", norm, prev.engine, prev.key), ErrDuplicateHost))
			continue
		}
		claimed[norm] = claim{engine: e.Name, key: sub}
		e.Hosts = append(e.Hosts, norm)
	}
	return errs
}

// resolveTenants fills conf.Tenants and checks that subdomain routing cannot
// map one label to two engines.
func resolveTenants(o Options, conf *Config, raw any) []error {
	key := o.SettingsKey + `["tenants"]`
	if raw == nil {
		for name := range conf.Engines {
			if name != DefaultEngine {
				conf.Tenants = append(conf.Tenants, name)
			}
		}
	} else {
		names, ok := toStrings(raw)
		if !ok {
			return []error{keyErr(key, "must be a list of engine names", ErrInvalidOption)}
		}
		var errs []error
		seen := map[string]bool{}
		for i, name := range names {
			if _, defined := conf.Engines[name]; !defined {
				errs = append(errs, keyErr(key+"["+strconv.Itoa(i)+"]",
					fmt.Sprintf("names engine %q, but '%s[%q]' was not defined", name, o.Key, name), ErrUndefinedEngine))
				continue
			}
			if !seen[name] {
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
