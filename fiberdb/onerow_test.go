package fiberdb_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
)

type todo struct {
	ID   int
	Name string
}

// TestOneOr404 ports Flask-SQLAlchemy-Lite's test_abort.py.
//
//nolint:tparallel // the subtests share two connections, which are not safe for concurrent use
func TestOneOr404(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "x")
	for _, engine := range []string{"default", "x"} {
		exec(t, e, engine, "CREATE TABLE todo (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text)")
		exec(t, e, engine, "INSERT INTO todo (name) VALUES ('a'), ('b'), ('a')")
	}
	db, release, err := e.Acquire(t.Context(), "default")
	require.NoError(t, err)
	defer func() { require.NoError(t, release()) }()
	other, releaseOther, err := e.Acquire(t.Context(), "x")
	require.NoError(t, err)
	defer func() { require.NoError(t, releaseOther()) }()
	ctx := t.Context()
	byName := pgx.RowToStructByName[todo]

	t.Run("get", func(t *testing.T) {
		got, err := fiberdb.OneOr404(ctx, db, byName, "SELECT id, name FROM todo WHERE id = $1", 1)
		require.NoError(t, err)
		require.Equal(t, todo{1, "a"}, got)
	})
	t.Run("get abort", func(t *testing.T) {
		_, err := fiberdb.OneOr404(ctx, db, byName, "SELECT id, name FROM todo WHERE id = $1", 4)
		var fe *fiber.Error
		require.ErrorAs(t, err, &fe)
		require.Equal(t, fiber.StatusNotFound, fe.Code)
	})
	t.Run("get from another engine", func(t *testing.T) {
		got, err := fiberdb.OneOr404(ctx, other, byName, "SELECT id, name FROM todo WHERE id = $1", 2)
		require.NoError(t, err)
		require.Equal(t, "b", got.Name)
	})
	t.Run("one abort none", func(t *testing.T) {
		_, err := fiberdb.OneOr404(ctx, db, byName, "SELECT id, name FROM todo WHERE name = 'c'")
		require.Equal(t, fiber.ErrNotFound.Code, fiberCode(err))
		// Issue 13: the caller can tell no row from several.
		require.ErrorIs(t, err, pgx.ErrNoRows)
		require.NotErrorIs(t, err, pgx.ErrTooManyRows)
		require.EqualError(t, err, "Not Found", "the client's text, never pgx's")
	})
	t.Run("one abort many", func(t *testing.T) {
		_, err := fiberdb.OneOr404(ctx, db, byName, "SELECT id, name FROM todo WHERE name = 'a'")
		require.Equal(t, fiber.StatusNotFound, fiberCode(err), "several rows are not one")
		require.ErrorIs(t, err, pgx.ErrTooManyRows)
		require.NotErrorIs(t, err, pgx.ErrNoRows)
	})
	t.Run("fiber answers 404", func(t *testing.T) {
		app := fiber.New() // Fiber's own error handler
		app.Get("/", func(*fiber.Ctx) error {
			_, err := fiberdb.OneOr404(ctx, db, byName, "SELECT id, name FROM todo WHERE name = 'a'")
			return err
		})
		resp, err := app.Test(httptest.NewRequestWithContext(ctx, fiber.MethodGet, "/", http.NoBody), -1)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, fiber.StatusNotFound, resp.StatusCode)
		require.Equal(t, "Not Found", string(body))
	})
	t.Run("one tuple", func(t *testing.T) {
		got, err := fiberdb.OneOr404(ctx, db, pgx.RowTo[string], "SELECT name FROM todo WHERE id = 2")
		require.NoError(t, err)
		require.Equal(t, "b", got)
	})
	t.Run("custom status and message", func(t *testing.T) {
		_, err := fiberdb.OneOr(ctx, db, fiber.StatusGone, "todo is gone", byName, "SELECT id, name FROM todo WHERE id = 9")
		var fe *fiber.Error
		require.ErrorAs(t, err, &fe)
		require.Equal(t, fiber.StatusGone, fe.Code)
		require.Equal(t, "todo is gone", fe.Message)
		require.ErrorIs(t, err, pgx.ErrNoRows)
	})
	t.Run("sql error passes through", func(t *testing.T) {
		_, err := fiberdb.OneOr404(ctx, db, byName, "SELECT id, name FROM nosuchtable")
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "42P01", pgErr.Code)
		require.Zero(t, fiberCode(err), "not turned into a 404")
	})
	t.Run("cancelled context passes through", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := fiberdb.OneOr404(cctx, db, byName, "SELECT id, name FROM todo WHERE id = 1")
		require.ErrorIs(t, err, context.Canceled)
	})
}

func fiberCode(err error) int {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return 0
}
