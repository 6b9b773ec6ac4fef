// Package tenancy maps each request to the name of the engine that serves it.
//
// Every resolver fails closed: a request without a tenant, or with one that is
// not configured, gets an error, never the "default" engine by accident.
// Resolvers return engine names they were given at construction, never a
// string that points into a reused Fiber buffer.
package tenancy

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberdb/fiberdb/config"
)

// Resolver returns the engine name for a request. It must not keep c, or any
// string taken from it, after it returns.
type Resolver func(c *fiber.Ctx) (engine string, err error)

// Sentinel errors, mapped to HTTP statuses by fiberdb's middleware.
var (
	// ErrNoTenant: the request carries no tenant (no Host under the base
	// domain, no tenant header). fiberdb answers 400.
	ErrNoTenant = errors.New("no tenant in request")
	// ErrUnknownTenant: the request names a tenant that is not configured.
	// fiberdb answers 404.
	ErrUnknownTenant = errors.New("unknown tenant")
	// ErrMalformed: the tenant value cannot be read safely (a malformed or
	// over-long host, a repeated or over-long header). It stops a [Chain].
	// fiberdb answers 400.
	ErrMalformed = errors.New("malformed tenant")
)

// Fixed resolves every request to engine. It suits single-tenant apps.
func Fixed(engine string) Resolver {
	return func(*fiber.Ctx) (string, error) { return engine, nil }
}

// Chain tries resolvers in order and returns the first engine found.
// [ErrNoTenant] and [ErrUnknownTenant] pass the request on to the next
// resolver; any other error stops the chain and is returned. When no resolver
// answers, Chain returns ErrUnknownTenant if any resolver returned it, and
// ErrNoTenant otherwise.
func Chain(resolvers ...Resolver) Resolver {
	rs := append([]Resolver(nil), resolvers...)
	return func(c *fiber.Ctx) (string, error) {
		unknown := false
		for _, r := range rs {
			engine, err := r(c)
			switch {
			case err == nil:
				return engine, nil
			case errors.Is(err, ErrUnknownTenant):
				unknown = true
			case errors.Is(err, ErrNoTenant):
			default:
				return "", err
			}
		}
		if unknown {
			return "", ErrUnknownTenant
		}
		return "", ErrNoTenant
	}
}

// FromConfig builds the resolver conf describes: the engines' hosts first,
// then subdomains of base_domain, then tenant_header, chained. Subdomain and
// header routing select only conf.Tenants, which leaves out the "default"
// (landlord) engine unless the settings list it.
//
// With no routing configured at all, the app is single-tenant and every
// request resolves to "default" (or fails with ErrNoTenant when there is no
// "default" engine).
func FromConfig(conf *config.Config) Resolver {
	var rules []Resolver
	var host hostRule
	if hosts := conf.Hosts(); len(hosts) > 0 {
		host.hosts = hostTable(hosts)
	}
	if conf.BaseDomain != "" {
		host.setSubdomains(conf.BaseDomain, conf.Tenants)
	}
	if host.hosts != nil || host.suffix != "" {
		rules = append(rules, host.resolve)
	}
	if conf.TenantHeader != "" {
		rules = append(rules, ByHeader(conf.TenantHeader, conf.Tenants))
	}
	switch len(rules) {
	case 0:
		if e, ok := conf.Engines[config.DefaultEngine]; ok {
			return Fixed(e.Name)
		}
		return func(*fiber.Ctx) (string, error) { return "", ErrNoTenant }
	case 1:
		return rules[0]
	}
	return Chain(rules...)
}
