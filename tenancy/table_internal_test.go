package tenancy

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTable(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, scanLimit, scanLimit + 1, 100, 10_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			m := make(map[string]string, n)
			for i := range n {
				m["t"+strconv.Itoa(i)+".example.com"] = "t" + strconv.Itoa(i)
			}
			tab := newTable(m)
			for k, v := range m {
				got, ok := tab.get(k)
				require.True(t, ok, k)
				require.Equal(t, v, got)
			}
			for _, miss := range []string{"", "t.example.com", "t" + strconv.Itoa(n) + ".example.com", "T0.example.com"} {
				got, ok := tab.get(miss)
				require.False(t, ok, miss)
				require.Empty(t, got)
			}
		})
	}
}
