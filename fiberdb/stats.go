package fiberdb

import (
	"errors"
	"sync/atomic"

	"github.com/fiberdb/fiberdb/tenancy"
)

// ResolveStats counts the middleware's tenant resolutions since [Open],
// across every middleware built on the same [Engines].
type ResolveStats struct {
	// Resolved counts requests that reached each engine (every engine is
	// present, zero or not).
	Resolved map[string]uint64
	// NoTenant counts requests that named no tenant (400).
	NoTenant uint64
	// Malformed counts requests whose tenant could not be read safely (400).
	Malformed uint64
	// UnknownTenant counts requests naming a tenant that is not configured (404).
	UnknownTenant uint64
	// Refused counts tenants that Config.Authorize refused (403).
	Refused uint64
	// Failed counts resolver errors of any other kind.
	Failed uint64
}

// ResolveStats returns the current counts. It is cheap and safe to call
// concurrently, for example from a metrics scrape.
func (e *Engines) ResolveStats() ResolveStats {
	s := ResolveStats{
		Resolved:      make(map[string]uint64, len(e.engines)),
		NoTenant:      e.counts.noTenant.Load(),
		Malformed:     e.counts.malformed.Load(),
		UnknownTenant: e.counts.unknown.Load(),
		Refused:       e.counts.refused.Load(),
		Failed:        e.counts.failed.Load(),
	}
	for name, eng := range e.engines {
		s.Resolved[name] = eng.resolved.Load()
	}
	return s
}

type resolveCounts struct {
	noTenant, malformed, unknown, refused, failed atomic.Uint64
}

// failure records one failed resolution by the kind of err. Successes are
// counted on their engine.
func (c *resolveCounts) failure(err error) {
	switch {
	case errors.Is(err, ErrForbidden):
		c.refused.Add(1)
	case errors.Is(err, tenancy.ErrMalformed):
		c.malformed.Add(1)
	case errors.Is(err, tenancy.ErrNoTenant):
		c.noTenant.Add(1)
	case errors.Is(err, tenancy.ErrUnknownTenant), errors.Is(err, ErrEngineNotDefined):
		c.unknown.Add(1)
	default:
		c.failed.Add(1)
	}
}
