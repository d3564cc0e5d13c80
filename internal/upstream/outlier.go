package upstream

import (
	"context"
	"time"
)

// Outlier detection constants (SPEC section 7 leaves them to us; the
// values follow Envoy's spirit at a smaller scale).
const (
	// minWindowRequests is the fewest attempts in an interval for the
	// error-rate and latency detectors to judge an endpoint: below it, one
	// unlucky request would be a 100% error rate.
	minWindowRequests = 5
	// maxBackoff caps the ejection multiplier: the n-th ejection in a row
	// lasts at most 10 × BaseEjectionTime ...
	maxBackoff = 10
	// ... and at most maxEjectionTime (Envoy's max_ejection_time default),
	// unless BaseEjectionTime itself is longer.
	maxEjectionTime = 300 * time.Second
)

// ejectionTime is how long an outlier ejection with multiplier n lasts:
// base × n, capped at 10 × base and at 300s, never below base.
func ejectionTime(base time.Duration, n int64) time.Duration {
	d := base * time.Duration(min(max(n, 1), maxBackoff))
	if d > maxEjectionTime {
		d = max(maxEjectionTime, base)
	}
	return d
}

// ejectOutlier ejects e for outlier detection at now when the cap allows
// it, for the time its backoff gives, and reports whether e is ejected
// when it returns. It is lock-free: the deadline is set tentatively and
// kept only if no other ejection in the pool committed since the ejected
// endpoints were counted; otherwise it is rolled back and the decision
// made again against the new count. Every retry follows another ejection,
// of which there can be at most one per endpoint at a time, so the loop
// ends.
func (pe *poolEntry) ejectOutlier(e *Endpoint, o OutlierDetection, now int64) bool {
	for {
		epoch := pe.ejections.Load()
		old := e.ejectedUntil.Load()
		if old > now {
			return true
		}
		if !capAllows(pe.ejectedAt(now), pe.memberCount(), o.MaxEjectionPercent) {
			return false
		}
		until := now + int64(ejectionTime(o.BaseEjectionTime, e.backoff.Load()+1))
		if !e.ejectedUntil.CompareAndSwap(old, until) {
			continue
		}
		if pe.ejections.CompareAndSwap(epoch, epoch+1) {
			e.backoff.Add(1)
			e.ejected()
			return true
		}
		// Nothing else writes a future deadline, so this cannot fail.
		e.ejectedUntil.CompareAndSwap(until, old)
	}
}

// capAllows says whether one more ejection keeps the ejected endpoints
// within maxPercent of total, rounding down: (ejected+1)/total <=
// maxPercent/100. Envoy instead allows an ejection while ejected/total is
// below the cap, which overshoots it (2 of 3 endpoints at 50%); SPEC
// section 7 says never more than max_ejection_percent.
func capAllows(ejected, total, maxPercent int) bool {
	return (ejected+1)*100 <= maxPercent*total
}

// ejectedAt counts the committed endpoints ejected at now.
func (pe *poolEntry) ejectedAt(now int64) int {
	mp := pe.members.Load()
	if mp == nil {
		return 0
	}
	n := 0
	for _, e := range *mp {
		if e.ejectedUntil.Load() > now {
			n++
		}
	}
	return n
}

func (pe *poolEntry) memberCount() int {
	if mp := pe.members.Load(); mp != nil {
		return len(*mp)
	}
	return 0
}

// evaluate ends one outlier interval at now: for every committed endpoint
// not ejected, it takes the interval's counts and ejects it (cap allowing,
// in config order) when it made at least minWindowRequests attempts and its
// failure percentage reached ErrorRatePercent or its mean latency exceeded
// LatencyThreshold. An endpoint that stays in has its ejection multiplier
// lowered by one. Called by the monitor, and by tests with a fake clock.
func (pe *poolEntry) evaluate(o OutlierDetection, now int64) {
	mp := pe.members.Load()
	if mp == nil {
		return
	}
	for _, e := range *mp {
		reqs := e.windowRequests.Swap(0)
		fails := e.windowFailures.Swap(0)
		latency := e.windowLatency.Swap(0)
		if e.ejectedUntil.Load() > now {
			continue
		}
		if reqs >= minWindowRequests && outlying(o, reqs, fails, latency) {
			pe.ejectOutlier(e, o, now)
			continue
		}
		if b := e.backoff.Load(); b > 0 {
			// A concurrent ejection's increment wins over the decay.
			e.backoff.CompareAndSwap(b, b-1)
		}
	}
}

// outlying applies the error-rate and latency detectors to one interval's
// counts (reqs > 0).
func outlying(o OutlierDetection, reqs, fails, latency int64) bool {
	if o.ErrorRatePercent > 0 && fails*100 >= int64(o.ErrorRatePercent)*reqs {
		return true
	}
	return o.LatencyThreshold > 0 && time.Duration(latency/reqs) > o.LatencyThreshold
}

// monitorLoop is the pool's health goroutine, running while the pool is
// active with any health settings. It is the single publisher of
// proxy_pool_healthy_endpoints after Commit: transitions (an ejection, a
// checker verdict) only poke it through wake, so the request path never
// touches the metrics registry. It also wakes when the earliest ejection
// ends, to clear the deadline and republish, and, with outlier detection
// on, every Interval to evaluate (and lower ejection multipliers). It
// reads the committed settings on every turn, so a Commit that changes
// them needs no restart.
func (pe *poolEntry) monitorLoop(ctx context.Context) {
	expiry := time.NewTimer(time.Hour)
	expiry.Stop()
	defer expiry.Stop()
	var ticker *time.Ticker
	var tick <-chan time.Time
	var interval time.Duration
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		var o OutlierDetection
		if spec := pe.policy.Load(); spec != nil && spec.outlierOn() {
			o = spec.outlier
		}
		if o.Interval != interval {
			if ticker != nil {
				ticker.Stop()
				ticker, tick = nil, nil
			}
			if o.Interval > 0 {
				ticker = time.NewTicker(o.Interval)
				tick = ticker.C
			}
			interval = o.Interval
		}
		now := pe.nowNano()
		next := pe.sweep(now)
		pe.publish()
		if next != 0 {
			expiry.Reset(time.Duration(next - now))
		} else {
			expiry.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-pe.wake:
		case <-expiry.C:
		case <-tick:
			pe.evaluate(o, pe.nowNano())
		}
	}
}

// sweep clears the ejection deadlines that passed by now and returns the
// earliest one still ahead (0 if none).
func (pe *poolEntry) sweep(now int64) int64 {
	mp := pe.members.Load()
	if mp == nil {
		return 0
	}
	var next int64
	for _, e := range *mp {
		u := e.ejectedUntil.Load()
		switch {
		case u == 0:
		case u <= now:
			// A concurrent new ejection wins the swap.
			e.ejectedUntil.CompareAndSwap(u, 0)
		case next == 0 || u < next:
			next = u
		}
	}
	return next
}
