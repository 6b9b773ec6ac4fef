package fiberdb

import (
	"strconv"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/internal/lookup"
	"github.com/fiberdb/fiberdb/tenancy"
)

// registry is one snapshot of an [Engines]' configuration: the engines a
// request resolves and looks up against. It is immutable; [Engines.Apply]
// replaces it whole, so a request that loaded one sees one config, never a
// mix of two.
type registry struct {
	conf    *config.Config // fiberdb's own copy; never handed out
	names   []string
	engines lookup.Table[*engine]
	byName  map[string]*engine // the same engines, for iteration

	// resolver routes by conf (tenancy.FromConfig), for every middleware
	// built without a Resolver of its own.
	resolver tenancy.Resolver
}

func newRegistry(conf *config.Config, engines map[string]*engine) *registry {
	return &registry{
		conf:     conf,
		names:    conf.Names(),
		engines:  lookup.New(engines),
		byName:   engines,
		resolver: tenancy.FromConfig(conf),
	}
}

func (r *registry) get(name string) (*engine, bool) { return r.engines.Get(name) }

// notDefined is the error for a name r does not hold.
func (r *registry) notDefined(name string) error {
	return &config.KeyError{
		Key:    r.conf.Key + "[" + strconv.Quote(name) + "]",
		Reason: "was not defined",
		Err:    ErrEngineNotDefined,
	}
}
