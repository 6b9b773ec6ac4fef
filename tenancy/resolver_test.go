package tenancy_test

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/tenancy"
)

// proxy selects how the test app treats X-Forwarded-Host. app.Test serves
// every request from the peer 0.0.0.0, so trusting "0.0.0.0" simulates a
// request that came through a trusted proxy.
type proxy int

const (
	// fiberDefaults leaves EnableTrustedProxyCheck off: Fiber believes any
	// X-Forwarded-Host, from anyone.
	fiberDefaults proxy = iota
	// untrustedPeer turns the check on with no TrustedProxies: the header is
	// ignored and Host is used.
	untrustedPeer
	// trustedPeer turns the check on and trusts the test peer.
	trustedPeer
)

func (p proxy) config() fiber.Config {
	switch p {
	case fiberDefaults:
		return fiber.Config{}
	case untrustedPeer:
		return fiber.Config{EnableTrustedProxyCheck: true}
	case trustedPeer:
		return fiber.Config{EnableTrustedProxyCheck: true, TrustedProxies: []string{"0.0.0.0"}}
	}
	panic("unknown proxy mode " + strconv.Itoa(int(p)))
}

// newRequest builds a path-only request (so Fiber reads req.Host, not a host
// in the request line) and sets X-Forwarded-Host when xfh is not empty.
func newRequest(host, xfh string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/", http.NoBody)
	req.Host = host
	if xfh != "" {
		req.Header.Set(fiber.HeaderXForwardedHost, xfh)
	}
	return req
}

// resolve serves req through a fresh app configured by p and returns what r
// answered inside the handler. The handler only records; assertions run here,
// after app.Test has returned.
func resolve(t *testing.T, p proxy, r tenancy.Resolver, req *http.Request) (string, error) {
	t.Helper()
	var (
		engine string
		err    error
		ran    bool
	)
	app := fiber.New(p.config())
	app.Use(func(c *fiber.Ctx) error {
		engine, err = r(c)
		ran = true
		return c.SendStatus(fiber.StatusNoContent)
	})
	resp, testErr := app.Test(req, -1)
	require.NoError(t, testErr)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, fiber.StatusNoContent, resp.StatusCode)
	require.True(t, ran, "handler did not run")
	return engine, err
}

// requireResult checks a resolver's answer: want when wantErr is nil, else an
// error matching wantErr and no engine.
func requireResult(t *testing.T, want string, wantErr error, engine string, err error) {
	t.Helper()
	if wantErr != nil {
		require.ErrorIs(t, err, wantErr)
		require.Empty(t, engine)
		return
	}
	require.NoError(t, err)
	require.Equal(t, want, engine)
}

