package fiberdb

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
)

// OneOr404 runs sql and returns its only row, mapped by scan (for example
// pgx.RowToStructByName[T]). Zero rows, or more than one, give a
// *fiber.Error 404, Flask-SQLAlchemy-Lite's one_or_abort. Any other error
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
		if message == "" {
			return zero, fiber.NewError(status)
		}
		return zero, fiber.NewError(status, message)
	}
	return v, err
}
