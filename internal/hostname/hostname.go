// Package hostname normalizes HTTP host names for tenant lookup.
//
// It never folds Unicode: only ASCII A-Z become a-z, so "K" (U+212A KELVIN
// SIGN) can never turn into "k" and alias a configured host. Internationalized
// names must be configured in punycode.
package hostname

import (
	"errors"
	"strings"
)

// MaxLen is the longest host name accepted, as DNS limits it.
const MaxLen = 253

// ErrInvalid is returned for a host that cannot name a tenant.
var ErrInvalid = errors.New("invalid host")

// Normalize returns host lower-cased (ASCII only), with any port and one
// trailing dot removed. It accepts "name", "name:port", "[v6]" and "[v6]:port",
// and refuses empty hosts, hosts over [MaxLen] bytes, and any byte that cannot
// appear in a host name (non-ASCII, space, control, "/", "?", "#", "%", "@", "\").
//
// It allocates only when host contains upper-case letters.
func Normalize(host string) (string, error) {
	if len(host) > MaxLen+len("[]:65535") {
		return "", ErrInvalid
	}
	name, err := stripPort(host)
	if err != nil {
		return "", err
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > MaxLen {
		return "", ErrInvalid
	}
	// One pass over a byte table: this runs on every request.
	upper, dot := false, true // a leading dot counts as following one
	for i := range len(name) {
		switch byteClass[name[i]] {
		case classPlain:
			dot = false
		case classUpper:
			upper, dot = true, false
		case classDot:
			if dot {
				return "", ErrInvalid // ".a" or "a..b"
			}
			dot = true
		default:
			return "", ErrInvalid
		}
	}
	if dot {
		return "", ErrInvalid // a second trailing dot
	}
	if upper {
		name = toLowerASCII(name)
	}
	return name, nil
}

const (
	classInvalid = iota
	classPlain   // a-z 0-9 - _ and ":" (of an IPv6 literal)
	classUpper
	classDot
)

var byteClass = func() (t [256]uint8) {
	for b := 'a'; b <= 'z'; b++ {
		t[b] = classPlain
	}
	for b := '0'; b <= '9'; b++ {
		t[b] = classPlain
	}
	for b := 'A'; b <= 'Z'; b++ {
		t[b] = classUpper
	}
	t['-'], t['_'], t[':'], t['.'] = classPlain, classPlain, classPlain, classDot
	return t
}()

// stripPort removes a ":port" suffix. A bracketed IPv6 literal keeps its
// address without brackets; an unbracketed name with more than one colon is a
// bare IPv6 literal and is returned whole.
func stripPort(host string) (string, error) {
	if host == "" {
		return "", ErrInvalid
	}
	if host[0] == '[' {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", ErrInvalid
		}
		rest := host[end+1:]
		if rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return "", ErrInvalid
		}
		addr := host[1:end]
		if strings.Count(addr, ":") < 2 { // every IPv6 literal has two; "[a:1]" must not become "a:1"
			return "", ErrInvalid
		}
		return addr, nil
	}
	i := strings.IndexByte(host, ':')
	if i < 0 {
		return host, nil
	}
	if strings.IndexByte(host[i+1:], ':') >= 0 {
		return host, nil // bare IPv6 literal, no port possible
	}
	if !validPort(host[i+1:]) {
		return "", ErrInvalid
	}
	return host[:i], nil
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for i := range len(p) {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
