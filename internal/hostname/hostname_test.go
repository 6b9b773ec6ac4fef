package hostname_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/internal/hostname"
)

func TestNormalize(t *testing.T) {
	t.Parallel()

	long253 := strings.Repeat("a", 61) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63)
	require.Len(t, long253, 253)

	tests := []struct {
		name string
		in   string
		want string // "" means Normalize must fail
	}{
		{name: "lower-case name is kept", in: "acme.example.com", want: "acme.example.com"},
		{name: "upper-case ASCII is lowered", in: "ACME.Example.COM", want: "acme.example.com"},
		{name: "digits hyphens and underscores are kept", in: "a-1_b.example.com", want: "a-1_b.example.com"},
		{name: "single label", in: "localhost", want: "localhost"},
		{name: "port is stripped", in: "host:8080", want: "host"},
		{name: "upper-case name with port", in: "ACME.localhost:3000", want: "acme.localhost"},
		{name: "highest port is accepted", in: "host:65535", want: "host"},
		{name: "ipv4 with port", in: "1.2.3.4:80", want: "1.2.3.4"},
		{name: "bracketed ipv6 with port", in: "[::1]:8080", want: "::1"},
		{name: "bracketed ipv6 without port", in: "[::1]", want: "::1"},
		{name: "bare ipv6 is kept whole", in: "::1", want: "::1"},
		{name: "upper-case ipv6 is lowered", in: "[FE80::1]:443", want: "fe80::1"},
		{name: "trailing dot is trimmed", in: "acme.example.com.", want: "acme.example.com"},
		{name: "trailing dot before a port is trimmed", in: "acme.example.com.:80", want: "acme.example.com"},
		{name: "exactly 253 bytes", in: long253, want: long253},
		{name: "253 bytes and a trailing dot", in: long253 + ".", want: long253},
		{name: "253 bytes and a port", in: long253 + ":80", want: long253},

		{name: "empty host", in: ""},
		{name: "lone dot", in: "."},
		{name: "two trailing dots", in: "a.com.."},
		{name: "leading dot", in: ".a.com"},
		{name: "empty label", in: "a..com"},
		{name: "port without host", in: ":80"},
		{name: "colon without port", in: "host:"},
		{name: "port out of range", in: "host:99999"},
		{name: "port of six digits", in: "host:008080"},
		{name: "port that is not a number", in: "host:abc"},
		{name: "negative port", in: "host:-1"},
		{name: "space inside", in: "acme example.com"},
		{name: "leading space", in: " acme.com"},
		{name: "tab", in: "acme\t.com"},
		{name: "NUL byte", in: "acme\x00.com"},
		{name: "slash", in: "acme.com/x"},
		{name: "question mark", in: "acme.com?x"},
		{name: "percent", in: "acme%2ecom"},
		{name: "hash", in: "acme.com#x"},
		{name: "at sign", in: "user@acme.com"},
		{name: "backslash", in: `acme\.com`},
		{name: "kelvin sign is not folded to k", in: "\u212Aacme.com"},
		{name: "latin-1 byte", in: "caf\xe9.com"},
		{name: "utf-8 letter", in: "café.com"},
		{name: "254 bytes", in: long253 + "e"},
		{name: "far too long", in: strings.Repeat("a", 1000)},
		{name: "unclosed bracket", in: "[::1"},
		{name: "bracket without colon", in: "[acme.com]"},
		{name: "empty brackets", in: "[]"},
		{name: "bracket followed by junk", in: "[::1]x"},
		{name: "bracket with bad port", in: "[::1]:99999"},
		{name: "bracket with empty port", in: "[::1]:"},
		{name: "bracketed host and port", in: "[a:1]"},
		{name: "bracketed single colon", in: "[:]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := hostname.Normalize(tt.in)
			if tt.want == "" {
				require.ErrorIs(t, err, hostname.ErrInvalid)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestNormalizeAllocs is not parallel: testing.AllocsPerRun panics in a
// parallel test, whose neighbours' allocations it would count.
func TestNormalizeAllocs(t *testing.T) {
	var (
		got string
		err error
	)
	allocs := testing.AllocsPerRun(100, func() {
		got, err = hostname.Normalize("acme.example.com:3000")
	})
	require.NoError(t, err)
	require.Equal(t, "acme.example.com", got)
	require.Zero(t, allocs)
}

func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{
		"", ".", "acme.example.com", "ACME.Example.COM.", "host:8080", "host:", ":80",
		"[::1]:8080", "[::1]", "::1", "[::1", "[a:1]", "1.2.3.4:80", "a.com..", "a..b",
		"\u212Aacme.com", "acme.com/x", "user@host", strings.Repeat("a", 254),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := hostname.Normalize(in)
		if err != nil {
			require.ErrorIs(t, err, hostname.ErrInvalid)
			require.Empty(t, out)
			return
		}
		require.NotEmpty(t, out)
		require.LessOrEqual(t, len(out), hostname.MaxLen)
		for i := range len(out) {
			c := out[i]
			require.Less(t, c, byte(0x80), "non-ASCII byte in %q", out)
			require.False(t, 'A' <= c && c <= 'Z', "upper-case byte in %q", out)
		}
		require.NotContains(t, out, "[")
		require.NotEqual(t, 1, strings.Count(out, ":"), "%q looks like host:port", out)
		require.False(t, strings.HasSuffix(out, "."), "%q has a trailing dot", out)

		again, err := hostname.Normalize(out)
		require.NoError(t, err, "Normalize(%q) = %q is not accepted again", in, out)
		require.Equal(t, out, again, "Normalize is not idempotent on %q", in)
	})
}
