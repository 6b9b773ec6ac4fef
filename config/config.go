// Package config loads fiberdb's named engines and tenant routing from koanf.
//
// It is the Go counterpart of Flask-SQLAlchemy-Lite's SQLALCHEMY_ENGINES: a
// map of engine name to PostgreSQL connection string, or to a map with a
// required "url", pool options, and an optional "direct_url" for the
// connections that must bypass a pooler (migrations). [Load] parses and
// validates everything up front and opens nothing: no pool, no connection,
// no network. It never mutates the koanf instance or the caller's maps.
package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/v2"
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

// Config is a validated configuration, ready for fiberdb.Open. It must be
// created by [Load]: a hand-built Config has engines without a pool
// configuration, which [Config.Validate] reports.
//
// A Config handed to fiberdb must not be changed afterwards; change a
// [Config.Clone] instead, and check it with Validate.
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

	// MaxTotalConns caps the server connections open at once across all
	// pools, those being established included (setting max_total_conns).
	// Zero means no cap.
	MaxTotalConns int
	// MaxOpenPools caps the pools open at once; the least recently used idle
	// pool closes first (setting max_open_pools). Zero means no cap.
	MaxOpenPools int
	// PoolIdleTimeout closes a pool nothing acquired from for this long
	// (setting pool_idle_timeout). Zero means never.
	PoolIdleTimeout time.Duration
	// TenantMaxConcurrency caps the requests of one tenant that may hold or
	// wait for a connection at once (setting tenant_max_concurrency). Zero
	// means no cap.
	TenantMaxConcurrency int
}

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

// DirectConfig returns a new copy of the configuration of a direct
// connection to the database of engine name, one that reaches PostgreSQL
// itself rather than a pooler such as PgBouncer. fiberdb's request pools
// never use it; package lifecycle opens every connection of fiberdb migrate
// and fiberdb tenant add with it. Each call returns a new copy, so callers
// may change it freely.
//
// For an engine with a pool of its own it is [Engine.DirectConfig]: from
// its direct_url when it has one, else from its url, with the engine's
// options applied. For an engine with a Pool (a shared-pool tenant) it is
// the Engine.DirectConfig of the engine Pool names, whose database holds the
// tenant's tables, exactly as that engine's: it carries neither the
// tenant's SearchPath nor its Settings. A caller adds what it needs, as
// package lifecycle sets the tenant's search_path on its own connections.
//
// It returns nil for a nil Config, for a name that is not an engine, for an
// engine whose Pool names no engine, and when the engine that owns the pool
// was not built by [Load].
func (c *Config) DirectConfig(name string) *pgx.ConnConfig {
	if c == nil {
		return nil
	}
	e := c.Engines[name]
	if e != nil && e.Pool != "" {
		e = c.Engines[e.Pool]
	}
	return e.DirectConfig()
}

// Clone returns a deep copy of c, engines and their pool configurations
// included, that shares nothing with c. A nil Config clones to nil.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := *c
	out.Tenants = slices.Clone(c.Tenants)
	if c.Engines != nil {
		out.Engines = make(map[string]*Engine, len(c.Engines))
		for name, e := range c.Engines {
			if e != nil {
				e = e.clone()
			}
			out.Engines[name] = e
		}
	}
	return &out
}

// Validate reports whether fiberdb can open c: whether every engine was built
// by [Load] and is still consistent after callers changed it. Every problem
// is a [*KeyError]; an engine [Load] did not build wraps [ErrNotLoaded]. A
// nil Config wraps ErrNotLoaded too. Load's own results always pass.
func (c *Config) Validate() error {
	if c == nil {
		return keyErr(DefaultKey, "must be created by config.Load, not nil", ErrNotLoaded)
	}
	root := c.Key
	if root == "" {
		root = DefaultKey
	}
	var errs []error
	claimed := map[string]claim{}
	for _, name := range c.Names() {
		e := c.Engines[name]
		key := root + "[" + strconv.Quote(name) + "]"
		switch {
		case e == nil || e.Name != name:
			errs = append(errs, keyErr(key, "must be created by config.Load, with the name it has in Engines", ErrNotLoaded))
			continue
		case e.Pool == "" && e.pool == nil:
			errs = append(errs, keyErr(key, "must be created by config.Load: it has no pool configuration", ErrNotLoaded))
		case e.Pool != "":
			if target := c.Engines[e.Pool]; target == nil || target.pool == nil {
				errs = append(errs, keyErr(key+`["pool"]`,
					fmt.Sprintf("names engine %q, which is not an engine with a pool of its own", e.Pool), ErrUndefinedEngine))
			} else if err := checkSchemaUser(root, e, target); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, e.validate(key, claimed)...)
	}
	for i, name := range c.Tenants {
		if _, ok := c.Engines[name]; !ok {
			errs = append(errs, keyErr(DefaultSettingsKey+`["tenants"][`+strconv.Itoa(i)+"]",
				fmt.Sprintf("names engine %q, but '%s[%q]' was not defined", name, root, name), ErrUndefinedEngine))
		}
	}
	errs = append(errs, c.validateSettings()...)
	return errors.Join(errs...)
}

