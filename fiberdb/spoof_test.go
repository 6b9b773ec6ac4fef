package fiberdb_test

// Spoofing tests: every way a client can try to pick another tenant (Host,
// X-Forwarded-Host, the tenant header, a tenant the principal does not
// belong to, rewriting the request mid-way) goes through config.Load,
// tenancy.FromConfig, fiberdb.New and app.Test against real databases, each
// holding a marker row with its own engine's name.

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// spoofHosts routes acme and globex by name; globex is configured in upper
// case with a trailing dot, and also answers an IPv4 and a bracketed IPv6
// literal.
var spoofHosts = map[string][]any{
	"default": nil,
	"acme":    {"acme.test"},
	"globex":  {"GLOBEX.test.", "127.0.0.1", "[::1]"},
}

// markedEngines opens default, acme and globex on fresh databases, each with
// a marker table holding its own engine's name, routed as spoofHosts says
// and set up by settings (the FIBERDB map, nil for none).
func markedEngines(t *testing.T, settings map[string]any) (e *fiberdb.Engines, engines map[string]any) {
	t.Helper()
	engines = map[string]any{}
	for name, hosts := range spoofHosts {
		m := map[string]any{"url": fiberdbtest.Database(t)}
		if hosts != nil {
			m["hosts"] = hosts
		}
		engines[name] = m
	}
	conf, err := config.Load(confKoanf(t, engines, settings))
	require.NoError(t, err)
	e = openConf(t, conf)
	for _, name := range e.Names() {
		exec(t, e, name, "CREATE TABLE marker (tenant text NOT NULL)")
		pool, err := e.Engine(name)
		require.NoError(t, err)
		_, err = pool.Exec(t.Context(), "INSERT INTO marker VALUES ($1)", name)
		require.NoError(t, err)
	}
	return e, engines
}

// markerApp serves GET / with "<Tenant(c)>:<the marker row of the database
// the request's connection reached>", with recover before fiberdb.
func markerApp(fcfg *fiber.Config, cfg fiberdb.Config) *fiber.App {
	app := fiber.New(*fcfg)
	app.Use(fiberrecover.New())
	app.Use(fiberdb.New(cfg))
	app.Get("/", func(c *fiber.Ctx) error {
		marker, err := connScalar[string](c, "SELECT tenant FROM marker")
		if err != nil {
			return err
		}
		return c.SendString(fiberdb.Tenant(c) + ":" + marker)
	})
	return app
}

// spoofCase is one request and the answer it must get. A routed request
// answers "<engine>:<engine>"; a refused one the error message.
type spoofCase struct {
	name    string
	host    string
	headers [][2]string // added in order, so a name may repeat
	status  int
	body    string
}

func (sc *spoofCase) request() *http.Request {
	req := request(fiber.MethodGet, sc.host, "/")
	for _, h := range sc.headers {
		req.Header.Add(h[0], h[1])
	}
	return req
}

// runSpoofCases serves each case in turn and checks, after each, that every
// pool is idle again. The rows run one at a time on purpose: a leak check
// cannot tell whose connection is acquired while other rows run.
func runSpoofCases(t *testing.T, app *fiber.App, e *fiberdb.Engines, cases []spoofCase) {
	t.Helper()
	for _, sc := range cases {
		t.Run(sc.name, func(t *testing.T) {
			status, body := fiberdbtest.Do(t, app, sc.request())
			require.Equal(t, sc.status, status, body)
			require.Equal(t, sc.body, body)
			fiberdbtest.NoLeaks(t, e)
		})
	}
}

func routed(engine string) string { return engine + ":" + engine }

// xfh is an X-Forwarded-Host header.
func xfh(v string) [][2]string { return [][2]string{{fiber.HeaderXForwardedHost, v}} }

// tenantHeader is one X-Tenant header per value.
func tenantHeader(vs ...string) [][2]string {
	h := make([][2]string, 0, len(vs))
	for _, v := range vs {
		h = append(h, [2]string{"X-Tenant", v})
	}
	return h
}

