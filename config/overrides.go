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
// merge into an engine written as a string.
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
			out[target] = ov[name]
			continue
		}
		merged, ok := mergeEngine(base, ov[name])
		if !ok {
			errs = append(errs, keyErr(key+"["+strconv.Quote(name)+"]",
				"must be a connection string or a map with a url, not "+typeName(ov[name]), ErrInvalidOption))
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

// mergeEngine lays the override ov over the engine base. An engine that is
// not a map or string is replaced, as koanf would.
func mergeEngine(base, ov any) (any, bool) {
	ovEntry, ok := engineEntry(ov)
	if !ok {
		return nil, false
	}
	entry, ok := engineEntry(base)
	if !ok {
		return ovEntry, true
	}
	for k, v := range ovEntry {
		if k == "url" || k == "direct_url" {
			entry[k] = mergeURL(entry[k], v)
			continue
		}
		entry[k] = deepMerge(entry[k], v)
	}
	return entry, true
}

// urlOverride is a url string with the parts of a url map laid over it.
type urlOverride struct {
	dsn   string
	parts map[string]any
}

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
