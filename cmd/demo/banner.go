package main

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/fiberdb/fiberdb/config"
)

// banner is what the startup message needs.
type banner struct {
	origin      string // where the databases are
	base        string // http://127.0.0.1:3000
	conf        *config.Config
	removesData bool                         // the demo owns PostgreSQL and removes its data on exit
	server      func(database string) string // the demo's own server, for the catalog lines; nil: none
}

// printBanner writes the startup message: where the data is, where the demo
// listens, and curl lines built from the configuration's own routing.
func printBanner(w io.Writer, b banner) {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }

	add("fiberdb demo: %s", b.origin)
	add("listening on %s", b.base)
	add("try:")
	tenants := b.conf.Tenants
	if len(tenants) > 0 {
		first := route(b.conf, tenants[0])
		add("  curl %s%s/whoami", first, b.base)
		add("  curl %s%s/todos", first, b.base)
		add(`  curl %s-d '{"title":"Buy milk"}' %s/todos`, first, b.base)
		add(`  curl %s-X PATCH -d '{"done":true}' %s/todos/1`, first, b.base)
		if b.conf.TenantHeader != "" {
			other := tenants[min(1, len(tenants)-1)] // another tenant than above, if any
			add("  curl -H '%s: %s' %s/todos", b.conf.TenantHeader, other, b.base)
		}
		if len(b.conf.Hosts()) > 0 {
			add("  curl -H 'Host: nobody.localhost' %s/whoami      # 404: unknown tenant", b.base)
		}
	}
	add("  curl %s/healthz", b.base)
	if b.server != nil {
		central := b.server(databaseFor(config.DefaultEngine))
		add("add a tenant while the demo runs (rows of fiberdb_tenants in the landlord database are served within seconds):")
		add("  psql '%s' -c 'CREATE DATABASE newco'", b.server("postgres"))
		add(`  psql '%s' -c "INSERT INTO fiberdb_tenants (name, url, hosts) VALUES ('newco', '%s', '{newco.localhost}')"`,
			central, b.server("newco"))
		add("  curl -H 'Host: newco.localhost' %s/todos", b.base)
		add(`  psql '%s' -c "DELETE FROM fiberdb_tenants WHERE name = 'newco'"      # then 404`, central)
	}
	add("  curl %s/stats", b.base)
	add("  curl %s/metrics", b.base)
	if b.removesData {
		add("Ctrl-C stops the server and removes the data.")
	} else {
		add("Ctrl-C stops the server.")
	}
	_, _ = io.WriteString(w, strings.Join(lines, "\n")+"\n") //nolint:errcheck // nothing to do if stdout is gone
}

// route returns the curl arguments (with a trailing space) that reach tenant:
// its first host, else its subdomain of base_domain, else the tenant header.
func route(conf *config.Config, tenant string) string {
	switch e := conf.Engines[tenant]; {
	case e != nil && len(e.Hosts) > 0:
		return "-H 'Host: " + e.Hosts[0] + "' "
	case conf.BaseDomain != "":
		return "-H 'Host: " + strings.ToLower(tenant) + "." + conf.BaseDomain + "' "
	case conf.TenantHeader != "":
		return "-H '" + conf.TenantHeader + ": " + tenant + "' "
	}
	return ""
}

// baseURL is the URL that reaches addr from this machine: an unspecified
// address (0.0.0.0, ::) is reached through loopback.
func baseURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	ip := tcp.IP
	if ip.IsUnspecified() {
		ip = net.IPv6loopback
		if tcp.IP.To4() != nil {
			ip = net.IPv4(127, 0, 0, 1)
		}
	}
	return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}
