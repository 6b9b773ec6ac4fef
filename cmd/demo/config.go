package main

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
)

// defaultConfig is the configuration used without -config.
//
//go:embed fiberdb.yaml
var defaultConfig []byte

// configError is a problem with the configuration, its file, DATABASE_URL or
// the FIBERDB_ variables, as opposed to a failure at run time. The demo exits
// with code 2 for it.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// serverURL returns the connection string of database on some server.
type serverURL func(database string) string

// source is where the configuration comes from, read once, in the order the
// layers apply: the file (-config, else the embedded fiberdb.yaml), then each
// engine's url from a server (the embedded one or DATABASE_URL), then the
// FIBERDB_ environment variables, which win.
type source struct {
	name    string // for messages: the file's path, or "fiberdb.yaml (embedded)"
	file    koanf.Provider
	environ []string

	// server gives the urls, or is nil when the file and the environment do.
	server serverURL
	// embedded is set when the demo must start its own PostgreSQL: there is
	// no -config, no DATABASE_URL, and some engine has no url.
	embedded bool
	// needURL are the engines the file and environment give no url.
	needURL []string
	// catalog, once set, reads the landlord's tenant rows: a layer over the
	// file and the server urls, under the environment.
	catalog func() koanf.Provider
	// origin describes where the urls come from, for the startup message.
	origin string
}

// newSource reads the configuration's layers and decides where the engines'
// urls come from. Every error it returns is a *configError.
func newSource(configPath string, environ []string) (*source, error) {
	s := &source{environ: environ, name: "fiberdb.yaml (embedded)", file: rawbytes.Provider(defaultConfig)}
	if configPath != "" {
		s.name, s.file = configPath, file.Provider(configPath)
	}
	k, err := s.koanf(nil)
	if err != nil {
		return nil, err
	}
	s.needURL = enginesWithoutURL(k)

	databaseURL := lookupEnv(environ, "DATABASE_URL")
	switch {
	case databaseURL != "":
		// DATABASE_URL names a server, not a database: every engine uses
		// the database named after it there (databaseFor), whatever the
		// path of DATABASE_URL says. FIBERDB_ variables still win.
		u, perr := url.Parse(databaseURL)
		if perr != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, &configError{errors.New("DATABASE_URL must be a URL such as postgres://user@host:5432/")}
		}
		s.server = func(database string) string {
			v := *u
			v.Path, v.RawPath = "/"+database, ""
			return v.String()
		}
		host := u.Host // never the user info, which may hold a password
		if host == "" {
			host = "its default host"
		}
		s.origin = "PostgreSQL at " + host + " (DATABASE_URL)"
	case configPath != "":
		s.origin = "the engines in " + configPath
	case len(s.needURL) == 0:
		s.origin = "the engines' urls from the environment"
	default:
		s.embedded = true
		// Validated against a stand-in server before the real one starts,
		// so that a bad setting never leaves a cluster behind.
		s.server = func(database string) string { return "postgres://postgres@127.0.0.1:5432/" + database }
	}
	return s, nil
}

// load builds and validates the configuration. Every error it returns is a
// *configError.
func (s *source) load() (*config.Config, error) {
	k, err := s.koanf(s.server)
	if err != nil {
		return nil, err
	}
	conf, err := config.Load(k)
	if err != nil {
		return nil, &configError{err}
	}
	return conf, nil
}

// koanf stacks the layers. Engines that only the environment defines get a
// url from server too.
func (s *source) koanf(server serverURL) (*koanf.Koanf, error) {
	env := config.EnvProvider(config.EnvOptions{Environ: func() []string { return s.environ }})
	k := koanf.New(".")
	if err := k.Load(s.file, yaml.Parser()); err != nil {
		return nil, &configError{fmt.Errorf("read %s: %w", s.name, err)}
	}
	if s.catalog != nil {
		// The catalog's rows are the tenants: the file's were its first rows.
		for _, name := range k.MapKeys(config.DefaultKey) {
			if name != config.DefaultEngine {
				k.Delete(config.DefaultKey + "." + name)
			}
		}
	}
	if server != nil {
		names := k.Copy()
		if err := names.Load(env, nil); err != nil {
			return nil, &configError{fmt.Errorf("read the environment: %w", err)}
		}
		urls := map[string]any{}
		for _, name := range engineNames(names) {
			urls[config.DefaultKey+"."+name+".url"] = server(databaseFor(name))
		}
		if err := k.Load(confmap.Provider(urls, "."), nil); err != nil {
			return nil, &configError{fmt.Errorf("set engine urls: %w", err)}
		}
	}
	if s.catalog != nil {
		if err := k.Load(s.catalog(), nil); err != nil {
			return nil, fmt.Errorf("read the tenant catalog: %w", err)
		}
	}
	if err := k.Load(env, nil); err != nil {
		return nil, &configError{fmt.Errorf("read the environment: %w", err)}
	}
	return k, nil
}

// envEngines is where config.EnvProvider puts the engine variables; Load
// merges them into the engines.
const envEngines = config.DefaultSettingsKey + ".overrides"

// engineNames lists the engines of k, the environment's included.
func engineNames(k *koanf.Koanf) []string {
	names := append(k.MapKeys(config.DefaultKey), k.MapKeys(envEngines)...)
	slices.Sort(names)
	return slices.Compact(names)
}

// enginesWithoutURL lists, sorted, the engines of k that have no url, in the
// file or in the environment.
func enginesWithoutURL(k *koanf.Koanf) []string {
	var names []string
	for _, name := range engineNames(k) {
		if !hasURL(k.Get(config.DefaultKey+"."+name)) && !hasURL(k.Get(envEngines+"."+name)) {
			names = append(names, name)
		}
	}
	return names
}

func hasURL(engine any) bool {
	switch v := engine.(type) {
	case string:
		return v != ""
	case map[string]any:
		u, ok := v["url"]
		return ok && u != nil && u != ""
	}
	return false
}

// databaseFor names the database that engine uses on a server the demo
// supplies: "central" for the landlord ("default"), else the engine's name.
func databaseFor(engine string) string {
	if engine == config.DefaultEngine {
		return "central"
	}
	return engine
}

func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
