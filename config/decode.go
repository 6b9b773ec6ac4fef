package config

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Values from YAML, JSON, TOML, env vars and Go maps arrive as different
// types: env vars are always strings and JSON numbers are float64. These
// helpers accept every reasonable spelling and nothing ambiguous (an int is
// never taken as a duration: "5" could mean seconds or nanoseconds).

func toInt(v any) (int64, error) {
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int8:
		return int64(n), nil
	case int16:
		return int64(n), nil
	case int32:
		return int64(n), nil
	case int64:
		return n, nil
	case uint8:
		return int64(n), nil
	case uint16:
		return int64(n), nil
	case uint32:
		return int64(n), nil
	case uint:
		if uint64(n) > math.MaxInt64 {
			return 0, errNotInt
		}
		return int64(n), nil
	case uint64:
		if n > math.MaxInt64 {
			return 0, errNotInt
		}
		return int64(n), nil
	case float32:
		return floatToInt(float64(n))
	case float64:
		return floatToInt(n)
	case json.Number:
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			return 0, errNotInt
		}
		return i, nil
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if err != nil {
			return 0, errNotInt
		}
		return i, nil
	}
	return 0, errNotInt
}

func floatToInt(f float64) (int64, error) {
	if f != math.Trunc(f) || f > math.MaxInt64 || f < math.MinInt64 {
		return 0, errNotInt
	}
	return int64(f), nil
}

func toDuration(v any) (time.Duration, error) {
	switch d := v.(type) {
	case time.Duration:
		return d, nil
	case string:
		parsed, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return 0, errNotDuration
		}
		return parsed, nil
	}
	return 0, errNotDuration
}

func toString(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok
}

// toStrings accepts a list of strings, or one comma-separated string (the
// only way a list can arrive through an env var).
func toStrings(v any) ([]string, bool) {
	switch l := v.(type) {
	case string:
		if strings.TrimSpace(l) == "" {
			return nil, true
		}
		parts := strings.Split(l, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts, true
	case []string:
		return append([]string(nil), l...), true
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// toMap accepts any map with string keys (YAML decoders differ) and returns a
// shallow copy, so that Load never writes into a caller's map.
func toMap(v any) (map[string]any, bool) {
	if v == nil {
		return nil, false
	}
	if m, ok := v.(map[string]any); ok {
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[k] = e
		}
		return out, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	out := make(map[string]any, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		out[iter.Key().String()] = iter.Value().Interface()
	}
	return out, true
}

// typeName names v's type for an error message without printing v, which
// could hold a password.
func typeName(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

type decodeError string

func (e decodeError) Error() string { return string(e) }

const (
	errNotInt      = decodeError("must be an integer")
	errNotDuration = decodeError(`must be a duration such as "30s" or "5m"`)
)