func TestByHost(t *testing.T) {
	t.Parallel()
	long253 := strings.Repeat("a", 249) + ".com" // exactly hostname.MaxLen
	hosts := map[string]string{
		"acme.example.com":    "acme",
		"globex.example.com":  "globex",
		"[::1]":               "local",
		"kitchen.example.com": "kitchen",
		"Initech.Example.com": "initech", // keys are normalized too
		long253:               "long",
	}
	padded := maps.Clone(hosts)
	for _, name := range fillers {
		padded[name+".example.org"] = name
	}
	resolvers := sized(tenancy.ByHost(hosts), tenancy.ByHost(padded))
	tests := []struct {
		name      string
		proxy     proxy
		host, xfh string
		xfhAgain  string // a second X-Forwarded-Host line; empty sends none
		want      string
		wantErr   error
	}{
		{name: "exact host", host: "acme.example.com", want: "acme"},
		{name: "port stripped", host: "acme.example.com:3000", want: "acme"},
		{name: "ipv6 literal with port", host: "[::1]:8080", want: "local"},
		{name: "ipv6 literal without port", host: "[::1]", want: "local"},
		{name: "trailing dot trimmed", host: "acme.example.com.", want: "acme"},
		{name: "trailing dot and port", host: "acme.example.com.:3000", want: "acme"},
		{name: "upper-case key matches lower-case host", host: "initech.example.com", want: "initech"},
		{
			name: "upper-case trusted forwarded host with port folds to the key", proxy: trustedPeer,
			host: "other.example.com", xfh: "ACME.Example.COM:8443", want: "acme",
		},
		{name: "host of exactly 253 bytes", host: long253, want: "long"},
		{name: "unknown host", host: "unknown.example.com", wantErr: tenancy.ErrUnknownTenant},
		{name: "subdomain of a known host is unknown", host: "x.acme.example.com", wantErr: tenancy.ErrUnknownTenant},
		{name: "two trailing dots", host: "acme.example.com..", wantErr: tenancy.ErrMalformed},
		{name: "request without host", host: "", wantErr: tenancy.ErrNoTenant},
		{name: "forwarded host with a space", xfh: "acme example.com", host: "acme.example.com", wantErr: tenancy.ErrMalformed},
		{name: "forwarded host with a percent", xfh: "acme%2eexample.com", host: "acme.example.com", wantErr: tenancy.ErrMalformed},
		{name: "forwarded host with a slash", xfh: "acme.example.com/x", host: "acme.example.com", wantErr: tenancy.ErrMalformed},
		{name: "forwarded host with a kelvin sign is never folded to k", xfh: "\u212aitchen.example.com", host: "acme.example.com", wantErr: tenancy.ErrMalformed},
		{name: "forwarded host with a bad port", xfh: "acme.example.com:99999", host: "acme.example.com", wantErr: tenancy.ErrMalformed},
		{name: "forwarded host of 254 bytes", xfh: "a" + long253, host: "acme.example.com", wantErr: tenancy.ErrMalformed},
		{name: "forwarded host of 300 bytes", xfh: strings.Repeat("a", 296) + ".com", host: "acme.example.com", wantErr: tenancy.ErrMalformed},
		{
			name: "fiber default app believes a spoofed forwarded host (why the README demands EnableTrustedProxyCheck)",
			host: "acme.example.com", xfh: "globex.example.com", want: "globex",
		},
		{
			// Fiber would take the first value, which a proxy that appends
			// leaves to the client.
			name: "a list of forwarded hosts is refused",
			host: "acme.example.com", xfh: "globex.example.com, acme.example.com", wantErr: tenancy.ErrMalformed,
		},
		{
			name: "a trusted proxy's list of forwarded hosts is refused", proxy: trustedPeer,
			host: "acme.example.com", xfh: "acme.example.com,globex.example.com", wantErr: tenancy.ErrMalformed,
		},
		{
			// A proxy that adds its own line leaves the client's first,
			// which Fiber would believe.
			name: "a trusted proxy's second forwarded host line is refused", proxy: trustedPeer,
			host: "acme.example.com", xfh: "globex.example.com", xfhAgain: "acme.example.com", wantErr: tenancy.ErrMalformed,
		},
		{
			name: "two forwarded host lines naming one host are refused", proxy: trustedPeer,
			host: "acme.example.com", xfh: "acme.example.com", xfhAgain: "acme.example.com", wantErr: tenancy.ErrMalformed,
		},
		{
			name: "fiber default app refuses two forwarded host lines",
			host: "acme.example.com", xfh: "globex.example.com", xfhAgain: "acme.example.com", wantErr: tenancy.ErrMalformed,
		},
		{
			name: "untrusted peer's two forwarded host lines are ignored for host", proxy: untrustedPeer,
			host: "acme.example.com", xfh: "globex.example.com", xfhAgain: "globex.example.com", want: "acme",
		},
		{
			name: "untrusted peer's forwarded host is ignored for host", proxy: untrustedPeer,
			host: "acme.example.com", xfh: "globex.example.com", want: "acme",
		},
		{
			name: "untrusted peer's malformed forwarded host is ignored", proxy: untrustedPeer,
			host: "acme.example.com", xfh: "bad host%", want: "acme",
		},
		{
			name: "trusted proxy's forwarded host wins over host", proxy: trustedPeer,
			host: "acme.example.com", xfh: "globex.example.com", want: "globex",
		},
		{
			name: "trusted proxy's unknown forwarded host never falls back to a known host", proxy: trustedPeer,
			host: "acme.example.com", xfh: "unknown.example.com", wantErr: tenancy.ErrUnknownTenant,
		},
		{
			name: "trusted proxy's malformed forwarded host never falls back to a known host", proxy: trustedPeer,
			host: "acme.example.com", xfh: "acme.example.com/evil", wantErr: tenancy.ErrMalformed,
		},
	}
	for _, size := range resolvers {
		r := size.r
		for _, tt := range tests {
			t.Run(size.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				req := newRequest(tt.host, tt.xfh)
				if tt.xfhAgain != "" {
					req.Header.Add(fiber.HeaderXForwardedHost, tt.xfhAgain)
				}
				engine, err := resolve(t, tt.proxy, r, req)
				requireResult(t, tt.want, tt.wantErr, engine, err)
				if err != nil && tt.xfh != "" {
					require.NotContains(t, err.Error(), tt.xfh, "errors must not quote the client's host")
				}
			})
		}
	}
}

func TestByHostPanicsOnInvalidKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  string
	}{
		{name: "empty key", key: ""},
		{name: "key with a space", key: "acme example.com"},
		{name: "key with a path", key: "acme.example.com/app"},
		{name: "key with a bad port", key: "acme.example.com:http"},
		{name: "key in unicode", key: "bücher.example"},
		{name: "key over 253 bytes", key: strings.Repeat("a", 250) + ".com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.PanicsWithValue(t, fmt.Sprintf("tenancy: ByHost: invalid host %q", tt.key), func() {
				tenancy.ByHost(map[string]string{"acme.example.com": "acme", tt.key: "bad"})
			})
		})
	}
}

func TestByHostKeysThatNormalizeAlike(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		hosts     map[string]string
		wantPanic string // empty when ByHost must not panic
	}{
		{
			name:      "keys naming different engines panic",
			hosts:     map[string]string{"Acme.example.com": "a", "acme.example.com.": "b"},
			wantPanic: `tenancy: ByHost: hosts "Acme.example.com" and "acme.example.com." both normalize to "acme.example.com"`,
		},
		{
			name:      "keys differing only by port naming different engines panic",
			hosts:     map[string]string{"acme.example.com": "a", "acme.example.com:8443": "b", "globex.example.com": "globex"},
			wantPanic: `tenancy: ByHost: hosts "acme.example.com" and "acme.example.com:8443" both normalize to "acme.example.com"`,
		},
		{
			name:  "keys naming the same engine are accepted",
			hosts: map[string]string{"Acme.example.com": "acme", "acme.example.com.": "acme", "acme.example.com": "acme"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.wantPanic != "" {
				require.PanicsWithValue(t, tt.wantPanic, func() { tenancy.ByHost(tt.hosts) })
				return
			}
			var r tenancy.Resolver
			require.NotPanics(t, func() { r = tenancy.ByHost(tt.hosts) })
			engine, err := resolve(t, fiberDefaults, r, newRequest("ACME.example.com", ""))
			require.NoError(t, err)
			require.Equal(t, "acme", engine)
		})
	}
}

func TestBySubdomainPanicsOnInvalidBaseDomain(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, `tenancy: BySubdomain: invalid base domain "example .com"`, func() {
		tenancy.BySubdomain("example .com", []string{"acme"})
	})
}

// TestResolversReturnTheirOwnStrings proves the engine name is the string the
// resolver was built with, not a view of a Fiber buffer that the next request
// overwrites.
func TestResolversReturnTheirOwnStrings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(engine string) tenancy.Resolver
		req   func() *http.Request
	}{
		{
			name:  "by host returns the map's value",
			build: func(e string) tenancy.Resolver { return tenancy.ByHost(map[string]string{"acme.example.com": e}) },
			req:   func() *http.Request { return newRequest("acme.example.com", "") },
		},
		{
			name:  "by subdomain returns the engines element",
			build: func(e string) tenancy.Resolver { return tenancy.BySubdomain("example.com", []string{e}) },
			req:   func() *http.Request { return newRequest("acme.example.com", "") },
		},
		{
			name:  "by header returns the engines element",
			build: func(e string) tenancy.Resolver { return tenancy.ByHeader("X-Tenant", []string{e}) },
			req: func() *http.Request {
				req := newRequest("example.com", "")
				req.Header.Set("X-Tenant", "acme")
				return req
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			acme := strings.Clone("acme") // a string with its own backing array
			engine, err := resolve(t, fiberDefaults, tt.build(acme), tt.req())
			require.NoError(t, err)
			require.Equal(t, "acme", engine)
			require.Same(t, unsafe.StringData(acme), unsafe.StringData(engine))
		})
	}
}

