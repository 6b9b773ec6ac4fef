package testkit

import (
	"net"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// ClosedURL returns the URL dsn with its host and port replaced by a
// loopback port that nothing listens on: a url that refuses every
// connection, for tests proving that code connects through another one.
func ClosedURL(t *testing.T, dsn string) string {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr, ok := l.Addr().(*net.TCPAddr)
	require.True(t, ok)
	require.NoError(t, l.Close())
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))
	return u.String()
}
