package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fiberdb/fiberdb/internal/hostname"
)

// Engine is one named engine.
//
// Load sets every field. Callers may change the exported fields of an Engine
// they own, such as one of a [Config.Clone] not yet handed to fiberdb, and
// [Config.Validate] checks them again; an Engine fiberdb is using must not be
// changed.
type Engine struct {
	// Name is the engine's name, the key it has in the engines map.
	Name string
	// Hosts are the normalized host names routed to this engine.
	Hosts []string
	// Pool names the engine whose pool this one's requests use (key "pool").
	// Empty means the engine has a pool of its own, built from its url; set
	// means it has neither url, direct_url nor pool options, and
	// [Engine.PoolConfig] and [Engine.DirectConfig] return nil.
	Pool string
	// SearchPath is the schema every transaction of this engine's requests
	// runs in (key "search_path"), exactly as configured; fiberdb quotes it
	// as an identifier. Empty means the connection's own search_path.
	SearchPath string
	// Settings are the run-time parameters every transaction of this
	// engine's requests sets with set_config(name, value, true) (key
	// "settings"). Names are lower-cased, as PostgreSQL compares them. Nil
	// means none.
	Settings map[string]string

	pool   *pgxpool.Config // nil: shares Pool's, or not built by Load
	direct *pgxpool.Config // from direct_url; nil: the url's (pool) is direct
}

// PoolConfig returns a copy of the engine's pool configuration, built by
// pgxpool.ParseConfig and then set from the engine's options. Each call
// returns a new copy, so callers may change it freely.
//
// It returns nil for an engine that has no pool of its own (its Pool is set)
// and for an Engine that [Load] did not build: an Engine must be created by
// Load.
func (e *Engine) PoolConfig() *pgxpool.Config {
	if e == nil || e.pool == nil {
		return nil
	}
	return e.pool.Copy()
}

// DirectConfig returns a copy of the configuration of a direct connection
// to the engine's database, one that bypasses a pooler (migrations): parsed
// from the engine's direct_url when it has one, else its url's, with the
// engine's options applied (connect_timeout, default_query_exec_mode, the
// statement caches). Each call returns a new copy, so callers may change it
// freely.
//
// Like [Engine.PoolConfig], it returns nil for an engine that has no pool of
// its own (its Pool is set: see [Config.DirectConfig], which follows Pool)
// and for an Engine that [Load] did not build.
func (e *Engine) DirectConfig() *pgx.ConnConfig {
	switch {
	case e == nil || e.pool == nil:
		return nil
	case e.direct != nil:
		return e.direct.ConnConfig.Copy()
	}
	return e.pool.ConnConfig.Copy()
}

// clone returns a deep copy of e.
func (e *Engine) clone() *Engine {
	c := *e
	c.Hosts = slices.Clone(e.Hosts)
	c.Settings = maps.Clone(e.Settings)
	if e.pool != nil {
		c.pool = e.pool.Copy()
	}
	if e.direct != nil {
		c.direct = e.direct.Copy()
	}
	return &c
}

var engineName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// engineKeys are the engine keys that are not pool options.
var engineKeys = map[string]bool{
	"url": true, "direct_url": true, "hosts": true, "pool": true, "search_path": true, "settings": true,
}

// engineOptionNames are every key an engine map may hold, for hints.
var engineOptionNames = append(PoolOptions(), "direct_url", "hosts", "pool", "search_path", "settings", "url")

// claim records which engine, through which key, routes a host.
type claim struct{ engine, key string }

