package overload

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The adaptive limit's constants; see Limiter for the algorithm.
const (
	// A sample window closes at the first release that finds it holding
	// at least windowSamples samples and open for windowTime: often enough
	// to react within a second, rarely enough that the mean is not noise.
	windowTime    = 100 * time.Millisecond
	windowSamples = 10
	// clockEvery spares most releases a clock read (one can cost more
	// than the rest of Acquire and Release together): from the
	// 2*windowSamples-th sample of a window on, only every clockEvery-th
	// checks whether the window is due, so a busy window closes at most
	// clockEvery samples late.
	clockEvery = 16
	// longWindows is the span, in windows, of the long-term average
	// (Gradient2's longWindow); its first warmupWindows windows are a
	// plain mean, so that the first window alone does not set it.
	longWindows   = 600
	warmupWindows = 10
	// longDecay shrinks the long-term average when it is over twice the
	// short one (Gradient2), so that after a long bad period the limit
	// does not stay low while the average slowly forgets it.
	longDecay = 0.95
	// tolerance is how much slower than usual the upstream may get before
	// the limit shrinks (Gradient2's rttTolerance).
	tolerance = 1.5
	// minGradient caps a window's cut at half, so one outlier window
	// cannot collapse the limit (Gradient2).
	minGradient = 0.5
	// smoothing weighs the new limit against the old (Gradient2).
	smoothing = 0.2
	// minQueue is the least queue allowance (Gradient2's fixed 4); the
	// allowance is sqrt(limit) above 16.
	minQueue = 4
	// minLimit is the adaptive limit's floor, unless MaxConcurrent is
	// lower.
	minLimit = 4
)

// adaptive is a Limiter's gradient limit. Releases add samples to the
// open window with atomics; the release that closes a window computes the
// next limit under mu, taken with TryLock, so no release ever waits. A
// sample that lands while the window is being closed may count in the
// next window instead: the windows are approximate at their edges, which a
// mean over ten or more samples does not notice.
type adaptive struct {
	sum   atomic.Int64 // latencies of the undropped samples, ns
	n     atomic.Int64 // samples, dropped included
	drops atomic.Int64
	peak  atomic.Int64 // most in flight seen by a release in the window
	start atomic.Int64 // clock reading when the window opened

	// mu guards the fields below; Update takes it after Limiter.mu.
	mu       sync.Mutex
	estimate float64 // the limit, unrounded
	long     float64 // long-term average latency, ns
	windows  int     // windows folded into long, up to warmupWindows
}

// reset starts the adaptive limit at limit with no history. a.mu must be
// held, or a must not be shared yet.
func (a *adaptive) reset(limit float64, now int64) {
	a.estimate = limit
	a.long = 0
	a.windows = 0
	a.n.Store(0)
	a.sum.Store(0)
	a.drops.Store(0)
	a.peak.Store(0)
	a.start.Store(now)
}

// sample adds one release to the adaptive limit's window and closes the
// window when it is due.
func (l *Limiter) sample(latency time.Duration, dropped bool) {
	a := &l.adapt
	in := inflightOf(l.state.Load())
	for p := a.peak.Load(); in > p && !a.peak.CompareAndSwap(p, in); p = a.peak.Load() {
	}
	if dropped {
		a.drops.Add(1)
	} else {
		a.sum.Add(int64(max(latency, 0)))
	}
	if !checkDue(a.n.Add(1)) {
		return
	}
	now := l.clock()
	if now-a.start.Load() < int64(windowTime) || !a.mu.TryLock() {
		return
	}
	c := l.cfg.Load()
	// Re-check under mu: another release may have just closed the window.
	if !c.Adaptive || a.n.Load() < windowSamples || now-a.start.Load() < int64(windowTime) {
		a.mu.Unlock()
		return
	}
	a.start.Store(now)
	n, sum, drops, peak := a.n.Swap(0), a.sum.Swap(0), a.drops.Swap(0), a.peak.Swap(0)
	next := int64(a.next(c, n, sum, drops, peak))
	prev := l.limit.Swap(next)
	a.mu.Unlock()
	if next > prev && queuedOf(l.state.Load()) > 0 {
		l.mu.Lock()
		l.dispatchLocked()
		l.mu.Unlock()
	}
}

// next folds a closed window (n samples of which drops dropped, the
// others' latencies summing to sum ns, at most peak in flight) into the
// estimate and returns it. a.mu must be held.
func (a *adaptive) next(c *config, n, sum, drops, peak int64) float64 {
	gradient := 1.0
	if good := n - drops; good > 0 && sum > 0 {
		short := float64(sum) / float64(good)
		if a.windows < warmupWindows {
			a.windows++
			a.long += (short - a.long) / float64(a.windows)
		} else {
			a.long += (short - a.long) * 2 / (longWindows + 1)
		}
		if a.long > 2*short {
			a.long *= longDecay
		}
		gradient = min(max(tolerance*a.long/short, minGradient), 1)
	}
	if drops > 0 {
		gradient = minGradient
	}
	est := a.estimate
	limit := est*gradient + max(minQueue, math.Sqrt(est))
	limit = est*(1-smoothing) + limit*smoothing
	if limit > est && float64(peak) <= est/2 {
		// Application-limited: an idle limit says nothing about what the
		// upstream can take, and growing it would let a burst through.
		limit = est
	}
	hi := float64(c.MaxConcurrent)
	a.estimate = min(max(limit, min(minLimit, hi)), hi)
	return a.estimate
}

// checkDue reports whether the release that brings the window to n
// samples reads the clock to see whether the window is due.
func checkDue(n int64) bool {
	return n >= windowSamples && (n < 2*windowSamples || n%clockEvery == 0)
}