func TestByHostCopiesItsMap(t *testing.T) {
	t.Parallel()
	hosts := map[string]string{"acme.example.com": "acme"}
	r := tenancy.ByHost(hosts)
	hosts["acme.example.com"] = "globex"
	hosts["globex.example.com"] = "globex"
	delete(hosts, "acme.example.com")

	tests := []struct {
		name    string
		host    string
		want    string
		wantErr error
	}{
		{name: "host deleted afterwards still routes", host: "acme.example.com", want: "acme"},
		{name: "host added afterwards stays unknown", host: "globex.example.com", wantErr: tenancy.ErrUnknownTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			engine, err := resolve(t, fiberDefaults, r, newRequest(tt.host, ""))
			requireResult(t, tt.want, tt.wantErr, engine, err)
		})
	}
}

func TestBySubdomain(t *testing.T) {
	t.Parallel()
	engines := []string{"acme", "globex", "Initech"}
	resolvers := sized(tenancy.BySubdomain("example.com", engines),
		tenancy.BySubdomain("example.com", append(slices.Clone(engines), fillers...)))
	tests := []struct {
		name      string
		proxy     proxy
		host, xfh string
		want      string
		wantErr   error
	}{
		{name: "tenant subdomain", host: "acme.example.com", want: "acme"},
		{name: "tenant subdomain with port", host: "globex.example.com:3000", want: "globex"},
		{name: "tenant subdomain with trailing dot", host: "acme.example.com.", want: "acme"},
		{
			name: "upper-case trusted forwarded host", proxy: trustedPeer,
			host: "globex.example.com", xfh: "ACME.Example.COM:8443", want: "acme",
		},
		{name: "mixed-case engine name matched in lower case", host: "initech.example.com", want: "Initech"},
		{name: "base domain itself", host: "example.com", wantErr: tenancy.ErrNoTenant},
		{name: "host outside the base domain", host: "other.org", wantErr: tenancy.ErrNoTenant},
		{name: "host that merely ends like the base domain", host: "acmeexample.com", wantErr: tenancy.ErrNoTenant},
		{name: "two labels under the base domain", host: "x.acme.example.com", wantErr: tenancy.ErrUnknownTenant},
		{name: "unknown label", host: "unknown.example.com", wantErr: tenancy.ErrUnknownTenant},
		{name: "default label when default is not an engine", host: "default.example.com", wantErr: tenancy.ErrUnknownTenant},
		{name: "malformed forwarded host", host: "acme.example.com", xfh: "acme.example.com?x", wantErr: tenancy.ErrMalformed},
	}
	for _, size := range resolvers {
		r := size.r
		for _, tt := range tests {
			t.Run(size.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				engine, err := resolve(t, tt.proxy, r, newRequest(tt.host, tt.xfh))
				requireResult(t, tt.want, tt.wantErr, engine, err)
			})
		}
	}
}

func TestByHeader(t *testing.T) {
	t.Parallel()
	long63 := strings.Repeat("t", tenancy.MaxHeaderLen)
	engines := []string{"acme", "globex", long63}
	resolvers := sized(tenancy.ByHeader("X-Tenant", engines),
		tenancy.ByHeader("X-Tenant", append(slices.Clone(engines), fillers...)))
	tests := []struct {
		name    string
		values  []string // each added as its own X-Tenant line; nil sends none
		want    string
		wantErr error
	}{
		{name: "known value", values: []string{"acme"}, want: "acme"},
		{name: "value of exactly 63 bytes", values: []string{long63}, want: long63},
		{name: "missing header", values: nil, wantErr: tenancy.ErrNoTenant},
		{name: "empty header", values: []string{""}, wantErr: tenancy.ErrNoTenant},
		{name: "unknown value", values: []string{"initech"}, wantErr: tenancy.ErrUnknownTenant},
		{name: "value compared case-sensitively", values: []string{"ACME"}, wantErr: tenancy.ErrUnknownTenant},
		{name: "repeated header", values: []string{"acme", "acme"}, wantErr: tenancy.ErrMalformed},
		{name: "repeated header naming two tenants", values: []string{"acme", "globex"}, wantErr: tenancy.ErrMalformed},
		{name: "repeated header whose first value is empty", values: []string{"", "acme"}, wantErr: tenancy.ErrMalformed},
		{name: "value over 63 bytes", values: []string{long63 + "t"}, wantErr: tenancy.ErrMalformed},
	}
	for _, size := range resolvers {
		r := size.r
		for _, tt := range tests {
			t.Run(size.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				req := newRequest("example.com", "")
				for _, v := range tt.values {
					req.Header.Add("X-Tenant", v)
				}
				engine, err := resolve(t, fiberDefaults, r, req)
				requireResult(t, tt.want, tt.wantErr, engine, err)
			})
		}
	}
}