// loadEngine builds one engine from its raw entry. It reports every problem
// of the entry, a bad url included, so that one fix does not reveal the next.
func loadEngine(root, name string, raw any, defaults map[string]any, claimed map[string]claim) (*Engine, []error) {
	key := root + "[" + strconv.Quote(name) + "]"
	if !engineName.MatchString(name) {
		return nil, []error{keyErr(key, "is not a valid engine name (1 to 63 of A-Z, a-z, 0-9, _ and -)", ErrInvalidEngineName)}
	}
	entry, ok := engineEntry(raw)
	if !ok {
		return nil, []error{keyErr(key, "must be a connection string or a map with a url, not "+typeName(raw), ErrInvalidOption)}
	}

	e := &Engine{Name: name}
	var errs []error
	if p, shared := entry["pool"]; shared {
		errs = append(errs, loadShared(e, key, p, entry)...)
	} else {
		errs = append(errs, loadOwnPool(e, key, entry, defaults)...)
	}
	for _, opt := range sortedKeys(entry) {
		sub := key + "[" + strconv.Quote(opt) + "]"
		switch opt {
		case "hosts":
			errs = append(errs, claimHosts(e, sub, entry[opt], claimed)...)
		case "search_path":
			s, err := searchPath(sub, entry[opt])
			if err != nil {
				errs = append(errs, err)
			}
			e.SearchPath = s
		case "settings":
			var serrs []error
			e.Settings, serrs = settings(sub, entry[opt])
			errs = append(errs, serrs...)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return e, nil
}

// engineEntry returns the map form of an engine: a string is its url.
func engineEntry(raw any) (map[string]any, bool) {
	if s, ok := raw.(string); ok {
		return map[string]any{"url": s}, true
	}
	return toMap(raw)
}

// loadShared checks an engine that uses another's pool: it may set neither a
// url nor pool options, which belong to the pool's engine. Whether the pool
// names an engine is checked once every engine is known.
func loadShared(e *Engine, key string, pool any, entry map[string]any) []error {
	var errs []error
	name, ok := pool.(string)
	if !ok || !engineName.MatchString(name) {
		errs = append(errs, keyErr(key+`["pool"]`, "must name the engine whose pool this engine uses", ErrInvalidOption))
	}
	e.Pool = name
	for _, opt := range sortedKeys(entry) {
		sub := key + "[" + strconv.Quote(opt) + "]"
		switch {
		case opt == "url":
			errs = append(errs, keyErr(sub, "must not be set together with pool: the engine uses the url of the pool's engine", ErrInvalidOption))
		case opt == "direct_url":
			errs = append(errs, keyErr(sub, "must not be set together with pool: the engine's tables are in the pool's engine's database, "+
				"so set direct_url on that engine", ErrInvalidOption))
		case !engineKeys[opt] && poolOptions[opt] != nil:
			errs = append(errs, keyErr(sub, "is a pool option, but this engine has no pool of its own (set it on the engine that pool names)", ErrInvalidOption))
		case !engineKeys[opt]:
			errs = append(errs, keyErr(sub, "is not a known option"+hint(opt, engineOptionNames), ErrInvalidOption))
		}
	}
	return errs
}

// loadOwnPool parses the url and applies the pool options, the defaults under
// the engine's own. A bad url does not hide the options' errors: they are
// checked on a scratch configuration.
func loadOwnPool(e *Engine, key string, entry, defaults map[string]any) []error {
	pc, dsn, errs := engineURL(key+`["url"]`, entry["url"])
	valid := pc != nil
	if !valid {
		pc = &pgxpool.Config{ConnConfig: &pgx.ConnConfig{}}
	}

	inURL := urlOptions(dsn)
	urlErrs := checkURLOptions(key+`["url"]`, inURL)
	errs = append(errs, urlErrs...)
	opts := engineOptions(defaults, entry, inURL)
	for _, opt := range sortedKeys(opts) {
		sub := key + "[" + strconv.Quote(opt) + "]"
		apply, known := poolOptions[opt]
		if !known {
			errs = append(errs, keyErr(sub, "is not a known option"+hint(opt, engineOptionNames), ErrInvalidOption))
			continue
		}
		if err := apply(pc, opts[opt]); err != nil {
			errs = append(errs, keyErr(sub, err.Error(), ErrInvalidOption))
		}
	}
	if valid && len(urlErrs) == 0 {
		errs = append(errs, checkPool(key, pc, opts)...)
	}
	if valid {
		e.pool = pc
	}
	// A direct_url made from a bad url would only repeat the url's errors.
	_, fromURL := entry["direct_url"].(derivedURL)
	if raw, set := entry["direct_url"]; set && (!fromURL || valid && len(urlErrs) == 0) {
		var derrs []error
		e.direct, derrs = loadDirect(key, raw, entry, defaults)
		errs = appendUnseen(errs, derrs...)
	}
	return errs
}

// engineOptions returns the options to apply onto the configuration parsed
// from a url that sets inURL itself: the defaults under the engine's own
// options, less the defaults that the url sets (an option in the engine's
// own url beats the defaults). It holds no engine key.
func engineOptions(defaults, entry map[string]any, inURL map[string]string) map[string]any {
	opts := make(map[string]any, len(defaults)+len(entry))
	for k, v := range defaults {
		if _, set := inURL[k]; !set {
			opts[k] = v
		}
	}
	for k, v := range entry {
		if !engineKeys[k] {
			opts[k] = v
		}
	}
	return opts
}

// engineURL parses an engine's url, given as a string or as a map.
func engineURL(key string, raw any) (pc *pgxpool.Config, dsn string, errs []error) {
	switch u := raw.(type) {
	case nil:
		return nil, "", []error{keyErr(key, "must be defined", ErrNoURL)}
	case string:
		dsn = u
	case urlOverride:
		if dsn, errs = withParts(key, u.dsn, u.parts); len(errs) > 0 {
			return nil, "", errs
		}
	default:
		m, ok := toMap(u)
		if !ok {
			return nil, "", []error{keyErr(key, "must be a connection string or a map, not "+typeName(u), ErrInvalidURL)}
		}
		if dsn, errs = dsnFromMap(key, m); len(errs) > 0 {
			return nil, "", errs
		}
	}
	if strings.TrimSpace(dsn) == "" {
		return nil, "", []error{keyErr(key, "must be defined", ErrNoURL)}
	}
	pc, err := parseDSN(key, dsn)
	if err != nil {
		return nil, "", []error{err}
	}
	return pc, dsn, nil
}

// checkPool checks what no single option can: the options against each
// other, reported at the key that set the smaller bound (the url's when only
// the url sets it).
func checkPool(key string, pc *pgxpool.Config, opts map[string]any) []error {
	var errs []error
	check := func(opt string, n int32) {
		if n <= pc.MaxConns {
			return
		}
		if _, own := opts[opt]; own {
			errs = append(errs, keyErr(key+"["+strconv.Quote(opt)+"]", fmt.Sprintf("must not exceed pool_max_conns (%d)", pc.MaxConns), ErrInvalidOption))
			return
		}
		errs = append(errs, keyErr(key+`["url"]`, fmt.Sprintf("sets %s above pool_max_conns (%d)", opt, pc.MaxConns), ErrInvalidURL))
	}
	check("pool_min_conns", pc.MinConns)
	check("pool_min_idle_conns", pc.MinIdleConns)
	return errs
}

// checkShared checks, once every engine is known, that e's pool names an
// engine with a pool of its own. raw is the engines map as configured, so
// that an engine that failed to load is not reported again as undefined.
func checkShared(root string, e *Engine, raw map[string]any) error {
	key := root + "[" + strconv.Quote(e.Name) + `]["pool"]`
	target, ok := raw[e.Pool]
	if !ok {
		return keyErr(key, fmt.Sprintf("names engine %q, but '%s[%q]' was not defined", e.Pool, root, e.Pool), ErrUndefinedEngine)
	}
	if entry, ok := engineEntry(target); ok {
		if next, shared := entry["pool"]; shared {
			name, _ := toString(next)
			return keyErr(key, fmt.Sprintf("names engine %q, which itself uses the pool of engine %q: name %q instead", e.Pool, name, name), ErrInvalidOption)
		}
	}
	return nil
}

// checkSchemaUser refuses a shared engine e whose search_path names the
// user that pool, the engine whose pool e uses, connects as. PostgreSQL's
// default search_path, "$user", public, is what every other engine of that
// pool without a search_path (row-level security) runs with: it would find
// e's tables before public's, outside any policy.
func checkSchemaUser(root string, e, pool *Engine) error {
	if e.SearchPath == "" || pool == nil || pool.pool == nil || e.SearchPath != pool.pool.ConnConfig.User {
		return nil
	}
	key := root + "[" + strconv.Quote(e.Name) + `]["search_path"]`
	return keyErr(key, fmt.Sprintf(`must not be %q, the user engine %q connects as: its engines without a search_path `+
		`would find this schema's tables first ("$user" leads PostgreSQL's default search_path)`, e.SearchPath, e.Pool), ErrInvalidOption)
}

// validate checks the fields callers may have changed since Load.
func (e *Engine) validate(key string, claimed map[string]claim) []error {
	var errs []error
	if e.Pool != "" && e.pool != nil {
		errs = append(errs, keyErr(key+`["pool"]`, "must not be set on an engine with a pool of its own", ErrInvalidOption))
	}
	for i, h := range e.Hosts {
		sub := key + `["hosts"][` + strconv.Itoa(i) + "]"
		if norm, err := hostname.Normalize(h); err != nil || norm != h {
			errs = append(errs, keyErr(sub, "is not a normalized host name", ErrInvalidOption))
			continue
		}
		if prev, taken := claimed[h]; taken && prev.engine != e.Name {
			errs = append(errs, keyErr(sub, fmt.Sprintf("claims host %q, which engine %q already claims at '%s'", h, prev.engine, prev.key), ErrDuplicateHost))
			continue
		}
		claimed[h] = claim{engine: e.Name, key: sub}
	}
	if e.SearchPath != "" {
		if _, err := searchPath(key+`["search_path"]`, e.SearchPath); err != nil {
			errs = append(errs, err)
		}
	}
	seen := make(map[string]string, len(e.Settings))
	for _, name := range sortedKeys(e.Settings) {
		sub := key + `["settings"][` + strconv.Quote(name) + "]"
		if name != strings.ToLower(name) {
			errs = append(errs, keyErr(sub, "must be lower case", ErrInvalidOption))
			continue
		}
		if err := checkSetting(sub, name, e.Settings[name], seen); err != nil {
			errs = append(errs, err)
			continue
		}
		seen[name] = e.Settings[name]
	}
	return errs
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
