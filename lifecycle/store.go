package lifecycle

import (
	"context"
	"fmt"

	"github.com/pressly/goose/v3/database"
)

// schemaStore is goose's PostgreSQL store for a version table in a schema,
// given as a quoted, qualified name ("Acme"."goose_db_version") that goose
// splices into its queries as it is. Only TableExists is fiberdb's: goose's
// splits the name at its dot and compares the quoted halves with pg_tables.
type schemaStore struct {
	database.Store
}

func newSchemaStore(table string) (*schemaStore, error) {
	s, err := database.NewStore(database.DialectPostgres, table)
	if err != nil {
		return nil, fmt.Errorf("version table: %w", err)
	}
	return &schemaStore{Store: s}, nil
}

// TableExists reports whether the version table exists.
func (s *schemaStore) TableExists(ctx context.Context, db database.DBTxConn) (bool, error) {
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", s.Tablename()).Scan(&exists); err != nil {
		return false, fmt.Errorf("find version table: %w", err)
	}
	return exists, nil
}
