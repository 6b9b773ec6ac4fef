package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// pingTimeout bounds each engine's ping in /healthz.
const pingTimeout = 2 * time.Second

// healthz pings every engine at once, each for at most pingTimeout, and
// answers 503 if any failed.
func (h *handlers) healthz(c *fiber.Ctx) error {
	ctx := c.UserContext()
	names := h.engines.Names()
	states := make([]string, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			states[i] = "ok"
			if err := h.ping(ctx, name); err != nil {
				states[i] = "down"
				h.logger.LogAttrs(ctx, slog.LevelWarn, "engine ping failed", slog.String("engine", name), slog.Any("error", err))
			}
		})
	}
	wg.Wait()

	status, code := "ok", fiber.StatusOK
	engines := make(map[string]string, len(names))
	for i, name := range names {
		engines[name] = states[i]
		if states[i] != "ok" {
			status, code = "degraded", fiber.StatusServiceUnavailable
		}
	}
	return sendJSON(c, code, fiber.Map{"status": status, "engines": engines})
}

func (h *handlers) ping(ctx context.Context, engine string) error {
	pool, err := h.engines.Engine(engine)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return pool.Ping(ctx)
}

// poolStats is one pool's pgxpool.Stat, for JSON.
type poolStats struct {
	Acquired             int32   `json:"acquired"`
	Idle                 int32   `json:"idle"`
	Total                int32   `json:"total"`
	Max                  int32   `json:"max"`
	Constructing         int32   `json:"constructing"`
	AcquireCount         int64   `json:"acquire_count"`
	AcquireDurationMS    float64 `json:"acquire_duration_ms"`
	EmptyAcquireCount    int64   `json:"empty_acquire_count"`
	CanceledAcquireCount int64   `json:"canceled_acquire_count"`
}

// resolveStats is fiberdb.ResolveStats, for JSON.
type resolveStats struct {
	Resolved      map[string]uint64 `json:"resolved"`
	NoTenant      uint64            `json:"no_tenant"`
	Malformed     uint64            `json:"malformed"`
	UnknownTenant uint64            `json:"unknown_tenant"`
	Refused       uint64            `json:"refused"`
	Failed        uint64            `json:"failed"`
}

func (h *handlers) stats(c *fiber.Ctx) error {
	// Stats opens nothing: an engine whose pool is not open (never used,
	// or closed as idle) is absent.
	engines := map[string]poolStats{}
	for name, s := range h.engines.Stats().Pools {
		engines[name] = poolStats{
			Acquired:             s.AcquiredConns(),
			Idle:                 s.IdleConns(),
			Total:                s.TotalConns(),
			Max:                  s.MaxConns(),
			Constructing:         s.ConstructingConns(),
			AcquireCount:         s.AcquireCount(),
			AcquireDurationMS:    float64(s.AcquireDuration()) / float64(time.Millisecond),
			EmptyAcquireCount:    s.EmptyAcquireCount(),
			CanceledAcquireCount: s.CanceledAcquireCount(),
		}
	}
	r := h.engines.ResolveStats()
	return sendJSON(c, fiber.StatusOK, fiber.Map{"engines": engines, "resolve": resolveStats{
		Resolved: r.Resolved, NoTenant: r.NoTenant, Malformed: r.Malformed,
		UnknownTenant: r.UnknownTenant, Refused: r.Refused, Failed: r.Failed,
	}})
}
