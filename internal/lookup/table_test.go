package lookup_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/internal/lookup"
)

func TestTable(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, lookup.ScanLimit, lookup.ScanLimit + 1, 100, 10_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			m := make(map[string]string, n)
			for i := range n {
				m["t"+strconv.Itoa(i)+".example.com"] = "t" + strconv.Itoa(i)
			}
			tab := lookup.New(m)
			for k, v := range m {
				got, ok := tab.Get(k)
				require.True(t, ok, k)
				require.Equal(t, v, got)
			}
			for _, miss := range []string{"", "t.example.com", "t" + strconv.Itoa(n) + ".example.com", "T0.example.com"} {
				got, ok := tab.Get(miss)
				require.False(t, ok, miss)
				require.Empty(t, got)
			}
		})
	}
}

// The empty key is never found, whatever the table's size.
func TestTableEmptyKey(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, lookup.ScanLimit + 1} {
		m := map[string]int{"": 1}
		for i := range n {
			m[strconv.Itoa(i)] = i
		}
		tab := lookup.New(m)
		_, ok := tab.Get("")
		require.False(t, ok, n)
	}
}

// A table of pointers, as fiberdb keeps its engines in.
func TestTablePointers(t *testing.T) {
	t.Parallel()
	one, two := new(int), new(int)
	tab := lookup.New(map[string]*int{"one": one, "two": two})
	got, ok := tab.Get("two")
	require.True(t, ok)
	require.Same(t, two, got)
	got, ok = tab.Get("three")
	require.False(t, ok)
	require.Nil(t, got)
}
