package config_test

import (
	"errors"
	"fmt"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
)

func ExampleLoad() {
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider([]byte(`
SQLALCHEMY_ENGINES:
  default: postgres://app@127.0.0.1:5432/central
  acme:
    url: postgres://app@127.0.0.1:5432/acme
    pool_max_conns: 8
    hosts: [ACME.Example.com, acme.localhost]
FIBERDB:
  engine_defaults: {pool_max_conns: 4}
  tenant_header: X-Tenant
`)), yaml.Parser()); err != nil {
		fmt.Println(err)
		return
	}

	conf, err := config.Load(k)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("engines:", conf.Names())
	fmt.Println("tenants:", conf.Tenants)
	fmt.Println("acme hosts:", conf.Engines["acme"].Hosts)
	fmt.Println("max conns:", conf.Engines["default"].PoolConfig().MaxConns, conf.Engines["acme"].PoolConfig().MaxConns)

	_, err = config.Load(koanf.New("."))
	fmt.Println(err, errors.Is(err, config.ErrNoEngines))
	// Output:
	// engines: [acme default]
	// tenants: [acme]
	// acme hosts: [acme.example.com acme.localhost]
	// max conns: 4 8
	// 'SQLALCHEMY_ENGINES["default"]' must be defined. true
}
