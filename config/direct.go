package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// loadDirect parses the direct_url of the engine at engineKey, which takes
// the same forms as its url, and applies the engine's options onto it as
// onto the url, so that a direct connection has the engine's
// connect_timeout, query exec mode and statement caches. No pool is made
// from a direct_url, so a pool_* parameter in it is refused rather than
// ignored, unless the direct_url was made from the url (a [derivedURL]),
// whose pool it configures.
//
// It returns a configuration or errors, never neither: an option that does
// not apply is a [*KeyError] at the option's key, as loadOwnPool reports it
// for the url ([appendUnseen] keeps one of the two).
func loadDirect(engineKey string, raw any, entry, defaults map[string]any) (*pgxpool.Config, []error) {
	key := engineKey + `["direct_url"]`
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
	opts := engineOptions(defaults, entry, inURL)
	for _, opt := range sortedKeys(opts) {
		apply, known := poolOptions[opt]
		if !known {
			continue // loadOwnPool reports it; the direct_url has nothing to set
		}
		if err := apply(pc, opts[opt]); err != nil {
			errs = append(errs, keyErr(engineKey+"["+strconv.Quote(opt)+"]", err.Error(), ErrInvalidOption))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return pc, nil
}

// appendUnseen appends to errs each error of more whose message errs does
// not hold yet: an engine's bad option fails on its url and its direct_url
// alike, and is reported once.
func appendUnseen(errs []error, more ...error) []error {
	for _, m := range more {
		if !slices.ContainsFunc(errs, func(e error) bool { return e.Error() == m.Error() }) {
			errs = append(errs, m)
		}
	}
	return errs
}
