package tenancy

// scanLimit is the most entries a table scans rather than hashes.
const scanLimit = 8

// table maps the names a request can carry (hosts, subdomain labels, header
// values) to engine names. Lookups run on every request. For a handful of
// entries a scan, which compares lengths before bytes, beats hashing the key;
// past scanLimit the map does, and keeps the cost flat however many tenants
// are configured.
type table struct {
	keys, vals []string // only when there are at most scanLimit entries
	m          map[string]string
}

func newTable(m map[string]string) table {
	t := table{m: m}
	if len(m) <= scanLimit {
		for k, v := range m {
			t.keys = append(t.keys, k)
			t.vals = append(t.vals, v)
		}
	}
	return t
}

// get returns the engine for key. key may point into a reused request
// buffer: the engine returned is always the table's own string.
func (t *table) get(key string) (string, bool) {
	if t.keys != nil {
		for i, k := range t.keys {
			if k == key {
				return t.vals[i], true
			}
		}
		return "", false
	}
	engine, ok := t.m[key]
	return engine, ok
}
