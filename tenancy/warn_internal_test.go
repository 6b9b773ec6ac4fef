package tenancy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
)

// TestHostRoutingWarnsWithoutProxyCheck lives inside the package to swap
// warn. It is not parallel: parallel tests read warn, and top-level parallel
// tests wait until it has finished and restored it.
func TestHostRoutingWarnsWithoutProxyCheck(t *testing.T) {
	var warnings []string // appended by handlers, read after app.Test returns
	orig := warn
	warn = func(msg string) { warnings = append(warnings, msg) }
	t.Cleanup(func() { warn = orig })

	byHost := func() Resolver { return ByHost(map[string]string{"acme.example.com": "acme"}) }
	tests := []struct {
		name     string
		conf     fiber.Config
		resolver func() Resolver // default: byHost
		want     []string        // for two apps served three requests each
	}{
		{
			name: "fiber default apps warn once each",
			conf: fiber.Config{},
			want: []string{warnNoProxyCheck, warnNoProxyCheck},
		},
		{
			// FromConfig's rule for hosts and subdomains reads the host once.
			name: "host and subdomain routing together warn once per app",
			conf: fiber.Config{},
			resolver: func() Resolver {
				r := &hostRule{hosts: hostTable(map[string]string{"admin.example.com": "default"})}
				r.setSubdomains("example.com", []string{"acme"})
				return r.resolve
			},
			want: []string{warnNoProxyCheck, warnNoProxyCheck},
		},
		{
			name: "apps trusting a proxy never warn",
			conf: fiber.Config{EnableTrustedProxyCheck: true, TrustedProxies: []string{"0.0.0.0"}},
		},
		{
			name: "apps trusting no proxy never warn",
			conf: fiber.Config{EnableTrustedProxyCheck: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnings = nil
			if tt.resolver == nil {
				tt.resolver = byHost
			}
			r := tt.resolver()
			for range 2 {
				app := fiber.New(tt.conf)
				app.Use(func(c *fiber.Ctx) error {
					if _, err := r(c); err != nil {
						return err
					}
					return c.SendStatus(fiber.StatusNoContent)
				})
				for range 3 {
					req := httptest.NewRequest(http.MethodGet, "/", http.NoBody)
					req.Host = "acme.example.com"
					resp, err := app.Test(req, -1)
					require.NoError(t, err)
					require.NoError(t, resp.Body.Close())
					require.Equal(t, fiber.StatusNoContent, resp.StatusCode)
				}
			}
			require.Equal(t, tt.want, warnings)
		})
	}
	require.Equal(t, "fiberdb: host routing on a Fiber app without EnableTrustedProxyCheck: "+
		"any client can pick its tenant with X-Forwarded-Host", warnNoProxyCheck)
}