// answer is what one fake resolver in a chain returns.
type answer struct {
	engine string
	err    error
}

func TestChain(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	malformed := fmt.Errorf("tenant header repeated: %w", tenancy.ErrMalformed)
	tests := []struct {
		name      string
		answers   []answer
		want      string
		wantErr   error
		wantCalls []int
	}{
		{
			name:      "first success wins",
			answers:   []answer{{engine: "acme"}, {engine: "globex"}},
			want:      "acme",
			wantCalls: []int{1, 0},
		},
		{
			name:      "no tenant passes on to the next resolver",
			answers:   []answer{{err: tenancy.ErrNoTenant}, {engine: "globex"}},
			want:      "globex",
			wantCalls: []int{1, 1},
		},
		{
			name:      "unknown tenant passes on to the next resolver",
			answers:   []answer{{err: tenancy.ErrUnknownTenant}, {engine: "globex"}},
			want:      "globex",
			wantCalls: []int{1, 1},
		},
		{
			name:      "wrapped unknown tenant passes on to the next resolver",
			answers:   []answer{{err: fmt.Errorf("host: %w", tenancy.ErrUnknownTenant)}, {engine: "globex"}},
			want:      "globex",
			wantCalls: []int{1, 1},
		},
		{
			name:      "malformed stops the chain",
			answers:   []answer{{err: tenancy.ErrNoTenant}, {err: malformed}, {engine: "globex"}},
			wantErr:   malformed,
			wantCalls: []int{1, 1, 0},
		},
		{
			name:      "any other error stops the chain",
			answers:   []answer{{err: errBoom}, {engine: "globex"}},
			wantErr:   errBoom,
			wantCalls: []int{1, 0},
		},
		{
			name:      "nobody answers and one said unknown",
			answers:   []answer{{err: tenancy.ErrNoTenant}, {err: tenancy.ErrUnknownTenant}, {err: tenancy.ErrNoTenant}},
			wantErr:   tenancy.ErrUnknownTenant,
			wantCalls: []int{1, 1, 1},
		},
		{
			name:      "nobody answers and none said unknown",
			answers:   []answer{{err: tenancy.ErrNoTenant}, {err: tenancy.ErrNoTenant}},
			wantErr:   tenancy.ErrNoTenant,
			wantCalls: []int{1, 1},
		},
		{
			name:      "empty chain",
			answers:   nil,
			wantErr:   tenancy.ErrNoTenant,
			wantCalls: []int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := make([]int, len(tt.answers))
			resolvers := make([]tenancy.Resolver, len(tt.answers))
			for i, a := range tt.answers {
				resolvers[i] = func(*fiber.Ctx) (string, error) {
					calls[i]++ // read only after app.Test has returned
					return a.engine, a.err
				}
			}
			engine, err := resolve(t, fiberDefaults, tenancy.Chain(resolvers...), newRequest("example.com", ""))
			requireResult(t, tt.want, tt.wantErr, engine, err)
			if tt.wantErr != nil {
				require.Equal(t, tt.wantErr.Error(), err.Error(), "the stopping error is returned as is")
			}
			require.Equal(t, tt.wantCalls, calls)
		})
	}
}

func TestChainCopiesItsArguments(t *testing.T) {
	t.Parallel()
	rs := []tenancy.Resolver{tenancy.Fixed("acme")}
	r := tenancy.Chain(rs...)
	rs[0] = tenancy.Fixed("globex")
	engine, err := resolve(t, fiberDefaults, r, newRequest("example.com", ""))
	require.NoError(t, err)
	require.Equal(t, "acme", engine)
}

// loadConfig builds a *config.Config the way an app does: nested maps loaded
// into koanf, then config.Load.
func loadConfig(t *testing.T, raw map[string]any, opts ...config.Options) *config.Config {
	t.Helper()
	k := koanf.New(".")
	require.NoError(t, k.Load(confmap.Provider(raw, ""), nil))
	conf, err := config.Load(k, opts...)
	require.NoError(t, err)
	return conf
}

