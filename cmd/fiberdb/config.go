package main

import (
	"fmt"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
)

// loadConfig reads the configuration as the app does: the file at path (none
// when path is empty), then the FIBERDB_ variables of environ. Every error
// is a *usageError naming the file or the key.
func loadConfig(path string, environ []string) (*config.Config, error) {
	k := koanf.New(".")
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, usagef("read %s: %w", path, err)
		}
	}
	env := config.EnvProvider(config.EnvOptions{Environ: func() []string { return environ }})
	if err := k.Load(env, nil); err != nil {
		return nil, usagef("read the environment: %w", err)
	}
	conf, err := config.Load(k)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("%s: %w", describe(path), err)}
	}
	return conf, nil
}

func describe(path string) string {
	if path == "" {
		return "the environment"
	}
	return path
}
