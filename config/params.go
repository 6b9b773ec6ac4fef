package config

import (
	"strconv"
	"strings"
)

// MaxNameLen is the longest schema or setting name part PostgreSQL keeps
// (NAMEDATALEN - 1).
const MaxNameLen = 63

// searchPath checks a search_path value: one schema name, which fiberdb
// quotes as an identifier. A comma is refused because "a, b" reads like a
// list but would name one schema.
func searchPath(key string, v any) (string, error) {
	s, ok := v.(string)
	if !ok || strings.TrimSpace(s) == "" || len(s) > MaxNameLen || strings.ContainsAny(s, ",\x00") {
		return "", keyErr(key, "must be one schema name of 1 to 63 bytes, without a comma", ErrInvalidOption)
	}
	return s, nil
}

// settings flattens a settings map into name → value. koanf splits
// "app.tenant" into nested maps, so nesting joins back with dots: both
// {app.tenant: x} and {app: {tenant: x}} set app.tenant.
func settings(key string, v any) (map[string]string, []error) {
	m, ok := toMap(v)
	if !ok {
		return nil, []error{keyErr(key, "must be a map of setting names to values, not "+typeName(v), ErrInvalidOption)}
	}
	out := map[string]string{}
	var errs []error
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for _, name := range sortedKeys(m) {
			full := prefix + name
			sub := key + "[" + strconv.Quote(full) + "]"
			if nested, ok := toMap(m[name]); ok {
				walk(full+".", nested)
				continue
			}
			if err := checkSetting(sub, full, m[name], out); err != nil {
				errs = append(errs, err)
				continue
			}
			s, _ := scalarString(m[name])
			out[strings.ToLower(full)] = s
		}
	}
	walk("", m)
	return out, errs
}

// checkSetting checks one setting before it joins out.
func checkSetting(key, name string, v any, out map[string]string) error {
	lower := strings.ToLower(name)
	switch {
	case !isSettingName(name):
		return keyErr(key, "is not a valid setting name (identifiers joined by dots, such as app.tenant)", ErrInvalidOption)
	case lower == "search_path":
		return keyErr(key, "must be set with the engine's search_path key", ErrInvalidOption)
	}
	if _, dup := out[lower]; dup {
		return keyErr(key, "is set twice (setting names are case-insensitive)", ErrInvalidOption)
	}
	s, ok := scalarString(v)
	if !ok {
		return keyErr(key, "must be a string, number or boolean, not "+typeName(v), ErrInvalidOption)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return keyErr(key, "must not contain a NUL byte", ErrInvalidOption)
	}
	return nil
}

// isSettingName reports whether s is a PostgreSQL run-time parameter name:
// identifiers ([A-Za-z_][A-Za-z0-9_$]*) joined by dots, each at most
// [MaxNameLen] bytes.
func isSettingName(s string) bool {
	for part := range strings.SplitSeq(s, ".") {
		if part == "" || len(part) > MaxNameLen || '0' <= part[0] && part[0] <= '9' || part[0] == '$' {
			return false
		}
		for i := range len(part) {
			if !isWordByte(part[i]) && part[i] != '$' {
				return false
			}
		}
	}
	return true
}