func dsn(db string) string { return "postgres://fiberdb@localhost:5432/" + db }

func TestFromConfig(t *testing.T) {
	t.Parallel()
	routed := loadConfig(t, map[string]any{
		"SQLALCHEMY_ENGINES": map[string]any{
			"default": map[string]any{"url": dsn("default"), "hosts": []any{"admin.example.com"}},
			"acme":    map[string]any{"url": dsn("acme"), "hosts": []any{"acme.example.com", "acme.test"}},
			"globex":  dsn("globex"),
			"initech": dsn("initech"),
		},
		"FIBERDB": map[string]any{
			"base_domain":   "example.com",
			"tenant_header": "X-Tenant",
		},
	})
	require.Equal(t, []string{"acme", "globex", "initech"}, routed.Tenants)
	subAndHeader := loadConfig(t, map[string]any{
		"SQLALCHEMY_ENGINES": map[string]any{"default": dsn("default"), "acme": dsn("acme")},
		"FIBERDB":            map[string]any{"base_domain": "example.com", "tenant_header": "X-Tenant"},
	})
	unrouted := loadConfig(t, map[string]any{
		"SQLALCHEMY_ENGINES": map[string]any{"default": dsn("default"), "acme": dsn("acme")},
	})
	noDefault := loadConfig(t, map[string]any{
		"SQLALCHEMY_ENGINES": map[string]any{"acme": dsn("acme")},
	}, config.Options{AllowEmpty: true})
	headerOnly := loadConfig(t, map[string]any{
		"SQLALCHEMY_ENGINES": map[string]any{"default": dsn("default"), "acme": dsn("acme")},
		"FIBERDB":            map[string]any{"tenant_header": "X-Tenant", "tenants": []any{"default", "acme"}},
	})

	tests := []struct {
		name      string
		conf      *config.Config
		host, xfh string
		tenant    string // X-Tenant value; empty sends none
		want      string
		wantErr   error
	}{
		{name: "listed host", conf: routed, host: "acme.test", want: "acme"},
		{name: "host rule before header", conf: routed, host: "acme.example.com", tenant: "globex", want: "acme"},
		{name: "subdomain", conf: routed, host: "globex.example.com", want: "globex"},
		{name: "subdomain rule before header", conf: routed, host: "globex.example.com", tenant: "initech", want: "globex"},
		{name: "header outside the base domain", conf: routed, host: "api.other.org", tenant: "initech", want: "initech"},
		{name: "header after an unknown subdomain", conf: routed, host: "unknown.example.com", tenant: "initech", want: "initech"},
		{name: "default reachable through a host it lists", conf: routed, host: "admin.example.com", want: "default"},
		{name: "default not reachable by subdomain", conf: routed, host: "default.example.com", wantErr: tenancy.ErrUnknownTenant},
		{name: "default not reachable by header", conf: routed, host: "api.other.org", tenant: "default", wantErr: tenancy.ErrUnknownTenant},
		{name: "unknown subdomain and no header", conf: routed, host: "unknown.example.com", wantErr: tenancy.ErrUnknownTenant},
		{name: "unknown header value", conf: routed, host: "api.other.org", tenant: "ACME", wantErr: tenancy.ErrUnknownTenant},
		{name: "unlisted host is unknown once hosts are configured", conf: routed, host: "api.other.org", wantErr: tenancy.ErrUnknownTenant},
		{name: "no tenant anywhere without hosts", conf: subAndHeader, host: "api.other.org", wantErr: tenancy.ErrNoTenant},
		{name: "header outside the base domain without hosts", conf: subAndHeader, host: "api.other.org", tenant: "acme", want: "acme"},
		{
			name: "malformed host stops before the header", conf: routed,
			host: "api.other.org", xfh: "bad host", tenant: "initech", wantErr: tenancy.ErrMalformed,
		},
		{name: "no routing sends a tenant host to default", conf: unrouted, host: "acme.example.com", want: "default"},
		{name: "no routing ignores a tenant header", conf: unrouted, host: "example.com", tenant: "acme", want: "default"},
		{name: "no routing and no default engine", conf: noDefault, host: "acme.example.com", tenant: "acme", wantErr: tenancy.ErrNoTenant},
		{name: "header alone", conf: headerOnly, host: "acme.example.com", tenant: "acme", want: "acme"},
		{name: "default reachable by header when tenants list it", conf: headerOnly, host: "example.com", tenant: "default", want: "default"},
		{name: "header alone and missing", conf: headerOnly, host: "acme.example.com", wantErr: tenancy.ErrNoTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := newRequest(tt.host, tt.xfh)
			if tt.tenant != "" {
				req.Header.Set("X-Tenant", tt.tenant)
			}
			engine, err := resolve(t, fiberDefaults, tenancy.FromConfig(tt.conf), req)
			requireResult(t, tt.want, tt.wantErr, engine, err)
		})
	}
}

