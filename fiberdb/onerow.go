package fiberdb

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
)

// OneOr404 runs sql and returns its only row, mapped by scan (for example
// pgx.RowToStructByName[T]). Zero rows, or more than one, give a 404 that
// errors.As finds as a *fiber.Error (so Fiber answers 404 "Not Found") and
// that errors.Is matches to pgx.ErrNoRows or pgx.ErrTooManyRows, to tell the
// two apart. This is Flask-SQLAlchemy-Lite's one_or_abort. Any other error
// (bad SQL, a cancelled context, a lost connection) is returned unchanged.
//
// There is deliberately no FirstOr404: taking the first of several rows
// would hide a query that is not unique.
func OneOr404[T any](ctx context.Context, db DBTX, scan pgx.RowToFunc[T], sql string, args ...any) (T, error) {
	return OneOr(ctx, db, fiber.StatusNotFound, "", scan, sql, args...)
}

// OneOr is [OneOr404] with the status and message of your choice (the code
// and abort_kwargs of Flask-SQLAlchemy-Lite). An empty message uses the
// status's standard text.
func OneOr[T any](ctx context.Context, db DBTX, status int, message string, scan pgx.RowToFunc[T], sql string, args ...any) (T, error) {
	var zero T
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return zero, err
	}
	v, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, pgx.ErrTooManyRows) {
		fe := fiber.NewError(status)
		if message != "" {
			fe.Message = message
		}
		return zero, &rowCountError{status: fe, cause: err}
	}
	return v, err
}

// rowCountError is OneOr's answer to a row count other than one: the
// *fiber.Error the client gets, and pgx's cause for the caller's errors.Is.
// Its text is the fiber.Error's alone, since Fiber's default error handler
// sends err.Error() to the client.
type rowCountError struct {
	status *fiber.Error
	cause  error
}

func (e *rowCountError) Error() string   { return e.status.Error() }
func (e *rowCountError) Unwrap() []error { return []error{e.status, e.cause} }
