package tenancy

import "hash/maphash"

// scanLimit is the most entries a table scans rather than hashes.
const scanLimit = 8

// table maps the names a request can carry (hosts, subdomain labels, header
// values) to engine names. Lookups run on every request. For a handful of
// entries a scan, which compares lengths before bytes, beats hashing the key.
// Past scanLimit it is an open-addressed hash table that is at most half
// full: a lookup hashes the key once and almost always compares one slot,
// however many tenants are configured. (A Go map of 10,000 entries adds a
// directory level that one of 10 does not, which measurably costs.)
type table struct {
	keys, vals []string // only when there are at most scanLimit entries

	seed  maphash.Seed
	mask  uint64
	slots []slot // len is a power of two, at least twice the entries
}

// slot is one entry: its key's hash, compared before the key, so that a
// probe past another entry rarely compares strings. key "" marks it empty.
type slot struct {
	hash     uint64
	key, val string
}

func newTable(m map[string]string) table {
	var t table
	if len(m) <= scanLimit {
		for k, v := range m {
			t.keys = append(t.keys, k)
			t.vals = append(t.vals, v)
		}
		return t
	}
	size := uint64(1)
	for size < 2*uint64(len(m)) {
		size *= 2
	}
	t.seed, t.mask, t.slots = maphash.MakeSeed(), size-1, make([]slot, size)
	for k, v := range m {
		if k == "" {
			continue // no request name is empty: resolvers answer ErrNoTenant first
		}
		h := maphash.String(t.seed, k)
		i := h & t.mask
		for t.slots[i].key != "" {
			i = (i + 1) & t.mask
		}
		t.slots[i] = slot{hash: h, key: k, val: v}
	}
	return t
}

// get returns the engine for key. key may point into a reused request
// buffer: the engine returned is always the table's own string.
func (t *table) get(key string) (string, bool) {
	if t.slots == nil {
		for i, k := range t.keys {
			if k == key {
				return t.vals[i], true
			}
		}
		return "", false
	}
	if key == "" {
		return "", false
	}
	h := maphash.String(t.seed, key)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.hash == h && s.key == key {
			return s.val, true
		}
		if s.key == "" {
			return "", false
		}
	}
}
