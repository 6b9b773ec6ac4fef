package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fiberdb/fiberdb/config"
)

// ProviderOptions configures [Provider].
type ProviderOptions struct {
	// Key is the koanf key the engines go under, "."-separated; it must match
	// the config.Options.Key given to config.Load.
	//
	// Optional. Default: "SQLALCHEMY_ENGINES"
	Key string

	// Logger receives one warning for each row left out.
	//
	// Optional. Default: slog.Default()
	Logger *slog.Logger
}

// Source is a koanf.Provider that reads the catalog table. Make one with
// [Provider] for each koanf instance it loads into.
type Source struct {
	// koanf's Provider.Read takes no context; a Source lives for one Load.
	ctx context.Context //nolint:containedctx // see above
	db  DB
	o   ProviderOptions
}

// Provider returns a koanf provider whose Read queries the catalog table on
// db, under ctx, and returns its rows as engines under o.Key:
//
//	SQLALCHEMY_ENGINES:
//	  acme: {url: <url>, hosts: [<hosts>…], <options>…}
//
// Load it with a nil parser, after the config file and before the
// environment, so that a row replaces a file engine of the same name key by
// key and env vars still win:
//
//	k.Load(file.Provider("fiberdb.yaml"), yaml.Parser())
//	k.Load(catalog.Provider(ctx, pool), nil)
//	k.Load(config.EnvProvider(config.EnvOptions{}), nil)
//
// A row that config.Load would refuse on its own (options not a JSON object,
// a bad engine name, url or option) is left out and logged as a warning with
// the row's key and the [*config.KeyError], never its url; the other rows are
// returned. A host claimed by two rows, or by a row and the file, is left to
// config.Load, which refuses the whole config naming both.
func Provider(ctx context.Context, db DB, opts ...ProviderOptions) *Source {
	var o ProviderOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Key == "" {
		o.Key = config.DefaultKey
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Source{ctx: ctx, db: db, o: o}
}

// ReadBytes returns [ErrReadBytes].
func (s *Source) ReadBytes() ([]byte, error) { return nil, ErrReadBytes }

// Read queries the catalog and returns its valid rows as a nested map.
func (s *Source) Read() (map[string]any, error) {
	rows, err := s.db.Query(s.ctx, `SELECT name, url, hosts, options FROM fiberdb_tenants ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", Table, err)
	}
	defer rows.Close()

	engines := map[string]any{}
	for rows.Next() {
		var (
			name    string
			url     *string   // NULL only in a table made without NOT NULL
			hosts   []*string // an element may be NULL
			options any       // any JSON value
		)
		if err := rows.Scan(&name, &url, &hosts, &options); err != nil {
			return nil, fmt.Errorf("read %s: %w", Table, err)
		}
		t, err := tenant(name, url, hosts, options)
		if err == nil {
			_, err = t.engine()
		}
		if err != nil {
			s.o.Logger.LogAttrs(s.ctx, slog.LevelWarn, "fiberdb: catalog row ignored",
				slog.String("row", rowKey(name)), slog.Any("error", err))
			continue
		}
		engines[name] = t.entry()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", Table, err)
	}

	// Nest along the key's parts, as koanf stores a "."-separated path.
	parts := strings.Split(s.o.Key, ".")
	out := map[string]any{parts[len(parts)-1]: engines}
	for i := len(parts) - 2; i >= 0; i-- {
		out = map[string]any{parts[i]: out}
	}
	return out, nil
}

// tenant converts a row's columns, reporting the shapes only a table
// created without the catalog's constraints, or a JSON value that is not an
// object, can produce.
func tenant(name string, url *string, hosts []*string, options any) (Tenant, error) {
	t := Tenant{Name: name}
	if url != nil {
		t.URL = *url
	}
	for _, h := range hosts {
		if h == nil {
			return t, &config.KeyError{Key: rowKey(name) + `["hosts"]`, Reason: "must not hold NULL", Err: config.ErrInvalidOption}
		}
		t.Hosts = append(t.Hosts, *h)
	}
	switch o := options.(type) {
	case nil:
	case map[string]any:
		t.Options = o
	default:
		return t, &config.KeyError{
			Key:    rowKey(name) + `["options"]`,
			Reason: "must be a JSON object of engine options, not " + jsonType(o),
			Err:    config.ErrInvalidOption,
		}
	}
	return t, nil
}

// jsonType names a decoded JSON value's type without printing the value.
func jsonType(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// mapProvider is a koanf.Provider over a map that is already nested.
type mapProvider map[string]any

func (m mapProvider) ReadBytes() ([]byte, error)    { return nil, ErrReadBytes }
func (m mapProvider) Read() (map[string]any, error) { return m, nil }
