package main

import (
	"fmt"
	"slices"
)

// report prints, per distribution, each mode's medians and the ratios of
// budget to pgbouncer, per round and of the medians.
func report(s *settings, modes []mode, results map[string][]*result) {
	fmt.Printf("\nmedians over %d rounds of %s:\n", s.rounds, s.duration)
	for _, dist := range distributions {
		for _, m := range modes {
			rs := results[dist.name+"/"+m.name]
			var refused, logged, requests, fivexx int
			for _, r := range rs {
				refused += r.refused
				logged += r.refusedLogged
				requests += r.requests
				fivexx += r.unavailable + r.other5xx
			}
			med := median(rs, (*result).throughput)
			var secs, sessions, cpu float64
			for _, r := range rs {
				secs += r.elapsed.Seconds()
				sessions += float64(r.sessions)
				cpu += r.cpu.Seconds()
			}
			line := fmt.Sprintf("  %-8s %-10s %7.0f req/s  5xx %5.2f%%  refusals %d (server log %d)  %.0f server conns/s  %.0f us CPU/req",
				dist.name, m.name, med, 100*float64(fivexx)/float64(max(requests, 1)), refused, logged,
				sessions/secs, 1e6*cpu/float64(max(requests, 1)))
			if m.settings != nil {
				var evict, waits, timeouts, attempts float64
				for _, r := range rs {
					evict += float64(r.stats.Budget.Evictions)
					waits += float64(r.stats.Budget.Waits)
					timeouts += float64(r.stats.Budget.Timeouts)
					attempts += float64(r.newConns)
				}
				line += fmt.Sprintf("; per s: %.0f evictions, %.0f connect attempts, %.0f waits, %.1f timeouts",
					evict/secs, attempts/secs, waits/secs, timeouts/secs)
			}
			fmt.Println(line)
		}
		base := results[dist.name+"/pgbouncer"]
		for _, m := range modes {
			if m.name == "pgbouncer" {
				continue
			}
			cand := results[dist.name+"/"+m.name]
			ratios := make([]float64, len(cand))
			for i := range cand {
				ratios[i] = cand[i].throughput() / base[i].throughput()
			}
			fmt.Printf("  %-8s %s / pgbouncer = %.3f, median of the rounds' ratios (per round:", dist.name, m.name, medianOf(ratios))
			for _, r := range ratios {
				fmt.Printf(" %.3f", r)
			}
			fmt.Println(")")
		}
	}
}

func median(rs []*result, f func(*result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return medianOf(v)
}

func medianOf(v []float64) float64 {
	v = slices.Sorted(slices.Values(v))
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}
