package config

import (
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// urlKeys are the keys of the map form of an engine url, named after the
// libpq keywords they become (database becomes dbname).
var urlKeys = map[string]string{
	"host":     "host",
	"port":     "port",
	"user":     "user",
	"password": "password",
	"database": "dbname",
}

// dsnFromMap renders the map form of a url as a libpq keyword/value string,
// which, unlike a URL, can name a Unix socket directory as its host.
func dsnFromMap(key string, m map[string]any) (string, []error) {
	var (
		parts []string
		errs  []error
	)
	for _, k := range sortedKeys(m) {
		v := m[k]
		sub := key + "[" + strconv.Quote(k) + "]"
		if k == "params" {
			params, ok := toMap(v)
			if !ok {
				errs = append(errs, keyErr(sub, "must be a map, not "+typeName(v), ErrInvalidURL))
				continue
			}
			for _, pk := range sortedKeys(params) {
				psub := sub + "[" + strconv.Quote(pk) + "]"
				if !isParamName(pk) {
					errs = append(errs, keyErr(psub, "is not a valid connection parameter name", ErrInvalidURL))
					continue
				}
				s, ok := scalarString(params[pk])
				if !ok {
					errs = append(errs, keyErr(psub, "must be a string or number, not "+typeName(params[pk]), ErrInvalidURL))
					continue
				}
				parts = append(parts, pk+"="+quoteDSN(s))
			}
			continue
		}
		word, known := urlKeys[k]
		if !known {
			errs = append(errs, keyErr(sub, "is not a known url key (host, port, user, password, database, params)", ErrInvalidURL))
			continue
		}
		s, ok := scalarString(v)
		if !ok {
			errs = append(errs, keyErr(sub, "must be a string or number, not "+typeName(v), ErrInvalidURL))
			continue
		}
		parts = append(parts, word+"="+quoteDSN(s))
	}
	return strings.Join(parts, " "), errs
}

// parseDSN parses dsn, reporting a failure against key without the DSN
// itself: pgconn's redaction of passwords in malformed input is best effort.
func parseDSN(key, dsn string) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err == nil {
		return pc, nil
	}
	reason := "is not a valid PostgreSQL connection string"
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		// The text after the quoted connection string is pgconn's own
		// description of the problem; the string before it may hold a password.
		msg := pce.Error()
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			reason += ": " + msg[i+3:]
		}
	}
	return nil, keyErr(key, reason, ErrInvalidURL)
}

// urlOptions returns the pool options dsn sets itself. pgconn leaves the
// parameters it does not know, pool_* among them, in RuntimeParams.
func urlOptions(dsn string) map[string]bool {
	cc, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil
	}
	set := map[string]bool{}
	for k := range cc.RuntimeParams {
		if _, ok := poolOptions[k]; ok {
			set[k] = true
		}
	}
	if cc.ConnectTimeout != 0 {
		set["connect_timeout"] = true
	}
	return set
}

func scalarString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case bool:
		return strconv.FormatBool(s), true
	}
	if n, err := toInt(v); err == nil {
		return strconv.FormatInt(n, 10), true
	}
	return "", false
}

func isParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return true
}

func quoteDSN(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s + "'"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isWordByte reports whether c is an ASCII letter, digit or underscore.
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}
