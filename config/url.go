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
	pairs, errs := urlPairs(key, m)
	return keywordValue(pairs), errs
}

// withParts returns dsn with the parts of a url map laid over it, whatever
// dsn's form: parameters of a URL's query and later keywords of a
// keyword/value string both win over what comes before them. The rest of dsn
// is kept as written.
func withParts(key, dsn string, parts map[string]any) (string, []error) {
	pairs, errs := urlPairs(key, parts)
	if len(errs) > 0 || len(pairs) == 0 {
		return dsn, errs
	}
	if _, isURL := cutScheme(dsn); !isURL {
		return dsn + " " + keywordValue(pairs), nil
	}
	q := make([]string, len(pairs))
	for i, p := range pairs {
		q[i] = percentEncode(p[0]) + "=" + percentEncode(p[1])
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + strings.Join(q, "&"), nil
}

// urlPairs checks the map form of a url and returns its libpq keywords and
// values, in key order.
func urlPairs(key string, m map[string]any) ([][2]string, []error) {
	var (
		pairs [][2]string
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
				pairs = append(pairs, [2]string{pk, s})
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
		pairs = append(pairs, [2]string{word, s})
	}
	return pairs, errs
}

func keywordValue(pairs [][2]string) string {
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p[0] + "=" + quoteDSN(p[1])
	}
	return strings.Join(parts, " ")
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
	if !mentionsOption(dsn) {
		return nil // no second parse for the usual url: half of Load's time
	}
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

// mentionsOption reports whether dsn may set a pool option: whether any of
// their names appears in it, in any case.
func mentionsOption(dsn string) bool {
	lower := strings.ToLower(dsn)
	for name := range poolOptions {
		if strings.Contains(lower, name) {
			return true
		}
	}
	return false
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

// checkUserinfo refuses a URL with an "@" or "/" that pgconn, like libpq,
// would split at the wrong place: it ends the user name and password at the
// first "@" before the first "/", so an "@" in a password makes the password's
// tail the host (which connect errors then print), and a "/" in a password or
// an "@" in a query without a path is misread the same way.
func checkUserinfo(key, dsn string) error {
	rest, ok := cutScheme(dsn)
	if !ok {
		return nil // keyword/value: quoting, not encoding, protects "@"
	}
	netloc, path, _ := strings.Cut(rest, "/")
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	at := strings.IndexByte(netloc, '@')
	if strings.Count(netloc, "@") > 1 || at >= 0 && strings.ContainsAny(netloc[:at], "?#") || strings.Contains(path, "@") {
		return keyErr(key, `must percent-encode "@" as %40 and "/" as %2F in its user name, password and database name`, ErrInvalidURL)
	}
	return nil
}

// cutScheme returns what follows "postgres://" or "postgresql://", the
// prefixes that make pgconn parse a URL (in lower case only, as pgconn).
func cutScheme(dsn string) (string, bool) {
	if rest, ok := strings.CutPrefix(dsn, "postgresql://"); ok {
		return rest, true
	}
	return strings.CutPrefix(dsn, "postgres://")
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

// percentEncode encodes every byte of s but the unreserved ones of RFC 3986.
// Unlike url.QueryEscape it never writes "+", which pgconn, like libpq, does
// not read as a space.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if isWordByte(c) || c == '-' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
