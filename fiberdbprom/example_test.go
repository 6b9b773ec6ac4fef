package fiberdbprom_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbprom"
)

// The collector goes into a registry that promhttp serves; Fiber mounts the
// net/http handler through its adaptor. Pools open on first use and the
// collector opens none, so this runs without a database: no pool is open yet.
func Example() {
	k := koanf.New(".")
	err := k.Load(confmap.Provider(map[string]any{"SQLALCHEMY_ENGINES": map[string]any{
		"default": "postgres://app@127.0.0.1:5432/central?pool_max_conns=4",
		"acme":    map[string]any{"url": "postgres://app@127.0.0.1:5432/acme", "pool_max_conns": 8},
	}}, ""), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	conf, err := config.Load(k)
	if err != nil {
		fmt.Println(err)
		return
	}
	engines, err := fiberdb.Open(context.Background(), conf)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer engines.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(fiberdbprom.NewCollector(engines))

	app := fiber.New()
	// Registered before the middleware, so a scrape needs no tenant.
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	app.Use(fiberdb.New(fiberdb.Config{Engines: engines}))
	// ... routes that use fiberdb.Conn(c)

	resp, err := app.Test(httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/metrics", http.NoBody), -1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "fiberdb_open_pools") || strings.HasPrefix(lines.Text(), "fiberdb_resolutions_total{engine=\"acme\"") {
			fmt.Println(lines.Text())
		}
	}
	// Output:
	// fiberdb_open_pools 0
	// fiberdb_resolutions_total{engine="acme",outcome="resolved"} 0
}
