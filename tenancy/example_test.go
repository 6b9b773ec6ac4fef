package tenancy_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberdb/fiberdb/tenancy"
)

// Subdomains of example.com are tried first, then the X-Tenant header. An unknown tenant is a 404,
// a request that names none a 400.
func ExampleChain() {
	resolve := tenancy.Chain(
		tenancy.BySubdomain("example.com", []string{"acme"}),
		tenancy.ByHeader("X-Tenant", []string{"globex"}),
	)

	// Behind a proxy, also set TrustedProxies; without EnableTrustedProxyCheck
	// any client could choose its tenant with X-Forwarded-Host.
	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true})
	app.Get("/", func(c *fiber.Ctx) error {
		engine, err := resolve(c)
		switch {
		case errors.Is(err, tenancy.ErrUnknownTenant):
			return fiber.ErrNotFound
		case err != nil:
			return fiber.ErrBadRequest
		}
		return c.SendString("engine " + engine)
	})

	for _, r := range []struct{ host, tenant string }{
		{"acme.example.com", ""},
		{"api.other.org", "globex"},
		{"api.other.org", "initech"},
		{"example.com", ""},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", http.NoBody)
		req.Host = r.host
		if r.tenant != "" {
			req.Header.Set("X-Tenant", r.tenant)
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			panic(err)
		}
		body, err := io.ReadAll(resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s %q: %d %s\n", r.host, r.tenant, resp.StatusCode, body)
	}
	// Output:
	// acme.example.com "": 200 engine acme
	// api.other.org "globex": 200 engine globex
	// api.other.org "initech": 404 Not Found
	// example.com "": 400 Bad Request
}
