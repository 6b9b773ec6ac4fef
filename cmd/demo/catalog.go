package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/reload"
)

// On a server the demo supplies (its own, or DATABASE_URL) it keeps its
// tenants in the landlord's catalog table, fiberdb_tenants, so that a row
// inserted while it runs is served within a second or two and a deleted row
// answers 404. The file's tenants are the catalog's first rows. With -config,
// or urls from the environment, the configuration is the whole truth and the
// catalog is not read.

// catalogOf is the landlord's catalog: where tenant rows are read from and
// listened to.
type catalogOf struct {
	landlord *pgxpool.Pool
	url      string // the landlord's, for the LISTEN connection
}

// openCatalog installs the catalog table in conf's landlord and, if it has
// no row, adds conf's tenants to it, each on its database on server.
func openCatalog(ctx context.Context, conf *config.Config, server serverURL) (*catalogOf, error) {
	landlord := conf.Engines[config.DefaultEngine]
	if landlord == nil {
		return nil, errors.New(`the demo keeps its tenants in the "default" engine's database: configure one`)
	}
	pc := landlord.PoolConfig()
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("landlord: %w", err)
	}
	c := &catalogOf{landlord: pool, url: pc.ConnString()}
	if err := catalog.Install(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("install the tenant catalog: %w%s", err, hint(err, pc.ConnConfig.Database))
	}
	var rows int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+catalog.Table).Scan(&rows); err != nil {
		pool.Close()
		return nil, fmt.Errorf("read the tenant catalog: %w", err)
	}
	for _, name := range conf.Tenants {
		if rows > 0 {
			break
		}
		t := catalog.Tenant{Name: name, URL: server(databaseFor(name)), Hosts: conf.Engines[name].Hosts}
		if err := catalog.Put(ctx, pool, t); err != nil {
			pool.Close()
			return nil, fmt.Errorf("seed the tenant catalog: %w", err)
		}
	}
	return c, nil
}

// provider reads the catalog's rows, for one load.
func (c *catalogOf) provider(ctx context.Context) koanf.Provider {
	return catalog.Provider(ctx, c.landlord)
}

// reloader applies every change of the catalog to engines, and readies the
// tables of the tenants it adds.
func (c *catalogOf) reloader(src *source, engines *fiberdb.Engines, logger *slog.Logger) *reload.Reloader {
	return reload.New(reload.Config{
		Load: func(context.Context) (*config.Config, error) { return src.load() },
		Apply: func(ctx context.Context, conf *config.Config) error {
			// A tenant becomes routable only once its tables exist: a
			// failure here (a row naming no database) is logged by the
			// reloader and changes nothing.
			if err := readyNew(ctx, engines, conf); err != nil {
				return err
			}
			return engines.Apply(ctx, conf)
		},
		Catalog: &catalog.Listener{Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.Connect(ctx, c.url)
		}},
		Logger: slog.New(quietHandler{logger.Handler(), slog.LevelWarn}),
	})
}

func (c *catalogOf) close() { c.landlord.Close() }

// readyNew creates and seeds the tables of the tenants conf adds to
// engines, and lists them in the landlord, before they are served.
func readyNew(ctx context.Context, engines *fiberdb.Engines, conf *config.Config) error {
	current := map[string]bool{}
	for _, name := range engines.Names() {
		current[name] = true
	}
	var added []string
	for _, name := range conf.Tenants {
		if current[name] {
			continue
		}
		added = append(added, name)
		conn, err := pgx.ConnectConfig(ctx, conf.Engines[name].PoolConfig().ConnConfig)
		if err != nil {
			return fmt.Errorf("ready tenant %q: %w", name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return seedTenant(ctx, tx, name) })
		if cerr := conn.Close(ctx); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("ready tenant %q: %w", name, err)
		}
	}
	if len(added) == 0 {
		return nil
	}
	landlord, err := engines.Default()
	if err != nil {
		return err
	}
	if err := pgx.BeginFunc(ctx, landlord, func(tx pgx.Tx) error { return seedLandlord(ctx, tx, added) }); err != nil {
		return fmt.Errorf("ready the landlord: %w", err)
	}
	return nil
}
