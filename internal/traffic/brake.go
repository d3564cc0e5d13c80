package traffic

import (
	"fmt"
	"time"
)

// VariantStats measures one variant over the window (the brake's, or 30s).
type VariantStats struct {
	// Requests is the number of outcomes recorded in the window.
	Requests int64
	// ErrorRate is failures/Requests, 0-1; 0 when Requests is 0.
	ErrorRate float64
	// P95Ms is the 95th percentile latency in milliseconds, interpolated
	// in a histogram whose buckets are at most 25% wide; 0 when Requests
	// is 0.
	P95Ms float64
}

// Stats is a point-in-time view of a Split for the admin API
// (GET /api/v2/traffic/canary). Its fields are read one by one, not as one
// atomic snapshot. The caller owns the map.
type Stats struct {
	// StablePool and CanaryPool are the pools in force.
	StablePool, CanaryPool string
	// ConfiguredWeight is the configured canary weight (clamped to
	// 0-100).
	ConfiguredWeight int
	// EffectiveWeight is the weight the split uses: 0 when braked or
	// without a canary pool, else ConfiguredWeight.
	EffectiveWeight int
	// Braked reports whether the brake holds; BrakeReason says why, with
	// the numbers, and BrakedAt when.
	Braked      bool
	BrakeReason string
	BrakedAt    time.Time
	// Variants holds "stable", "canary" when a canary pool is set, and
	// "cohort:NAME" for each cohort.
	Variants map[string]VariantStats
}

// Record counts the outcome of a request Decide sent to variant: failed
// for a 5xx response or a proxy error (SPEC section 7), latency from the
// start of the upstream exchange to the response headers or the error.
// Unknown variants are ignored.
//
// A canary outcome may brake the canary, at once, when the brake is on and
// the canary has at least MinRequests outcomes in the window, and either
// its error rate exceeds both 1% and ErrorRateMultiplier times stable's
// (stable with no outcomes counts as 0%), or LatencyP95Threshold is set
// and more than 5% of its outcomes were slower than it, which is exactly
// "its nearest-rank p95 latency exceeds the threshold" without the error
// of a histogram. The check runs on canary outcomes only, so that stable's
// much larger traffic pays nothing for it; stable's numbers are read only
// when the canary has failures.
func (sp *Split) Record(variant string, failed bool, latency time.Duration) {
	p := sp.plan.Load()
	now := sp.clock()
	switch variant {
	case VariantStable:
		p.stableStats.record(now, failed, false, latency)
	case VariantCanary:
		b := p.s.Brake
		slow := b != nil && b.LatencyP95Threshold > 0 && latency > b.LatencyP95Threshold
		p.canaryStats.record(now, failed, slow, latency)
		// Successes are checked too: one may be the outcome that brings
		// the window to MinRequests.
		if b != nil && p.s.CanaryPool != "" && p.brake.Load() == nil {
			sp.check(p, now)
		}
	default:
		if c := p.variants[variant]; c != nil {
			c.stats.record(now, failed, false, latency)
		}
	}
}

// check brakes the canary of plan p if it fails the brake at time now.
func (sp *Split) check(p *plan, now int64) {
	b := p.s.Brake
	c := p.canaryStats.sum(now)
	if c.requests < int64(b.MinRequests) || (c.failures == 0 && c.slow == 0) {
		return
	}
	reason := ""
	if cr := rate(c.failures, c.requests); cr > minErrorRate {
		st := p.stableStats.sum(now)
		if sr := rate(st.failures, st.requests); cr > b.ErrorRateMultiplier*sr {
			reason = fmt.Sprintf("canary error rate %.1f%% > %.1f x stable %.1f%% (%d of %d canary requests failed in %s)",
				cr*100, b.ErrorRateMultiplier, sr*100, c.failures, c.requests, b.Window)
		}
	}
	// More than requests - ceil(0.95 requests) slow outcomes puts the
	// nearest-rank p95 above the threshold.
	if t := b.LatencyP95Threshold; reason == "" && t > 0 && c.slow > c.requests-(95*c.requests+99)/100 {
		est, hi := p.canaryStats.p95(now)
		if est <= t {
			est = hi // the interpolation undershot: the bucket's bound is the honest figure
		}
		reason = fmt.Sprintf("canary p95 latency %s > threshold %s (%d of %d canary requests slower in %s)",
			roundDuration(est), t, c.slow, c.requests, b.Window)
	}
	if reason == "" || !p.brake.CompareAndSwap(nil, &brakeInfo{reason: reason, at: now}) {
		return
	}
	if sp.plan.Load() != p {
		return // Update or ResetBrake replaced the plan: this brake never applies
	}
	if fn := sp.onBrake.Load(); fn != nil {
		(*fn)(reason)
	}
}

// Stats returns the split's weights, brake and per-variant measurements.
func (sp *Split) Stats() Stats {
	p := sp.plan.Load()
	now := sp.clock()
	st := Stats{
		StablePool:       p.s.StablePool,
		CanaryPool:       p.s.CanaryPool,
		ConfiguredWeight: p.s.CanaryWeight,
		EffectiveWeight:  p.weight,
		Variants:         make(map[string]VariantStats, 2+len(p.cohorts)),
	}
	if bi := p.brake.Load(); bi != nil {
		st.EffectiveWeight = 0
		st.Braked = true
		st.BrakeReason = bi.reason
		st.BrakedAt = sp.wallBase.Add(time.Duration(bi.at - sp.monoBase))
	}
	st.Variants[VariantStable] = variantStats(p.stableStats, now)
	if p.s.CanaryPool != "" {
		st.Variants[VariantCanary] = variantStats(p.canaryStats, now)
	}
	for _, c := range p.cohorts {
		st.Variants[c.d.Variant] = variantStats(c.stats, now)
	}
	return st
}

func variantStats(r *rolling, now int64) VariantStats {
	c := r.sum(now)
	est, _ := r.p95(now)
	return VariantStats{
		Requests:  c.requests,
		ErrorRate: rate(c.failures, c.requests),
		P95Ms:     float64(est) / float64(time.Millisecond),
	}
}

func rate(failures, requests int64) float64 {
	if requests == 0 {
		return 0
	}
	return float64(failures) / float64(requests)
}

// roundDuration rounds d for a message: to the millisecond from 10ms up,
// else to 10µs.
func roundDuration(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}
