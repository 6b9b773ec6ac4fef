package config

import (
	"fmt"
	"strconv"
	"strings"
)

// overrides lays the settings' overrides map, where [EnvProvider] puts the
// engine variables, over the engines map. koanf cannot do it: its merge
// replaces a string with a map, so FIBERDB_ENGINES__ACME__URL__HOST over a
// file whose acme url is a string would leave a url of a host alone, and
// connect as the wrong user to the wrong database without an error. Here a
// url's (or direct_url's) parts merge into it whatever its form, and options
// merge into an engine written as a string. direct_url parts over an engine
// without a direct_url merge into a copy of its url.
//
// An override names its engine case-insensitively when no engine has its
// exact name, because environment variable names are lower-cased. It returns
// a new map; engines is not changed.
func overrides(root, key string, engines map[string]any, raw any) (map[string]any, []error) {
	if raw == nil {
		return engines, nil
	}
	ov, ok := toMap(raw)
	if !ok {
		return engines, []error{keyErr(key, "must be a map of engine names, not "+typeName(raw), ErrInvalidOption)}
	}
	out := make(map[string]any, len(engines)+len(ov))
	for name, e := range engines {
		out[name] = e
	}
	var errs []error
	for _, name := range sortedKeys(ov) {
		target, err := overrideTarget(root, key, name, engines)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		base, defined := out[target]
		if !defined {
			// An engine of the environment alone still has its direct_url
			// parts laid over its url.
			base = map[string]any{}
		}
		merged, err := mergeEngine(key+"["+strconv.Quote(name)+"]", name, base, ov[name])
		if err != nil {
			errs = append(errs, err)
			if !defined {
				out[target] = ov[name] // so that Load reports what else it lacks
			}
			continue
		}
		out[target] = merged
	}
	return out, errs
}

// overrideTarget returns the engine an override named name applies to.
func overrideTarget(root, key, name string, engines map[string]any) (string, error) {
	if _, exact := engines[name]; exact {
		return name, nil
	}
	var matches []string
	for _, e := range sortedKeys(engines) {
		if strings.EqualFold(e, name) {
			matches = append(matches, e)
		}
	}
	switch len(matches) {
	case 0:
		return name, nil
	case 1:
		return matches[0], nil
	}
	return "", keyErr(key+"["+strconv.Quote(name)+"]", fmt.Sprintf(
		"matches engines %s of '%s' in another case: environment variable names are lower-cased, "+
			"so give these engines names that differ in more than case", strings.Join(quoteAll(matches), " and "), root),
		ErrInvalidOption)
}

// mergeEngine lays the override ov, at key, over the engine base. An engine
// that is not a map or string is replaced, as koanf would.
func mergeEngine(key, name string, base, ov any) (any, error) {
	ovEntry, ok := engineEntry(ov)
	if !ok {
		return nil, keyErr(key, "must be a connection string or a map with a url, not "+typeName(ov), ErrInvalidOption)
	}
	entry, ok := engineEntry(base)
	if !ok {
		return ovEntry, nil
	}
	for k, v := range ovEntry {
		switch k {
		case "direct_url": // below, once the url it may be made from is merged
		case "url":
			entry[k] = mergeURL(entry[k], v)
		default:
			entry[k] = deepMerge(entry[k], v)
		}
	}
	if v, set := ovEntry["direct_url"]; set {
		d, err := mergeDirect(key+`["direct_url"]`, name, entry, v)
		if err != nil {
			return nil, err
		}
		entry["direct_url"] = d
	}
	return entry, nil
}

// mergeDirect returns the direct_url of the engine entry with the override
// ov laid over it. Parts over an engine without a direct_url replace those
// parts of its url: alone they would make a direct_url of that host alone,
// which connects as the OS user to its namesake database without an error.
// An engine with a pool keeps the parts, which Load then refuses.
func mergeDirect(key, name string, entry map[string]any, ov any) (any, error) {
	base := entry["direct_url"]
	_, shared := entry["pool"]
	if _, parts := toMap(ov); base != nil || !parts || shared {
		return mergeURL(base, ov), nil
	}
	u := entry["url"]
	switch u.(type) {
	case string, urlOverride:
	default:
		if _, isMap := toMap(u); !isMap {
			return nil, keyErr(key, fmt.Sprintf("sets parts of a direct_url, but engine %q has no direct_url, nor a url to lay them over: "+
				"set FIBERDB_ENGINES__%s__DIRECT_URL whole", name, strings.ToUpper(name)), ErrNoURL)
		}
	}
	return derivedURL{url: mergeURL(u, ov)}, nil
}

// urlOverride is a url string with the parts of a url map laid over it.
type urlOverride struct {
	dsn   string
	parts map[string]any
}

// derivedURL is a direct_url made from the engine's url, in any of its forms,
// with parts laid over it. The url's pool_* parameters are its pool's, so the
// direct_url ignores them.
type derivedURL struct{ url any }

func mergeURL(base, ov any) any {
	parts, ok := toMap(ov)
	if !ok {
		return ov // a whole url replaces the url
	}
	switch b := base.(type) {
	case string:
		return urlOverride{dsn: b, parts: parts}
	case urlOverride:
		return urlOverride{dsn: b.dsn, parts: mergeMaps(b.parts, parts)}
	case derivedURL:
		return derivedURL{url: mergeURL(b.url, parts)}
	}
	return deepMerge(base, parts)
}

// deepMerge returns src laid over dst, maps merged key by key, as koanf
// merges; it copies what it merges and changes neither argument.
func deepMerge(dst, src any) any {
	s, ok := toMap(src)
	if !ok {
		return src
	}
	if d, ok := toMap(dst); ok {
		return mergeMaps(d, s)
	}
	return s
}

func mergeMaps(dst, src map[string]any) map[string]any {
	out := make(map[string]any, len(dst)+len(src))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		out[k] = deepMerge(out[k], v)
	}
	return out
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strconv.Quote(n)
	}
	return out
}
