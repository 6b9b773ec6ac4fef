package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
)

// loadConfig reads the configuration as an app that follows the catalog
// does: the file at path (none when path is empty), then the rows of the
// catalog table in the "default" database, when it has one, then the
// FIBERDB_ variables of environ, which win. Like every connection of the
// command, the one reading the catalog is direct (the landlord's
// direct_url, else its url). An error in the file or the
// environment is a *usageError naming the file or the key; one reading the
// catalog is not.
func loadConfig(ctx context.Context, path string, environ []string) (*config.Config, error) {
	conf, err := loadLayers(path, environ, nil)
	if err != nil {
		return nil, err
	}
	// The Engine's own, not conf.DirectConfig: a landlord with a pool has no
	// database of its own, and its pool engine's holds no catalog of its.
	landlord := conf.Engines[config.DefaultEngine].DirectConfig()
	if landlord == nil {
		return conf, nil
	}
	conn, err := pgx.ConnectConfig(ctx, landlord)
	if err != nil {
		return nil, fmt.Errorf("read the catalog: connect to the landlord database: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var installed bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", catalog.Table).Scan(&installed); err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	if !installed {
		return conf, nil
	}
	return loadLayers(path, environ, catalog.Provider(ctx, conn))
}

// loadLayers loads the file, rows (when not nil) and the environment.
func loadLayers(path string, environ []string, rows koanf.Provider) (*config.Config, error) {
	k := koanf.New(".")
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, usagef("read %s: %w", path, err)
		}
	}
	if rows != nil {
		if err := k.Load(rows, nil); err != nil {
			return nil, fmt.Errorf("read the catalog: %w", err)
		}
	}
	env := config.EnvProvider(config.EnvOptions{Environ: func() []string { return environ }})
	if err := k.Load(env, nil); err != nil {
		return nil, usagef("read the environment: %w", err)
	}
	conf, err := config.Load(k)
	if err != nil {
		where := describe(path)
		if rows != nil {
			where += " with the catalog's rows"
		}
		return nil, &usageError{err: fmt.Errorf("%s: %w", where, err)}
	}
	return conf, nil
}

func describe(path string) string {
	if path == "" {
		return "the environment"
	}
	return path
}
