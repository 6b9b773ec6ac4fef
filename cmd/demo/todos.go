package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
)

// maxTitle is the longest title, in bytes, once trimmed.
const maxTitle = 200

// todo is one row of a tenant's todos table.
type todo struct {
	ID    int64  `db:"id"    json:"id"`
	Title string `db:"title" json:"title"`
	Done  bool   `db:"done"  json:"done"`
}

// whoami answers the resolved tenant, the database its connection reached,
// and what the landlord database says about it.
func (h *handlers) whoami(c *fiber.Ctx) error {
	ctx := c.UserContext()
	tenant := fiberdb.Tenant(c)
	db, err := conn(c)
	if err != nil {
		return err
	}
	var database string
	err = db.QueryRow(ctx, "SELECT current_database()").Scan(&database)
	if err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	out := fiber.Map{"tenant": tenant, "database": database}

	landlord, err := fiberdb.ConnFor(c, config.DefaultEngine)
	if err != nil {
		return fmt.Errorf("whoami: landlord: %w", err)
	}
	var name, plan string
	err = landlord.QueryRow(ctx, "SELECT display_name, plan FROM tenants WHERE name = $1", tenant).Scan(&name, &plan)
	switch {
	case err == nil:
		out["name"], out["plan"] = name, plan
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("whoami: landlord: %w", err)
	}
	return sendJSON(c, fiber.StatusOK, out)
}

func (h *handlers) listTodos(c *fiber.Ctx) error {
	db, err := conn(c)
	if err != nil {
		return err
	}
	rows, err := db.Query(c.UserContext(), "SELECT id, title, done FROM todos ORDER BY id")
	if err != nil {
		return fmt.Errorf("list todos: %w", err)
	}
	todos, err := pgx.CollectRows(rows, pgx.RowToStructByName[todo])
	if err != nil {
		return fmt.Errorf("list todos: %w", err)
	}
	if todos == nil {
		todos = []todo{}
	}
	return sendJSON(c, fiber.StatusOK, todos)
}

func (h *handlers) createTodo(c *fiber.Ctx) error {
	var in struct {
		Title *string `json:"title"`
	}
	if err := decodeJSON(c.Body(), &in); err != nil {
		return err
	}
	title, err := validTitle(in.Title)
	if err != nil {
		return err
	}
	db, err := conn(c)
	if err != nil {
		return err
	}
	rows, err := db.Query(c.UserContext(), "INSERT INTO todos (title) VALUES ($1) RETURNING id, title, done", title)
	if err != nil {
		return fmt.Errorf("create todo: %w", err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[todo])
	if err != nil {
		return fmt.Errorf("create todo: %w", err)
	}
	c.Location("/todos/" + strconv.FormatInt(t.ID, 10))
	return sendJSON(c, fiber.StatusCreated, t)
}

func (h *handlers) getTodo(c *fiber.Ctx) error {
	id, err := todoID(c)
	if err != nil {
		return err
	}
	db, err := conn(c)
	if err != nil {
		return err
	}
	t, err := fiberdb.OneOr404(c.UserContext(), db, pgx.RowToStructByName[todo],
		"SELECT id, title, done FROM todos WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("get todo: %w", err)
	}
	return sendJSON(c, fiber.StatusOK, t)
}

// patchTodo changes the title, done, or both, in one transaction: the row is
// locked, changed and committed, so concurrent PATCHes never lose an update.
func (h *handlers) patchTodo(c *fiber.Ctx) (err error) {
	id, err := todoID(c)
	if err != nil {
		return err
	}
	in, err := parsePatch(c.Body())
	if err != nil {
		return err
	}
	db, err := conn(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("patch todo: %w", err)
	}
	defer func() {
		if rbErr := tx.Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, rbErr)
		}
	}()
	t, err := fiberdb.OneOr404(ctx, tx, pgx.RowToStructByName[todo],
		"SELECT id, title, done FROM todos WHERE id = $1 FOR UPDATE", id)
	if err != nil {
		return fmt.Errorf("patch todo: %w", err)
	}
	if in.Title != nil {
		t.Title = *in.Title
	}
	if in.Done != nil {
		t.Done = *in.Done
	}
	if _, err = tx.Exec(ctx, "UPDATE todos SET title = $2, done = $3 WHERE id = $1", t.ID, t.Title, t.Done); err != nil {
		return fmt.Errorf("patch todo: %w", err)
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("patch todo: %w", err)
	}
	return sendJSON(c, fiber.StatusOK, t)
}

// patch is the body of PATCH /todos/:id; a nil field is left unchanged.
type patch struct {
	Title *string `json:"title"`
	Done  *bool   `json:"done"`
}

// parsePatch decodes and checks a patch; its title comes back trimmed.
func parsePatch(body []byte) (patch, error) {
	var p patch
	if err := decodeJSON(body, &p); err != nil {
		return p, err
	}
	if p.Title == nil && p.Done == nil {
		return p, fiber.NewError(fiber.StatusBadRequest, "nothing to change: send title, done or both")
	}
	if p.Title != nil {
		title, err := validTitle(p.Title)
		if err != nil {
			return p, err
		}
		p.Title = &title
	}
	return p, nil
}

// validTitle trims a title and checks that it is present, at most maxTitle
// bytes, and storable (PostgreSQL text cannot hold NUL).
func validTitle(raw *string) (string, error) {
	if raw == nil {
		return "", fiber.NewError(fiber.StatusBadRequest, "title is required")
	}
	title := strings.TrimSpace(*raw)
	switch {
	case title == "":
		return "", fiber.NewError(fiber.StatusBadRequest, "title is required")
	case len(title) > maxTitle:
		return "", fiber.NewError(fiber.StatusBadRequest, "title must be at most "+strconv.Itoa(maxTitle)+" bytes")
	case strings.ContainsRune(title, 0):
		return "", fiber.NewError(fiber.StatusBadRequest, "title must not contain NUL")
	}
	return title, nil
}

// todoID reads the :id parameter; one that cannot be an id is a 404, as a
// missing row is.
func todoID(c *fiber.Ctx) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, fiber.ErrNotFound
	}
	return id, nil
}
