package fiberdb

import "maps"

// sharing is an engine's keys pool, search_path and settings: Apply keeps
// an engine only while all of it is the same, a shared-pool tenant's target
// engine included. target is nil for an engine with a pool of its own.
type sharing struct {
	target     *engine
	searchPath string
	settings   map[string]string
}

func (s sharing) equal(o sharing) bool {
	return s.target == o.target && s.searchPath == o.searchPath && maps.Equal(s.settings, o.settings)
}
