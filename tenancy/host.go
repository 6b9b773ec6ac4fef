package tenancy

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/fiberdb/fiberdb/internal/hostname"
)

// errBadHost reports a Host (or trusted X-Forwarded-Host) that cannot be a
// host name; it never quotes the value, which the client controls.
var (
	errBadHost       = fmt.Errorf("host: %w", ErrMalformed)
	errForwardedList = fmt.Errorf("X-Forwarded-Host holds several hosts: %w", ErrMalformed)
)

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
// forwarded list ("a, b") is refused with [ErrMalformed]: the proxy must
// overwrite the header, not append to it.
//
// ByHost copies hosts; it panics if a key is not a valid host name.
func ByHost(hosts map[string]string) Resolver {
	m := make(map[string]string, len(hosts))
	for h, engine := range hosts {
		norm, err := hostname.Normalize(h)
		if err != nil {
			panic(fmt.Sprintf("tenancy: ByHost: invalid host %q", h))
		}
		m[norm] = engine
	}
	var hr hostReader
	return func(c *fiber.Ctx) (string, error) {
		host, err := hr.host(c)
		if err != nil {
			return "", err
		}
		if engine, ok := m[host]; ok {
			return engine, nil
		}
		return "", ErrUnknownTenant
	}
}

// BySubdomain resolves "<engine>.<baseDomain>" to the engine of that name
// among engines, compared in ASCII lower case. A host outside baseDomain, or
// baseDomain itself, gives [ErrNoTenant]; a label that names no engine in
// engines, or more than one label, gives [ErrUnknownTenant].
//
// It panics if baseDomain is not a valid host name.
func BySubdomain(baseDomain string, engines []string) Resolver {
	base, err := hostname.Normalize(baseDomain)
	if err != nil {
		panic(fmt.Sprintf("tenancy: BySubdomain: invalid base domain %q", baseDomain))
	}
	suffix := "." + base
	labels := make(map[string]string, len(engines))
	for _, e := range engines {
		labels[strings.ToLower(e)] = e
	}
	var hr hostReader
	return func(c *fiber.Ctx) (string, error) {
		host, err := hr.host(c)
		if err != nil {
			return "", err
		}
		label, ok := strings.CutSuffix(host, suffix)
		if !ok || label == "" {
			return "", ErrNoTenant
		}
		if engine, ok := labels[label]; ok {
			return engine, nil
		}
		return "", ErrUnknownTenant
	}
}

// hostReader reads a request's host for one resolver. It remembers, for the
// last app it served, whether that app can ever trust a proxy.
type hostReader struct{ trust atomic.Pointer[appTrust] }

type appTrust struct {
	app   *fiber.App
	never bool // EnableTrustedProxyCheck with no TrustedProxies
}

// host is c.Hostname(), normalized, with three differences. It refuses a
// forwarded list ("a, b"): Fiber would take its first value, which a proxy
// that appends rather than overwrites leaves to the client. It skips the
// X-Forwarded-Host lookup for an app that trusts no proxy. And it asks
// whether the peer is a trusted proxy only when there is a forwarded host:
// that check formats the peer IP, an allocation per request.
func (r *hostReader) host(c *fiber.Ctx) (string, error) {
	var raw string
	var forwarded []byte
	if !r.trustsNoProxy(c) {
		forwarded = c.Request().Header.Peek(fiber.HeaderXForwardedHost)
	}
	switch {
	case len(forwarded) == 0 || !c.IsProxyTrusted():
		raw = utils.UnsafeString(c.Request().URI().Host()) // not kept: only looked up
	case bytes.IndexByte(forwarded, ',') >= 0:
		return "", errForwardedList
	default:
		raw = utils.UnsafeString(forwarded)
	}
	if raw == "" {
		return "", ErrNoTenant
	}
	host, err := hostname.Normalize(raw)
	if err != nil {
		return "", errBadHost
	}
	return host, nil
}

func (r *hostReader) trustsNoProxy(c *fiber.Ctx) bool {
	app := c.App()
	if t := r.trust.Load(); t != nil && t.app == app {
		return t.never
	}
	conf := app.Config() // a copy: only on the first request of each app
	t := &appTrust{app: app, never: conf.EnableTrustedProxyCheck && len(conf.TrustedProxies) == 0}
	r.trust.Store(t)
	return t.never
}
