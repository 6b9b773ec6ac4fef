package fiberdb

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// connSet is every connection an engine's pool has open, so that Close can
// stop those still acquired when its grace period ends. It is kept per
// connection (connect and close), never per request.
type connSet struct {
	mu    sync.Mutex
	conns map[*pgx.Conn]struct{}
}

// track makes pc's pool record its connections in s, after any AfterConnect
// and before any BeforeClose already set.
func (s *connSet) track(pc *pgxpool.Config) {
	afterConnect, beforeClose := pc.AfterConnect, pc.BeforeClose
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if afterConnect != nil {
			if err := afterConnect(ctx, c); err != nil {
				return err
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conns == nil {
			s.conns = map[*pgx.Conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		return nil
	}
	pc.BeforeClose = func(c *pgx.Conn) {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if beforeClose != nil {
			beforeClose(c)
		}
	}
}

// expire makes every read and write on s's connections fail from now on,
// the statements in progress included: their holders get a timeout error
// at once, and pgconn closes each connection.
func (s *connSet) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for c := range s.conns {
		_ = c.PgConn().Conn().SetDeadline(now) //nolint:errcheck // fails only on a socket already closed
	}
}
