package tenancy

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/valyala/fasthttp"

	"github.com/fiberdb/fiberdb/internal/hostname"
	"github.com/fiberdb/fiberdb/internal/lookup"
)

// errBadHost reports a Host (or trusted X-Forwarded-Host) that cannot be a
// host name; it never quotes the value, which the client controls.
var (
	errBadHost           = fmt.Errorf("host: %w", ErrMalformed)
	errHostRepeated      = fmt.Errorf("host header repeated: %w", ErrMalformed)
	errForwardedList     = fmt.Errorf("X-Forwarded-Host holds several hosts: %w", ErrMalformed)
	errForwardedRepeated = fmt.Errorf("X-Forwarded-Host repeated: %w", ErrMalformed)
)

// warnNoProxyCheck is what host routing logs, once per app, on an app that
// believes every client's X-Forwarded-Host.
const warnNoProxyCheck = "fiberdb: host routing on a Fiber app without EnableTrustedProxyCheck: " +
	"any client can pick its tenant with X-Forwarded-Host"

// warn logs a warning; the package's internal tests swap it to count them.
var warn = func(msg string) { slog.Default().Warn(msg) }

// ByHost resolves the request's host through hosts, a map from host name to
// engine name. Lookup is exact after normalization: ASCII lower-case, port
// stripped (host:port, [v6]:port), one trailing dot trimmed. A host that is not
// in the map gives [ErrUnknownTenant]; an empty one [ErrNoTenant]; a malformed
// or over-long one [ErrMalformed].
//
// The host is c.Hostname()'s: X-Forwarded-Host is believed unless the app
// sets fiber.Config.EnableTrustedProxyCheck (with TrustedProxies naming its
// proxies). When the proxy is trusted and sends an X-Forwarded-Host that is
// not in the map, the request is refused; it never falls back to Host. A
// forwarded list ("a, b"), or X-Forwarded-Host sent on more than one line, is
// refused with [ErrMalformed]: the proxy must overwrite the header, not
// append to it. The first request of an app without EnableTrustedProxyCheck
// logs a warning through [slog.Default].
//
// ByHost copies hosts; it panics if a key is not a valid host name, or if two
// keys normalize to the same host but name different engines.
func ByHost(hosts map[string]string) Resolver {
	r := &hostRule{hosts: hostTable(hosts)}
	return r.resolve
}

// BySubdomain resolves "<engine>.<baseDomain>" to the engine of that name
// among engines, compared in ASCII lower case. A host outside baseDomain, or
// baseDomain itself, gives [ErrNoTenant]; a label that names no engine in
// engines, or more than one label, gives [ErrUnknownTenant].
//
// It panics if baseDomain is not a valid host name.
func BySubdomain(baseDomain string, engines []string) Resolver {
	r := &hostRule{}
	r.setSubdomains(baseDomain, engines)
	return r.resolve
}

// hostRule is ByHost, BySubdomain, or both at once: FromConfig's
// Chain(ByHost, BySubdomain) in one rule that reads and normalizes the host
// once.
type hostRule struct {
	hosts  *lookup.Table[string] // nil: no host map
	suffix string                // "." + base domain; "": no subdomain routing
	labels lookup.Table[string]
	hr     hostReader
}

func hostTable(hosts map[string]string) *lookup.Table[string] {
	m := make(map[string]string, len(hosts))
	from := make(map[string]string, len(hosts)) // normalized host → the key that gave it
	for _, h := range slices.Sorted(maps.Keys(hosts)) {
		norm, err := hostname.Normalize(h)
		if err != nil {
			panic(fmt.Sprintf("tenancy: ByHost: invalid host %q", h))
		}
		if prev, ok := from[norm]; ok && hosts[prev] != hosts[h] {
			panic(fmt.Sprintf("tenancy: ByHost: hosts %q and %q both normalize to %q", prev, h, norm))
		}
		from[norm] = h
		m[norm] = hosts[h]
	}
	t := lookup.New(m)
	return &t
}

func (r *hostRule) setSubdomains(baseDomain string, engines []string) {
	base, err := hostname.Normalize(baseDomain)
	if err != nil {
		panic(fmt.Sprintf("tenancy: BySubdomain: invalid base domain %q", baseDomain))
	}
	r.suffix = "." + base
	labels := make(map[string]string, len(engines))
	for _, e := range engines {
		labels[strings.ToLower(e)] = e
	}
	r.labels = lookup.New(labels)
}

