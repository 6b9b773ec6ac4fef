// Package lookup is the table fiberdb finds a request's tenant in: host
// names, subdomain labels and header values in tenancy, engine names in
// fiberdb. Lookups run on every request, and the key is often a view of a
// reused request buffer: a value returned is always the table's own.
package lookup

import "hash/maphash"

// ScanLimit is the most entries a table scans rather than hashes.
const ScanLimit = 8

// Table maps names to values. For a handful of entries a scan, which
// compares lengths before bytes (and pointers before bytes, for a key that
// is the table's own string), beats hashing the key. Past ScanLimit it is an
// open-addressed hash table that is at most half full: a lookup hashes the
// key once and almost always compares one slot, however many names it
// holds. (A Go map of 10,000 entries adds a directory level that one of 10
// does not, which measurably costs.)
//
// A Table is immutable once built and safe for concurrent lookups. The zero
// Table is empty.
type Table[V any] struct {
	keys []string // only when there are at most ScanLimit entries
	vals []V

	seed  maphash.Seed
	mask  uint64
	slots []slot[V] // len is a power of two, at least twice the entries
}

// slot is one entry: its key's hash, compared before the key, so that a
// probe past another entry rarely compares strings. key "" marks it empty.
type slot[V any] struct {
	hash uint64
	key  string
	val  V
}

// New returns a table of m. The empty key is never found: no request
// carries an empty name (resolvers answer "no tenant" first).
func New[V any](m map[string]V) Table[V] {
	var t Table[V]
	if len(m) <= ScanLimit {
		for k, v := range m {
			if k != "" {
				t.keys = append(t.keys, k)
				t.vals = append(t.vals, v)
			}
		}
		return t
	}
	size := uint64(1)
	for size < 2*uint64(len(m)) {
		size *= 2
	}
	t.seed, t.mask, t.slots = maphash.MakeSeed(), size-1, make([]slot[V], size)
	for k, v := range m {
		if k == "" {
			continue
		}
		h := maphash.String(t.seed, k)
		i := h & t.mask
		for t.slots[i].key != "" {
			i = (i + 1) & t.mask
		}
		t.slots[i] = slot[V]{hash: h, key: k, val: v}
	}
	return t
}

// Get returns the value for key. key may point into a reused buffer.
func (t *Table[V]) Get(key string) (V, bool) {
	if t.slots == nil {
		for i, k := range t.keys {
			if k == key {
				return t.vals[i], true
			}
		}
		var zero V
		return zero, false
	}
	var zero V
	if key == "" {
		return zero, false
	}
	h := maphash.String(t.seed, key)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.hash == h && s.key == key {
			return s.val, true
		}
		if s.key == "" {
			return zero, false
		}
	}
}
