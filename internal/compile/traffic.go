package compile

import (
	"fmt"
	"net/http"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/overload"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/traffic"
)

// plannedPools lists every pool a traffic plan can send to, the stable
// pool first.
func plannedPools(tp *config.Traffic, routePool string) []string {
	stable := tp.StablePool
	if stable == "" {
		stable = routePool
	}
	out := []string{stable}
	if tp.CanaryPool != "" {
		out = append(out, tp.CanaryPool)
	}
	if c := tp.CohortRouting; c != nil {
		for _, p := range c.Mappings {
			out = append(out, p)
		}
	}
	return out
}

func trafficSettings(tp *config.Traffic, stable string) (traffic.Settings, error) {
	s := traffic.Settings{StablePool: stable, CanaryPool: tp.CanaryPool, CanaryWeight: tp.CanaryWeight}
	k, err := traffic.ParseKey(tp.StickyKey)
	if err != nil {
		return s, err
	}
	s.Sticky = k
	if b := tp.AutoBrake; b != nil {
		s.Brake = &traffic.BrakeSettings{Window: b.Window.Std(), MinRequests: b.MinRequests,
			ErrorRateMultiplier: b.ErrorRateMultiplier, LatencyP95Threshold: b.LatencyP95Threshold.Std()}
	}
	if c := tp.CohortRouting; c != nil {
		s.Cohort = &traffic.CohortSettings{Header: c.Header, Cookie: c.Cookie, Mappings: c.Mappings}
	}
	return s, nil
}

// trafficHandler wraps a route's forwarding in its traffic plan: one
// Forwarder per pool the plan can pick (each with that pool's breaker),
// the split deciding per request. base is the route's Forwarder, which
// the per-pool ones copy.
func trafficHandler(d Deps, s *snapshot.Snapshot, rc *config.Route, tp *config.Traffic, base *proxy.Forwarder,
	pol *config.Policy, cfgPools map[string]*config.Pool, needsIP map[string]bool) (http.Handler, error) {
	planned := plannedPools(tp, rc.Pool)
	pools := make(map[string]http.Handler, len(planned))
	for _, id := range planned {
		if _, done := pools[id]; done {
			continue
		}
		p := s.Pools[id]
		if p == nil || cfgPools[id] == nil {
			return nil, fmt.Errorf("traffic plan: pool %q not found", id)
		}
		fw := *base
		fw.Pool = p
		fw.NeedClientIP = needsIP[id]
		fw.Breaker = breaker(d.Runtime, rc.ID, pol, cfgPools[id], &s.BreakerKeys)
		pools[id] = &fw
	}
	stable := planned[0]
	settings, err := trafficSettings(tp, stable)
	if err != nil {
		return nil, fmt.Errorf("traffic plan: %w", err)
	}
	var plan *traffic.Split
	if d.Runtime == nil {
		plan = traffic.NewSplit(settings, nil)
	} else {
		plan = d.Runtime.Splits.Acquire(rc.ID, func(sp *traffic.Split) { sp.Update(settings) })
	}
	return &proxy.Split{Plan: plan, Pools: pools, Default: pools[stable],
		NeedClientIP: settings.Sticky.Kind == traffic.KeyClientIP, RouteID: rc.ID, Metrics: d.Metrics}, nil
}

// overloadLimiter returns the route's overload limiter, or nil.
func overloadLimiter(d Deps, route string, op *config.OverloadProtection) *overload.Limiter {
	if op == nil {
		return nil
	}
	s := overload.Settings{MaxConcurrent: op.MaxConcurrent, QueueSize: op.QueueSize,
		QueueTimeout: op.QueueTimeout.Std(), Adaptive: op.Adaptive}
	if d.Runtime == nil {
		return overload.New(s, nil)
	}
	return d.Runtime.Overloads.Acquire(route, func(l *overload.Limiter) { l.Update(s) })
}
