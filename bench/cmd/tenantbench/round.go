package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/internal/benchapp"
)

// distribution picks the tenant of each request, as an index into the
// tenants.
type distribution struct {
	name string
	pick func(r *rand.Rand, n int) func() int
}

var distributions = []distribution{
	{"uniform", func(r *rand.Rand, n int) func() int { return func() int { return r.IntN(n) } }},
	// A few hot tenants and a long tail: tenant k is picked with a
	// probability proportional to (k+1)^-1.1.
	{"zipf", func(r *rand.Rand, n int) func() int {
		z := rand.NewZipf(r, 1.1, 1, uint64(n-1))
		return func() int { return int(z.Uint64()) }
	}},
}

// result is one mode's round.
type result struct {
	requests, ok, busy, unavailable, other5xx, otherStatus, transport int
	refused, refusedLogged                                            int // SQLSTATE 53300 seen by the app; refusals in the server log
	elapsed                                                           time.Duration
	p50, p99                                                          time.Duration
	stats                                                             fiberdb.Stats
	newConns                                                          int64 // connect attempts of the pools
	sessions                                                          int64 // server connections established
	hotSessions                                                       int64 // those to the hottest tenant
	cpu                                                               time.Duration
}

func (r *result) throughput() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r *result) share5xx() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.unavailable+r.other5xx) / float64(r.requests)
}

func (r *result) String() string {
	s := fmt.Sprintf("%7.0f req/s  5xx %5.2f%%  refused %d (log %d)  p50 %s p99 %s  sessions %d (hottest tenant %d)  %.0f us CPU/req",
		r.throughput(), 100*r.share5xx(), r.refused, r.refusedLogged,
		r.p50.Round(10*time.Microsecond), r.p99.Round(100*time.Microsecond), r.sessions, r.hotSessions,
		float64(r.cpu.Microseconds())/float64(max(r.requests, 1)))
	if r.newConns > 0 {
		s += fmt.Sprintf("  connect attempts %d", r.newConns)
	}
	if b := r.stats.Budget; b.Max > 0 {
		s += fmt.Sprintf("  peak %d waits %d timeouts %d evictions %d", b.Peak, b.Waits, b.Timeouts, b.Evictions)
	}
	if r.busy+r.otherStatus+r.transport > 0 {
		s += fmt.Sprintf("  429 %d other %d transport errors %d", r.busy, r.otherStatus, r.transport)
	}
	return s
}

// round serves the app in mode m for s.duration under s.clients clients
// that pick tenants by dist.
func (e *env) round(ctx context.Context, s *settings, m mode, dist distribution) (*result, error) {
	if err := e.settle(ctx); err != nil {
		return nil, err
	}
	_, logStart, err := e.refusalsLogged(0)
	if err != nil {
		return nil, err
	}
	sessions, hot, err := e.sessions(ctx)
	if err != nil {
		return nil, err
	}
	cpu := cpuTime()
	engines, stop, err := m.open(ctx, e)
	if err != nil {
		return nil, err
	}
	r, err := serve(ctx, s, m, dist, engines, e.tenants)
	stop()
	if err != nil {
		return nil, err
	}
	r.cpu = cpuTime() - cpu
	if serr := e.settle(ctx); serr != nil {
		return nil, serr
	}
	after, hotAfter, err := e.sessions(ctx)
	if err != nil {
		return nil, err
	}
	r.sessions = after - sessions - 1 // less settle's own
	r.hotSessions = hotAfter - hot
	r.refusedLogged, _, err = e.refusalsLogged(logStart)
	return r, err
}

// serve runs the app on engines on a loopback port while the clients run.
func serve(ctx context.Context, s *settings, m mode, dist distribution, engines *fiberdb.Engines, tenants []string) (r *result, err error) {
	var refused atomic.Int64
	app := newApp(engines, &refused) //nolint:contextcheck // the app serves requests, each with its own context, not ctx
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	defer func() { err = errors.Join(err, app.ShutdownWithTimeout(5*time.Second), <-served) }()

	if m.name == "budget" && s.cpuProfile != "" {
		stopProfile, perr := benchapp.StartProfile(s.cpuProfile)
		if perr != nil {
			return nil, perr
		}
		defer func() { err = errors.Join(err, stopProfile()) }()
	}
	r = load(ctx, s, "http://"+ln.Addr().String()+"/", tenants, dist)
	r.refused = int(refused.Load())
	r.stats = engines.Stats()
	for _, st := range r.stats.Pools {
		r.newConns += st.NewConnsCount()
	}
	for _, st := range r.stats.Draining {
		r.newConns += st.NewConnsCount()
	}
	return r, nil
}

// newApp is the app of every mode: fiberdb routing by Host, one row read
// by primary key per request. It counts in refused the connections the
// server refused (SQLSTATE 53300) that reach Fiber's error handler.
func newApp(engines *fiberdb.Engines, refused *atomic.Int64) *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage:   true,
		EnableTrustedProxyCheck: true, // as a production app must
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "53300" { // too_many_connections
				refused.Add(1)
			}
			return fiber.DefaultErrorHandler(c, err)
		},
	})
	app.Use(fiberdb.New(fiberdb.Config{Engines: engines, Logger: quiet}))
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		var name string
		if err := db.QueryRow(c.UserContext(), "SELECT name FROM items WHERE id = $1", 42).Scan(&name); err != nil {
			return err
		}
		return c.SendString(name)
	})
	return app
}

// quiet discards fiberdb's log records: the refusals they report are
// counted by the app's error handler.
var quiet = slog.New(slog.DiscardHandler)

// cpuTime is the CPU time this process (app and clients) has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load runs the clients against target for s.duration.
func load(ctx context.Context, s *settings, target string, tenants []string, dist distribution) *result {
	transport := &http.Transport{MaxIdleConnsPerHost: s.clients, MaxConnsPerHost: s.clients}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, s.duration)
	defer cancel()

	counts := make([]result, s.clients)
	latencies := make([][]time.Duration, s.clients)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range s.clients {
		wg.Go(func() {
			r := &counts[i]
			pick := dist.pick(rand.New(rand.NewPCG(uint64(i), 14)), len(tenants)) //nolint:gosec // a benchmark's load, not a secret
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, http.NoBody)
				if err != nil {
					panic(err) // target is well-formed
				}
				req.Host = tenants[pick()] + ".localhost"
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						r.transport++
						r.requests++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
				_ = resp.Body.Close()
				latencies[i] = append(latencies[i], time.Since(t0))
				r.requests++
				switch c := resp.StatusCode; {
				case c == http.StatusOK:
					r.ok++
				case c == http.StatusTooManyRequests:
					r.busy++
				case c == http.StatusServiceUnavailable:
					r.unavailable++
				case c >= 500:
					r.other5xx++
				default:
					r.otherStatus++
				}
			}
		})
	}
	wg.Wait()
	total := &result{}
	total.elapsed = time.Since(start)
	for i := range counts {
		c := &counts[i]
		total.requests += c.requests
		total.ok += c.ok
		total.busy += c.busy
		total.unavailable += c.unavailable
		total.other5xx += c.other5xx
		total.otherStatus += c.otherStatus
		total.transport += c.transport
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) > 0 {
		total.p50, total.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return total
}