// validateSettings checks the settings fields with Load's own rules.
func (c *Config) validateSettings() []error {
	key := func(name string) string { return DefaultSettingsKey + "[" + strconv.Quote(name) + "]" }
	var errs []error
	if _, err := tenantHeader(key("tenant_header"), c.TenantHeader); err != nil {
		errs = append(errs, err)
	}
	if d, err := baseDomain(key("base_domain"), c.BaseDomain); err != nil || d != c.BaseDomain {
		errs = append(errs, keyErr(key("base_domain"), "must be a normalized domain name such as example.com", ErrInvalidOption))
	}
	for _, n := range []struct {
		name        string
		value, most int
	}{
		{"max_total_conns", c.MaxTotalConns, maxTotalConnsLimit},
		{"max_open_pools", c.MaxOpenPools, maxOpenPoolsLimit},
		{"tenant_max_concurrency", c.TenantMaxConcurrency, concurrencyLimit},
	} {
		if _, err := countSetting(key(n.name), n.value, n.most); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := timeoutSetting(key("pool_idle_timeout"), c.PoolIdleTimeout); err != nil {
		errs = append(errs, err)
	}
	return errs
}

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
	errs := misspelledKeys(topKeys(k), o)
	rs, serrs := loadSettings(k, o, conf)
	errs = append(errs, serrs...)
	defaults, derrs := engineDefaults(o, rs.defaults)
	errs = append(errs, derrs...)

	raw := k.Get(o.Key)
	engines, ok := toMap(raw)
	if raw != nil && !ok {
		errs = append(errs, keyErr(o.Key, "must be a map of engine names, not "+typeName(raw), ErrInvalidOption))
	}
	engines, oerrs := overrides(o.Key, o.SettingsKey+`["overrides"]`, engines, rs.overrides)
	errs = append(errs, oerrs...)
	if _, hasDefault := engines[DefaultEngine]; !hasDefault && !o.AllowEmpty {
		errs = append(errs, keyErr(o.Key+`["`+DefaultEngine+`"]`, "must be defined", ErrNoEngines))
	}

	claimed := map[string]claim{}
	names := sortedKeys(engines)
	for _, name := range names {
		e, eerrs := loadEngine(o.Key, name, engines[name], defaults, claimed)
		hintMisspelledEngine(o.Key, name, names, eerrs)
		errs = append(errs, eerrs...)
		if e != nil {
			conf.Engines[name] = e
		}
	}

	for _, name := range sortedKeys(conf.Engines) {
		if e := conf.Engines[name]; e.Pool != "" {
			if err := checkShared(o.Key, e, engines); err != nil {
				errs = append(errs, err)
			} else if err := checkSchemaUser(o.Key, e, conf.Engines[e.Pool]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, resolveTenants(o, conf, rs.tenants, engines)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return conf, nil
}

// hintMisspelledEngine adds a hint to the "url must be defined" error of an
// engine whose name is close to another's: an option set on a misspelled
// engine name (FIBERDB_ENGINES__ACEM__POOL_MAX_CONNS=3, or the same typo in
// the file) defines a new engine, which has no url.
func hintMisspelledEngine(root, name string, names []string, errs []error) {
	urlKey := root + "[" + strconv.Quote(name) + `]["url"]`
	for _, err := range errs {
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != urlKey || !errors.Is(ke.Err, ErrNoURL) {
			continue
		}
		// Only now, for the engine that lacks its url: comparing every name
		// with every other would cost Load of 10,000 engines 10⁸ distances.
		others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == name })
		if h := hint(name, others); h != "" {
			ke.Reason += `: engine "` + name + `" is defined by its other keys alone` + h
		}
	}
}
