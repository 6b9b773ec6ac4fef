package config

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// Review of direct_url: an option that did not apply made loadDirect return
// neither a configuration nor an error, so DirectConfig fell back to the url,
// which may be PgBouncer's. Load's own tests cannot see it: loadOwnPool
// reports the same option at the same key.
func TestLoadDirectReportsAnOptionThatDoesNotApply(t *testing.T) {
	t.Parallel()
	entry := map[string]any{"pool_max_conns": 0, "connect_timeout": "1ms", "statement_cache_capacity": 5}
	pc, errs := loadDirect(`E["saas"]`, "postgres://app@db/saas", entry, nil)
	require.Nil(t, pc)
	require.EqualError(t, errors.Join(errs...), `'E["saas"]["connect_timeout"]' must be 0 (off) or at least 100ms.`+"\n"+
		`'E["saas"]["pool_max_conns"]' must be between 1 and 10000.`, "every option, in key order")
	for _, err := range errs {
		require.ErrorIs(t, err, ErrInvalidOption)
	}
}
