package config

import (
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
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
	if err := checkUserinfo(key, dsn); err != nil {
		return nil, err
	}
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

// urlOptions returns the pool options dsn sets itself, with their values.
// pgconn leaves the parameters it does not know, pool_* among them, in
// RuntimeParams; it parses connect_timeout itself, in seconds, so that one's
// value is "".
func urlOptions(dsn string) map[string]string {
	cc, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil
	}
	set := map[string]string{}
	for k, v := range cc.RuntimeParams {
		if _, ok := poolOptions[k]; ok {
			set[k] = v
		}
	}
	if cc.ConnectTimeout != 0 {
		set["connect_timeout"] = ""
	}
	return set
}

// checkURLOptions checks the pool options a url sets with the same rules as
// the options of an engine map, and reports them at the url's key.
func checkURLOptions(key string, set map[string]string) []error {
	var errs []error
	scratch := &pgxpool.Config{ConnConfig: &pgx.ConnConfig{}}
	for _, opt := range sortedKeys(set) {
		if opt == "connect_timeout" {
			continue // whole seconds, checked by pgconn
		}
		if err := poolOptions[opt](scratch, set[opt]); err != nil {
			errs = append(errs, keyErr(key, "sets "+opt+", which "+err.Error(), ErrInvalidURL))
		}
	}
	return errs
}

// checkUserinfo refuses a URL whose user name or password holds an "@" that
// is not percent-encoded. The parser would split it at the wrong "@" and take
// the password's tail for the host, which connect errors then print.
func checkUserinfo(key, dsn string) error {
	rest, ok := cutScheme(dsn)
	if !ok {
		return nil // keyword/value: quoting, not encoding, protects "@"
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.IndexByte(rest, '@')
	if at < 0 {
		return nil
	}
	if strings.IndexByte(rest[at+1:], '@') >= 0 || strings.IndexByte(rest[:at], '/') >= 0 {
		return keyErr(key, `has an "@" or "/" in its user name or password that is not percent-encoded: write "@" as %40 and "/" as %2F`, ErrInvalidURL)
	}
	return nil
}

// cutScheme returns what follows "postgres://" or "postgresql://".
func cutScheme(dsn string) (string, bool) {
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		if len(dsn) >= len(scheme) && strings.EqualFold(dsn[:len(scheme)], scheme) {
			return dsn[len(scheme):], true
		}
	}
	return "", false
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
