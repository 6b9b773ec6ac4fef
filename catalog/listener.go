package catalog

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// Listener tells its caller that the catalog may have changed: on every
// notification on its channel, and on every (re)connect, because
// notifications sent while it was disconnected are lost. It keeps one
// dedicated connection, opened with Connect, and reconnects after any
// error. It is built on jackc/pgxlisten.
//
// A Listener holds no state of its own and may be copied before use; each
// [Listener.Listen] call has its own connection.
type Listener struct {
	// Connect opens a connection to the landlord database for the
	// Listener's use only; the Listener closes it. It must reach PostgreSQL
	// directly or through PgBouncer in session mode: transaction mode loses
	// LISTEN.
	//
	// Required.
	Connect func(ctx context.Context) (*pgx.Conn, error)

	// Channel is the channel to LISTEN on.
	//
	// Optional. Default: "fiberdb_tenants" ([Channel])
	Channel string

	// ReconnectDelay is how long Listen waits after it failed to connect
	// or lost its connection, before connecting again.
	//
	// Optional. Default: 1s
	ReconnectDelay time.Duration

	// Logger receives connection errors as warnings. A password never
	// appears in them: pgx leaves it out of its errors.
	//
	// Optional. Default: slog.Default()
	Logger *slog.Logger
}

// Listen connects, LISTENs, and calls changed after every successful LISTEN
// and on every notification, until ctx is done; then it closes its
// connection and returns nil. changed runs on Listen's goroutine, one call
// at a time, and must return quickly: a notification waits for it.
//
// The only other error is [ErrListenerConfig]: a lost or refused connection is
// logged and retried after ReconnectDelay.
func (l *Listener) Listen(ctx context.Context, changed func()) error {
	if l.Connect == nil || changed == nil {
		return ErrListenerConfig
	}
	logger := cmp.Or(l.Logger, slog.Default())
	pl := &pgxlisten.Listener{
		Connect: l.Connect,
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() != nil {
				return // Listen is stopping: the error is ours
			}
			logger.LogAttrs(ctx, slog.LevelWarn, "fiberdb: catalog listener lost its connection; reconnecting",
				slog.Any("error", err))
		},
		ReconnectDelay: cmp.Or(max(l.ReconnectDelay, 0), time.Second),
	}
	pl.Handle(cmp.Or(l.Channel, Channel), handler(changed))
	if err := pl.Listen(ctx); ctx.Err() == nil {
		return fmt.Errorf("catalog: listen: %w", err) // unreachable with pgxlisten today
	}
	return nil
}

// handler calls its function on every notification, and once per
// connection after LISTEN (pgxlisten's backlog hook): whatever happened
// while the listener was away is then reloaded in full.
type handler func()

func (h handler) HandleNotification(context.Context, *pgconn.Notification, *pgx.Conn) error {
	h()
	return nil
}

func (h handler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h()
	return nil
}
