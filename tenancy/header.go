package tenancy

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/fiberdb/fiberdb/internal/lookup"
)

// MaxHeaderLen is the longest tenant header value read; longer values are
// refused with [ErrMalformed] before any lookup.
const MaxHeaderLen = 63

var (
	errRepeatedHeader = fmt.Errorf("tenant header repeated: %w", ErrMalformed)
	errLongHeader     = fmt.Errorf("tenant header too long: %w", ErrMalformed)
)

// ByHeader resolves the value of header, which must be exactly one of
// engines (case-sensitive). No header, or an empty one, gives [ErrNoTenant];
// an unknown value [ErrUnknownTenant]; a header sent more than once, or longer
// than [MaxHeaderLen], [ErrMalformed].
//
// Any client can send any header: use ByHeader only behind a proxy that sets
// it, or bind the tenant to the authenticated principal with fiberdb's
// Config.Authorize.
func ByHeader(header string, engines []string) Resolver {
	m := make(map[string]string, len(engines))
	for _, e := range engines {
		m[e] = e
	}
	known := lookup.New(m)
	return func(c *fiber.Ctx) (string, error) {
		values := c.Request().Header.PeekAll(header)
		switch {
		case len(values) > 1:
			return "", errRepeatedHeader
		case len(values) == 0 || len(values[0]) == 0:
			return "", ErrNoTenant
		case len(values[0]) > MaxHeaderLen:
			return "", errLongHeader
		}
		if engine, ok := known.Get(utils.UnsafeString(values[0])); ok {
			return engine, nil
		}
		return "", ErrUnknownTenant
	}
}
