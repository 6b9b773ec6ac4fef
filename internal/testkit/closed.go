package testkit

import (
	"net"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// ClosedURL returns the URL dsn with its host and port replaced by a
// loopback port whose listener closes every connection as soon as it
// accepts it: a url that every connect fails on, for tests proving that code
// connects through another one. The listener stays open until t's cleanup,
// so that no other test can take the port meanwhile, as it could a port
// merely closed.
func ClosedURL(t *testing.T, dsn string) string {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, aerr := l.Accept()
			if aerr != nil {
				return // closed by the cleanup
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	addr, ok := l.Addr().(*net.TCPAddr)
	require.True(t, ok)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))
	return u.String()
}