//nolint:tparallel // rows share one set of pools and check it is idle after each
func TestSpoofHostIsNormalizedOrRefused(t *testing.T) {
	t.Parallel()
	e, _ := markedEngines(t, nil)
	app := markerApp(&fiber.Config{EnableTrustedProxyCheck: true}, fiberdb.Config{Engines: e})
	long := strings.Repeat("a", 296) + ".test"
	runSpoofCases(t, app, e, []spoofCase{
		{name: "configured host", host: "acme.test", status: fiber.StatusOK, body: routed("acme")},
		{name: "upper-case host", host: "ACME.Test", status: fiber.StatusOK, body: routed("acme")},
		{name: "host with a port", host: "acme.test:8080", status: fiber.StatusOK, body: routed("acme")},
		{name: "host with a trailing dot", host: "acme.test.", status: fiber.StatusOK, body: routed("acme")},
		{name: "host with a trailing dot and a port", host: "acme.test.:443", status: fiber.StatusOK, body: routed("acme")},
		{name: "host configured in upper case with a trailing dot", host: "globex.test", status: fiber.StatusOK, body: routed("globex")},
		{name: "IPv4 host with a port", host: "127.0.0.1:3000", status: fiber.StatusOK, body: routed("globex")},
		{name: "bracketed IPv6 host", host: "[::1]", status: fiber.StatusOK, body: routed("globex")},
		{name: "bracketed IPv6 host with a port", host: "[::1]:8080", status: fiber.StatusOK, body: routed("globex")},
		{name: "empty host", host: "", status: fiber.StatusBadRequest, body: "missing tenant"},
		{name: "host with a percent", host: "acme%2etest", status: fiber.StatusBadRequest, body: "malformed tenant"},
		{name: "host with a space", host: "acme test", status: fiber.StatusBadRequest, body: "malformed tenant"},
		{name: "host with a path", host: "acme.test/x", status: fiber.StatusBadRequest, body: "malformed tenant"},
		{name: "host with a bad port", host: "acme.test:99999", status: fiber.StatusBadRequest, body: "malformed tenant"},
		{name: "host with two trailing dots", host: "acme.test..", status: fiber.StatusBadRequest, body: "malformed tenant"},
		{name: "unclosed IPv6 bracket", host: "[::1", status: fiber.StatusBadRequest, body: "malformed tenant"},
		{name: "host of 300 bytes", host: long, status: fiber.StatusBadRequest, body: "malformed tenant"},
		{name: "unknown host", host: "evil.test", status: fiber.StatusNotFound, body: "unknown tenant"},
		{name: "subdomain of a configured host", host: "x.acme.test", status: fiber.StatusNotFound, body: "unknown tenant"},
		{name: "the landlord's name is no host", host: "default", status: fiber.StatusNotFound, body: "unknown tenant"},
	})
}

//nolint:tparallel // rows share one set of pools and check it is idle after each
func TestSpoofForwardedHost(t *testing.T) {
	t.Parallel()
	e, _ := markedEngines(t, nil)
	long := strings.Repeat("a", 296) + ".test"

	t.Run("untrusted peer", func(t *testing.T) {
		// EnableTrustedProxyCheck with no TrustedProxies: nobody is trusted.
		app := markerApp(&fiber.Config{EnableTrustedProxyCheck: true}, fiberdb.Config{Engines: e})
		runSpoofCases(t, app, e, []spoofCase{
			{name: "forwarded host is ignored", host: "acme.test", headers: xfh("globex.test"), status: fiber.StatusOK, body: routed("acme")},
			{name: "malformed forwarded host is ignored", host: "acme.test", headers: xfh("bad%host"), status: fiber.StatusOK, body: routed("acme")},
			{name: "forwarded host cannot rescue an unknown host", host: "evil.test", headers: xfh("acme.test"), status: fiber.StatusNotFound, body: "unknown tenant"},
		})
	})
	t.Run("trusted proxy", func(t *testing.T) {
		// app.Test's peer is 0.0.0.0: trusting it simulates a request that came
		// through the app's own proxy.
		app := markerApp(&fiber.Config{EnableTrustedProxyCheck: true, TrustedProxies: []string{"0.0.0.0"}}, fiberdb.Config{Engines: e})
		runSpoofCases(t, app, e, []spoofCase{
			{name: "without a forwarded host the host counts", host: "acme.test", status: fiber.StatusOK, body: routed("acme")},
			{name: "forwarded host wins over host", host: "acme.test", headers: xfh("globex.test"), status: fiber.StatusOK, body: routed("globex")},
			{name: "upper-case forwarded host with a port", host: "acme.test", headers: xfh("GLOBEX.Test:8443"), status: fiber.StatusOK, body: routed("globex")},
			{name: "forwarded host with a trailing dot", host: "acme.test", headers: xfh("globex.test."), status: fiber.StatusOK, body: routed("globex")},
			{name: "forwarded bracketed IPv6 host with a port", host: "acme.test", headers: xfh("[::1]:443"), status: fiber.StatusOK, body: routed("globex")},
			{name: "unknown forwarded host never falls back to host", host: "acme.test", headers: xfh("evil.test"), status: fiber.StatusNotFound, body: "unknown tenant"},
			{name: "malformed forwarded host never falls back to host", host: "acme.test", headers: xfh("acme.test/evil"), status: fiber.StatusBadRequest, body: "malformed tenant"},
			{name: "forwarded host of 300 bytes", host: "acme.test", headers: xfh(long), status: fiber.StatusBadRequest, body: "malformed tenant"},
		})
	})
}

