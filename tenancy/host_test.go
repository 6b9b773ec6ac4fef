package tenancy_test

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fiberdb/fiberdb/tenancy"
)

// rawCtx returns a Ctx for raw, parsed by fasthttp as its server parses a
// request off the wire, so that its raw header lines are kept.
func rawCtx(tb testing.TB, raw string) *fiber.Ctx {
	tb.Helper()
	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true})
	fctx := &fasthttp.RequestCtx{}
	require.NoError(tb, fctx.Request.Read(bufio.NewReader(strings.NewReader(raw))))
	c := app.AcquireCtx(fctx)
	tb.Cleanup(func() { app.ReleaseCtx(c) })
	return c
}

// Issue 12: fasthttp strips user info from the host and keeps the last of
// several Host lines, so without reading the raw request these resolved.
func TestByHostRefusesWhatFasthttpRepairs(t *testing.T) {
	t.Parallel()
	byHost := tenancy.ByHost(map[string]string{"t0.test": "t0", "t1.test": "t1"})
	bySubdomain := tenancy.BySubdomain("test", []string{"t0", "t1"})
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr error
	}{
		{name: "a plain host", raw: "GET / HTTP/1.1\r\nHost: t0.test\r\n\r\n", want: "t0"},
		{name: "an absolute target", raw: "GET http://t0.test/x HTTP/1.1\r\nHost: t0.test\r\n\r\n", want: "t0"},
		{name: "other headers that start like host", raw: "GET / HTTP/1.1\r\nHost: t0.test\r\nHostname: x\r\nX-Host: y\r\n\r\n", want: "t0"},
		{name: "user info in the host", raw: "GET / HTTP/1.1\r\nHost: evil@t0.test\r\n\r\n", wantErr: tenancy.ErrMalformed},
		{name: "user and password in the host", raw: "GET / HTTP/1.1\r\nHost: u:p@t0.test:80\r\n\r\n", wantErr: tenancy.ErrMalformed},
		{
			name:    "user info in an absolute target",
			raw:     "GET http://evil@t0.test/x HTTP/1.1\r\nHost: t0.test\r\n\r\n",
			wantErr: tenancy.ErrMalformed,
		},
		{name: "an at sign in the path is fine", raw: "GET http://t0.test/@me HTTP/1.1\r\nHost: t0.test\r\n\r\n", want: "t0"},
		{name: "two host lines", raw: "GET / HTTP/1.1\r\nHost: t1.test\r\nHost: t0.test\r\n\r\n", wantErr: tenancy.ErrMalformed},
		{name: "two host lines naming one host", raw: "GET / HTTP/1.1\r\nHost: t0.test\r\nHost: t0.test\r\n\r\n", wantErr: tenancy.ErrMalformed},
		{name: "two host lines in other cases", raw: "GET / HTTP/1.1\r\nhost: t1.test\r\nHOST: t0.test\r\n\r\n", wantErr: tenancy.ErrMalformed},
		{name: "two host lines with bare line feeds", raw: "GET / HTTP/1.1\nHost: t1.test\nHost: t0.test\n\n", wantErr: tenancy.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range []tenancy.Resolver{byHost, bySubdomain} {
				engine, err := r(rawCtx(t, tt.raw))
				requireResult(t, tt.want, tt.wantErr, engine, err)
				if err != nil {
					require.NotContains(t, err.Error(), "evil", "errors must not quote the client's host")
				}
			}
		})
	}
}

// The same requests over a real connection, through Fiber's server: the
// first line of each answer is what a client sees.
func TestByHostOverTheWire(t *testing.T) {
	t.Parallel()
	r := tenancy.ByHost(map[string]string{"t0.test": "t0"})
	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true, DisableStartupMessage: true})
	app.Use(func(c *fiber.Ctx) error {
		engine, err := r(c)
		switch {
		case errors.Is(err, tenancy.ErrMalformed):
			return c.SendStatus(fiber.StatusBadRequest)
		case err != nil:
			return c.SendStatus(fiber.StatusNotFound)
		}
		return c.SendString(engine)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	t.Cleanup(func() {
		require.NoError(t, app.Shutdown())
		require.NoError(t, <-served)
	})

	for raw, want := range map[string]string{
		"GET / HTTP/1.1\r\nHost: t0.test\r\nConnection: close\r\n\r\n":                    "HTTP/1.1 200 OK\r\n",
		"GET / HTTP/1.1\r\nHost: evil@t0.test\r\nConnection: close\r\n\r\n":               "HTTP/1.1 400 Bad Request\r\n",
		"GET / HTTP/1.1\r\nHost: x.test\r\nHost: t0.test\r\nConnection: close\r\n\r\n":    "HTTP/1.1 400 Bad Request\r\n",
		"GET http://evil@t0.test/ HTTP/1.1\r\nHost: t0.test\r\nConnection: close\r\n\r\n": "HTTP/1.1 400 Bad Request\r\n",
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		_, err = conn.Write([]byte(raw))
		require.NoError(t, err)
		line, err := bufio.NewReader(conn).ReadString('\n')
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		require.Equal(t, want, line, "%q", raw)
	}
}