// hitCtx returns a Ctx for a request to host carrying the given headers (name,
// value pairs), released when tb ends.
func hitCtx(tb testing.TB, host string, headers ...string) *fiber.Ctx {
	tb.Helper()
	app := fiber.New()
	fctx := &fasthttp.RequestCtx{}
	fctx.Request.Header.SetHost(host)
	for i := 0; i+1 < len(headers); i += 2 {
		fctx.Request.Header.Set(headers[i], headers[i+1])
	}
	c := app.AcquireCtx(fctx)
	tb.Cleanup(func() { app.ReleaseCtx(c) })
	return c
}

// TestByHostAllocs is not parallel: AllocsPerRun counts every goroutine's
// allocations, so it must not overlap other tests. Top-level parallel tests
// wait until it has finished.
func TestByHostAllocs(t *testing.T) {
	tests := []struct {
		name string
		r    tenancy.Resolver
		c    *fiber.Ctx
		want string
	}{
		{
			name: "by host hit on a lower-case host",
			r:    tenancy.ByHost(map[string]string{"acme.example.com": "acme"}),
			c:    hitCtx(t, "acme.example.com:3000"),
			want: "acme",
		},
		{
			name: "by host hit on a request read off the wire",
			r:    tenancy.ByHost(map[string]string{"acme.example.com": "acme"}),
			c:    rawCtx(t, "GET http://acme.example.com/todos HTTP/1.1\r\nUser-Agent: x\r\nHost: acme.example.com\r\nAccept: */*\r\n\r\n"),
			want: "acme",
		},
		{
			name: "by host hit on a forwarded host",
			r:    tenancy.ByHost(map[string]string{"acme.example.com": "acme"}),
			c:    hitCtx(t, "other.example.com", fiber.HeaderXForwardedHost, "acme.example.com"),
			want: "acme",
		},
		{
			name: "by subdomain hit on a lower-case host",
			r:    tenancy.BySubdomain("example.com", []string{"acme"}),
			c:    hitCtx(t, "acme.example.com"),
			want: "acme",
		},
		{
			name: "by header hit",
			r:    tenancy.ByHeader("X-Tenant", []string{"acme"}),
			c:    hitCtx(t, "example.com", "X-Tenant", "acme"),
			want: "acme",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				engine string
				err    error
			)
			allocs := testing.AllocsPerRun(100, func() { engine, err = tt.r(tt.c) })
			require.NoError(t, err)
			require.Equal(t, tt.want, engine)
			require.Zero(t, allocs)
		})
	}
}

// BenchmarkByHost shows the lookup does not grow with the number of tenants
// and allocates nothing for a lower-case host.
func BenchmarkByHost(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(strconv.Itoa(n)+" hosts", func(b *testing.B) {
			hosts := make(map[string]string, n)
			for i := range n {
				hosts["tenant"+strconv.Itoa(i)+".example.com"] = "tenant" + strconv.Itoa(i)
			}
			r := tenancy.ByHost(hosts)
			c := hitCtx(b, "tenant7.example.com")
			b.ReportAllocs()
			for b.Loop() {
				engine, err := r(c)
				if err != nil || engine != "tenant7" {
					b.Fatalf("got %q, %v", engine, err)
				}
			}
		})
	}
}

// fillers are engine names that pad a resolver past the size at which it
// stops scanning its names and hashes them instead, so that tests run both
// lookups.
var fillers = func() []string {
	names := make([]string, 20)
	for i := range names {
		names[i] = "filler" + strconv.Itoa(i)
	}
	return names
}()

type sizedResolver struct {
	name string
	r    tenancy.Resolver
}

func sized(small, large tenancy.Resolver) []sizedResolver {
	return []sizedResolver{{"few names", small}, {"many names", large}}
}