//nolint:tparallel // rows share one set of pools and check it is idle after each
func TestSpoofTenantHeader(t *testing.T) {
	t.Parallel()

	t.Run("off unless configured", func(t *testing.T) {
		e, _ := markedEngines(t, nil)
		app := markerApp(&fiber.Config{EnableTrustedProxyCheck: true}, fiberdb.Config{Engines: e})
		runSpoofCases(t, app, e, []spoofCase{
			{name: "header cannot redirect a host", host: "acme.test", headers: tenantHeader("globex"), status: fiber.StatusOK, body: routed("acme")},
			{name: "header cannot rescue an unknown host", host: "api.test", headers: tenantHeader("acme"), status: fiber.StatusNotFound, body: "unknown tenant"},
			{name: "repeated header is not even read", host: "acme.test", headers: tenantHeader("acme", "globex"), status: fiber.StatusOK, body: routed("acme")},
		})
	})

	t.Run("on", func(t *testing.T) {
		e, _ := markedEngines(t, map[string]any{"tenant_header": "X-Tenant", "base_domain": "example.com"})
		app := markerApp(&fiber.Config{EnableTrustedProxyCheck: true}, fiberdb.Config{Engines: e})
		long := strings.Repeat("a", 64)
		runSpoofCases(t, app, e, []spoofCase{
			{name: "known tenant", host: "api.test", headers: tenantHeader("acme"), status: fiber.StatusOK, body: routed("acme")},
			{name: "another known tenant", host: "api.test", headers: tenantHeader("globex"), status: fiber.StatusOK, body: routed("globex")},
			{name: "header name in lower case", host: "api.test", headers: [][2]string{{"x-tenant", "globex"}}, status: fiber.StatusOK, body: routed("globex")},
			{name: "unknown tenant", host: "api.test", headers: tenantHeader("evil"), status: fiber.StatusNotFound, body: "unknown tenant"},
			{name: "tenant names are case-sensitive", host: "api.test", headers: tenantHeader("ACME"), status: fiber.StatusNotFound, body: "unknown tenant"},
			{name: "the landlord is not selectable", host: "api.test", headers: tenantHeader("default"), status: fiber.StatusNotFound, body: "unknown tenant"},
			{name: "a list is one unknown value", host: "api.test", headers: tenantHeader("acme, globex"), status: fiber.StatusNotFound, body: "unknown tenant"},
			{name: "repeated header", host: "api.test", headers: tenantHeader("acme", "globex"), status: fiber.StatusBadRequest, body: "malformed tenant"},
			{name: "repeated header with one value", host: "api.test", headers: tenantHeader("acme", "acme"), status: fiber.StatusBadRequest, body: "malformed tenant"},
			{name: "header of 64 bytes", host: "api.test", headers: tenantHeader(long), status: fiber.StatusBadRequest, body: "malformed tenant"},
			{name: "empty header", host: "api.test", headers: tenantHeader(""), status: fiber.StatusNotFound, body: "unknown tenant"},
			{name: "host routing comes first", host: "acme.test", headers: tenantHeader("globex"), status: fiber.StatusOK, body: routed("acme")},
			{name: "subdomain of base_domain", host: "globex.example.com", status: fiber.StatusOK, body: routed("globex")},
			{name: "subdomain comes before the header", host: "acme.example.com", headers: tenantHeader("globex"), status: fiber.StatusOK, body: routed("acme")},
			{name: "the landlord is no subdomain", host: "default.example.com", status: fiber.StatusNotFound, body: "unknown tenant"},
			{name: "base_domain itself falls through to the header", host: "example.com", headers: tenantHeader("globex"), status: fiber.StatusOK, body: routed("globex")},
			{name: "two labels under base_domain", host: "x.acme.example.com", status: fiber.StatusNotFound, body: "unknown tenant"},
		})
	})
}

