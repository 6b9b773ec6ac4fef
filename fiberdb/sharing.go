package fiberdb

import "maps"

// sharing is what makes a shared-pool tenant (engine keys pool, search_path
// and settings): Apply keeps the tenant's engine only while all of it is the
// same, its target engine included. Its zero value is an engine with a pool
// of its own.
type sharing struct {
	target     *engine
	searchPath string
	settings   map[string]string
}

func (s sharing) equal(o sharing) bool {
	return s.target == o.target && s.searchPath == o.searchPath && maps.Equal(s.settings, o.settings)
}
