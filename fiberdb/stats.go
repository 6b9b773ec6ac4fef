package fiberdb

import "sync/atomic"

// ResolveStats counts the middleware's tenant resolutions since [Open],
// across every middleware built on the same [Engines]. A failure is counted
// under the same kind as the status the default ErrorHandler answers for it.
type ResolveStats struct {
	// Resolved counts requests that reached each engine (every engine is
	// present, zero or not). An engine that an Apply replaced (its url, pool
	// options, search_path or settings changed) counts again from zero.
	Resolved map[string]uint64
	// NoTenant counts requests that named no tenant (400).
	NoTenant uint64
	// Malformed counts requests whose tenant could not be read safely (400).
	Malformed uint64
	// UnknownTenant counts requests naming a tenant that is not configured,
	// or that Config.Authorize refused as unknown (404).
	UnknownTenant uint64
	// Refused counts tenants that Config.Authorize refused (403).
	Refused uint64
	// Failed counts resolver errors of any other kind.
	Failed uint64
}

// resolveCounts counts failed resolutions by kind. Successes are counted on
// their engine.
type resolveCounts [numKinds]atomic.Uint64

func (c *resolveCounts) failure(err error) { c[classify(err)].Add(1) }

func (c *resolveCounts) stats(resolved map[string]uint64) ResolveStats {
	return ResolveStats{
		Resolved:      resolved,
		NoTenant:      c[kindNoTenant].Load(),
		Malformed:     c[kindMalformed].Load(),
		UnknownTenant: c[kindUnknown].Load() + c[kindRemoved].Load(),
		Refused:       c[kindForbidden].Load(),
		// A resolver that fails for want of a connection is a failure like
		// any other that fiberdb does not know.
		Failed: c[kindOther].Load() + c[kindUnavailable].Load(),
	}
}