// resolve answers as Chain(ByHost, BySubdomain) would: a host the map does
// not hold is unknown even when the subdomain rule finds no tenant.
func (r *hostRule) resolve(c *fiber.Ctx) (string, error) {
	raw, err := r.hr.raw(c)
	if err != nil {
		return "", err
	}
	// A host sent exactly as configured needs no normalizing: the keys are
	// Normalize's results, and Normalize returns its results unchanged. Only
	// a miss pays for it.
	if r.hosts != nil && len(raw) <= hostname.MaxLen {
		if engine, ok := r.hosts.Get(raw); ok {
			return engine, nil
		}
	}
	host, err := hostname.Normalize(raw)
	if err != nil {
		return "", errBadHost
	}
	if r.hosts != nil && host != raw {
		if engine, ok := r.hosts.Get(host); ok {
			return engine, nil
		}
	}
	if r.suffix != "" {
		label, ok := strings.CutSuffix(host, r.suffix)
		if ok && label != "" {
			if engine, ok := r.labels.Get(label); ok {
				return engine, nil
			}
			return "", ErrUnknownTenant
		}
	}
	if r.hosts != nil {
		return "", ErrUnknownTenant
	}
	return "", ErrNoTenant
}

// hostReader reads a request's host for one resolver. It remembers, for the
// last app it served, whether that app can ever trust a proxy.
type hostReader struct{ trust atomic.Pointer[appTrust] }

type appTrust struct {
	app   *fiber.App
	never bool // EnableTrustedProxyCheck with no TrustedProxies
}

// raw is c.Hostname(), not yet normalized, with four differences. It refuses
// what fasthttp would repair in silence (see [checkHost]). It refuses a
// forwarded list ("a, b") or repeated X-Forwarded-Host lines: Fiber would take
// the first value, which a proxy that appends rather than overwrites leaves to
// the client. It skips the X-Forwarded-Host lookup for an app that trusts no
// proxy. And it asks whether the peer is a trusted proxy only when there is a
// forwarded host: that check formats the peer IP, an allocation per request.
// It returns a view of the request's buffer: look it up, never keep it. An
// empty host is [ErrNoTenant].
func (r *hostReader) raw(c *fiber.Ctx) (string, error) {
	if err := checkHost(&c.Request().Header); err != nil {
		return "", err
	}
	var raw string
	var forwarded [][]byte // every line: Peek would hide all but the first
	if !r.trustsNoProxy(c) {
		forwarded = c.Request().Header.PeekAll(fiber.HeaderXForwardedHost)
	}
	if len(forwarded) == 1 && len(forwarded[0]) == 0 {
		forwarded = nil // Fiber, too, falls back to Host on an empty header
	}
	switch {
	case len(forwarded) == 0 || !c.IsProxyTrusted():
		raw = utils.UnsafeString(c.Request().URI().Host()) // not kept: only looked up
	case len(forwarded) > 1:
		return "", errForwardedRepeated
	case bytes.IndexByte(forwarded[0], ',') >= 0:
		return "", errForwardedList
	default:
		raw = utils.UnsafeString(forwarded[0])
	}
	if raw == "" {
		return "", ErrNoTenant
	}
	return raw, nil
}

// trustsNoProxy reports whether c's app ignores every X-Forwarded-Host. The
// first request of each app also warns when the app believes every client's.
func (r *hostReader) trustsNoProxy(c *fiber.Ctx) bool {
	app := c.App()
	old := r.trust.Load()
	if old != nil && old.app == app {
		return old.never
	}
	conf := app.Config() // a copy: only on the first request of each app
	t := &appTrust{app: app, never: conf.EnableTrustedProxyCheck && len(conf.TrustedProxies) == 0}
	// Of concurrent first requests, only the one that swaps warns.
	if r.trust.CompareAndSwap(old, t) && !conf.EnableTrustedProxyCheck {
		warn(warnNoProxyCheck)
	}
	return t.never
}

// checkHost refuses a request whose host fasthttp would repair in silence:
// user info in the Host header or in an absolute-form request target, which
// fasthttp strips ("evil@acme.example.com" would be served as
// acme.example.com), and a Host header sent on more than one line, of which
// fasthttp keeps the last (RFC 9112 requires a 400). It reads the raw bytes
// and allocates nothing.
func checkHost(h *fasthttp.RequestHeader) error {
	if bytes.IndexByte(h.Host(), '@') >= 0 {
		return errBadHost
	}
	if target := h.RequestURI(); len(target) > 0 && target[0] != '/' {
		if i := bytes.Index(target, schemeSep); i >= 0 {
			authority := target[i+len(schemeSep):]
			if end := bytes.IndexAny(authority, "/?#"); end >= 0 {
				authority = authority[:end]
			}
			if bytes.IndexByte(authority, '@') >= 0 {
				return errBadHost
			}
		}
	}
	if repeatedHost(h.RawHeaders()) {
		return errHostRepeated
	}
	return nil
}

var (
	schemeSep = []byte("://")
	hostName  = []byte("host")
)

// repeatedHost reports whether raw, a request's header lines as received,
// holds more than one Host line. A request built in code has no raw lines.
func repeatedHost(raw []byte) bool {
	seen := false
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) > len(hostName) && line[len(hostName)] == ':' && bytes.EqualFold(line[:len(hostName)], hostName) {
			if seen {
				return true
			}
			seen = true
		}
	}
	return false
}