//nolint:tparallel // rows share the handler's records and one set of pools
func TestSpoofAuthorizeRefuses(t *testing.T) {
	t.Parallel()
	e, _ := markedEngines(t, map[string]any{"tenant_header": "X-Tenant"})

	// The principal is whatever the bearer token names; Authorize binds the
	// header's tenant to it.
	errNotMember := errors.New("principal is not a member of the tenant")
	var (
		authorized []string
		handled    []error
	)
	app := markerApp(&fiber.Config{
		EnableTrustedProxyCheck: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			handled = append(handled, err)
			var fe *fiber.Error
			if !errors.As(err, &fe) {
				fe = fiber.ErrInternalServerError
			}
			return c.Status(fe.Code).JSON(fiber.Map{"status": fe.Code, "error": fe.Message})
		},
	}, fiberdb.Config{Engines: e, Authorize: func(c *fiber.Ctx, engine string) error {
		authorized = append(authorized, engine)
		if c.Get(fiber.HeaderAuthorization) != "Bearer "+engine {
			return errNotMember
		}
		return nil
	}})
	acquires := func() int64 {
		var n int64
		for _, name := range e.Names() {
			pool, err := e.Engine(name)
			require.NoError(t, err)
			n += pool.Stat().AcquireCount()
		}
		return n
	}

	for _, tt := range []struct {
		name, tenant, token string
		status              int
		body                string
	}{
		{"principal of the tenant", "acme", "Bearer acme", fiber.StatusOK, routed("acme")},
		{"principal of another tenant", "acme", "Bearer globex", fiber.StatusForbidden, `{"status":403,"error":"tenant forbidden"}`},
		{"no principal", "globex", "", fiber.StatusForbidden, `{"status":403,"error":"tenant forbidden"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			authorized, handled = nil, nil
			before := acquires()
			req := request(fiber.MethodGet, "api.test", "/")
			req.Header.Set("X-Tenant", tt.tenant)
			if tt.token != "" {
				req.Header.Set(fiber.HeaderAuthorization, tt.token)
			}
			status, body := fiberdbtest.Do(t, app, req)
			require.Equal(t, tt.status, status, body)
			require.Equal(t, []string{tt.tenant}, authorized, "Authorize sees the resolved engine, once")
			fiberdbtest.NoLeaks(t, e)
			if tt.status == fiber.StatusOK {
				require.Equal(t, tt.body, body)
				require.Empty(t, handled)
				return
			}
			require.JSONEq(t, tt.body, body)
			require.Len(t, handled, 1)
			require.ErrorIs(t, handled[0], fiberdb.ErrForbidden)
			require.ErrorIs(t, handled[0], errNotMember, "the cause is kept for logs")
			require.Equal(t, before, acquires(), "a refused request acquires no connection")
		})
	}
	require.EqualValues(t, 2, e.ResolveStats().Refused)
}

func TestSpoofTenantFixedForTheRequest(t *testing.T) {
	t.Parallel()
	e, engines := markedEngines(t, map[string]any{"tenant_header": "X-Tenant"})
	acmeDSN, err := pgx.ParseConfig(dsnOf(t, engines, "acme"))
	require.NoError(t, err)

	type seen struct {
		before, after        string
		sameConn, sameByName bool
		database, marker     string
		hostAfter            string
	}
	globex, err := e.Engine("globex")
	require.NoError(t, err)
	globexAcquires := globex.Stat().AcquireCount() // the setup's own

	var got seen
	// A trusted proxy, so that every source of a tenant is live.
	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true, TrustedProxies: []string{"0.0.0.0"}})
	app.Use(fiberrecover.New())
	app.Use(fiberdb.New(fiberdb.Config{Engines: e}))
	app.Get("/", func(c *fiber.Ctx) error {
		got.before = fiberdb.Tenant(c)
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		// Everything the resolvers read now names globex.
		c.Request().Header.SetHost("globex.test")
		c.Request().URI().SetHost("globex.test")
		c.Request().Header.Set(fiber.HeaderXForwardedHost, "globex.test")
		c.Request().Header.Set("X-Tenant", "globex")
		got.hostAfter = strings.Clone(c.Hostname())

		got.after = fiberdb.Tenant(c)
		again, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		byName, err := fiberdb.ConnFor(c, fiberdb.Tenant(c))
		if err != nil {
			return err
		}
		got.sameConn, got.sameByName = again == db, byName == db
		ctx := c.UserContext()
		if got.database, err = scalar[string](ctx, again, "SELECT current_database()"); err != nil {
			return err
		}
		got.marker, err = scalar[string](ctx, again, "SELECT tenant FROM marker")
		return err
	})

	req := request(fiber.MethodGet, "api.test", "/")
	req.Header.Set(fiber.HeaderXForwardedHost, "acme.test")
	status, body := fiberdbtest.Do(t, app, req)
	require.Equal(t, fiber.StatusOK, status, body)
	require.Equal(t, "globex.test", got.hostAfter, "the rewrite took effect")
	require.Equal(t, "acme", got.before)
	require.Equal(t, "acme", got.after, "the tenant is resolved once, before the handler")
	require.True(t, got.sameConn)
	require.True(t, got.sameByName)
	require.Equal(t, acmeDSN.Database, got.database, "the connection still reaches acme's database")
	require.Equal(t, "acme", got.marker)
	require.Equal(t, globexAcquires, globex.Stat().AcquireCount(), "globex was never touched")
}
