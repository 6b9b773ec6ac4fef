package config

import (
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// loadDirect parses an engine's direct_url, which takes the same forms as
// its url, and applies the engine's options onto it as onto the url, so
// that a direct connection has the engine's connect_timeout, query exec
// mode and statement caches. The url's check reports a bad option; here
// only the direct_url's own parameters are checked. No pool is made from a
// direct_url, so a pool_* parameter in it is refused rather than ignored,
// unless the direct_url was made from the url (a [derivedURL]), whose pool
// it configures.
func loadDirect(key string, raw any, entry, defaults map[string]any) (*pgxpool.Config, []error) {
	d, fromURL := raw.(derivedURL)
	if fromURL {
		raw = d.url
	}
	pc, dsn, errs := engineURL(key, raw)
	if len(errs) > 0 {
		return nil, errs
	}
	inURL := urlOptions(dsn)
	for _, opt := range sortedKeys(inURL) {
		if strings.HasPrefix(opt, "pool_") {
			if !fromURL {
				errs = append(errs, keyErr(key, "sets "+opt+", but no pool is made from a direct_url: set it on the engine", ErrInvalidURL))
			}
			delete(inURL, opt)
		}
	}
	errs = append(errs, checkURLOptions(key, inURL)...)
	if len(errs) > 0 {
		return nil, errs
	}
	for opt, v := range engineOptions(defaults, entry, inURL) {
		apply, known := poolOptions[opt]
		if known && apply(pc, v) != nil {
			// Defaults are valid; an engine's own bad option is reported at
			// its key by loadOwnPool, and Load fails.
			return nil, nil
		}
	}
	return pc, nil
}
