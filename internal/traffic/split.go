package traffic

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Variant names, as Decide returns them and Record takes them. They are
// also the keys of Stats.Variants and the canary_variant of the access log.
const (
	// VariantStable is a request sent to the stable pool by the split.
	VariantStable = "stable"
	// VariantCanary is a request sent to the canary pool by the split.
	VariantCanary = "canary"
	// CohortPrefix begins the variant of a request routed by cohort:
	// "cohort:" followed by the cohort name.
	CohortPrefix = "cohort:"
)

// Decision is where Decide sends a request.
type Decision struct {
	// Pool is the pool id; empty means the route's own pool (a plan with
	// no StablePool).
	Pool string
	// Variant is VariantStable, VariantCanary or CohortPrefix+name; pass
	// it to Record with the outcome.
	Variant string
}

// Split chooses the pool of each request of one route: cohort routing
// first, then a weighted stable/canary split, and it brakes the canary
// automatically when it does worse than stable.
//
// The split is exact, not random. Without a sticky key (or when a request
// lacks it) requests are numbered by one atomic counter and request n goes
// to the canary iff floor((n+1)w/100) > floor(nw/100), for weight w: any
// 100 consecutive such requests hold exactly w canary requests, spread
// evenly, so "10% over 10,000 requests" is exactly 1,000. With a sticky
// key, the key's bucket (a fixed hash mod 10000, see stickyBucket) goes to
// the canary iff it is below w*100: a key never changes variant while the
// weight stays, and raising the weight only moves keys from stable to
// canary.
//
// The brake watches both variants over the brake window (see Record) and,
// when the canary fails it, sets the effective weight to 0 until the
// route's plan changes (Update with different Settings) or ResetBrake.
// Cohort routing is not braked: a cohort is an explicit choice.
//
// Decide and Record are lock-free and allocation-free; Update and
// ResetBrake take a mutex the request path never takes. The zero Split is
// not usable; create one with NewSplit. All methods are safe for concurrent
// use.
type Split struct {
	// counter numbers the requests split without a key. Every such
	// request adds to it: keep it off the line of the read-mostly fields.
	counter atomic.Uint64
	_       [56]byte

	plan     atomic.Pointer[plan]
	onBrake  atomic.Pointer[func(reason string)]
	clock    func() int64
	wallBase time.Time // wall time at clock reading monoBase, for BrakedAt
	monoBase int64

	// mu serialises Update and ResetBrake, which replace plan.
	mu sync.Mutex
}

// plan is an immutable compiled Settings plus the measurements and brake
// that belong to it. The measurements are shared with the plans before and
// after it as long as they measure the same thing (see build); the brake
// belongs to this plan alone, so replacing the plan lifts it.
type plan struct {
	s      Settings // normalized
	weight int      // CanaryWeight, or 0 without a CanaryPool

	stable, canary Decision
	// cohorts maps a cohort name to its target; variants maps the
	// target's variant to it, for Record. Both nil without cohorts.
	cohortKey Key
	cohorts   map[string]*cohort
	variants  map[string]*cohort

	stableStats, canaryStats *rolling

	// brake is nil until the canary fails the brake under this plan.
	brake atomic.Pointer[brakeInfo]
}

type cohort struct {
	d     Decision
	stats *rolling
}

type brakeInfo struct {
	reason string
	at     int64 // clock reading
}

// NewSplit returns a split with settings s and no history. clock returns
// monotonic nanoseconds; nil means the real monotonic clock. It starts no
// goroutine.
func NewSplit(s Settings, clock func() int64) *Split {
	if clock == nil {
		start := time.Now()
		clock = func() int64 { return int64(time.Since(start)) }
	}
	sp := &Split{clock: clock, wallBase: time.Now()}
	sp.monoBase = clock()
	sp.plan.Store(build(s.normalized(), nil, false))
	return sp
}

// Update applies the route's plan from a config apply. The proxy calls it
// on every apply, so settings equal to those in force (after defaults)
// change nothing, and a brake holds. Different settings replace the plan
// and lift a brake: a changed plan (a new weight, a fixed canary pool) is
// the operator's answer to it. Measurements carry over while they still
// measure the same thing: stable's while StablePool and the window stay,
// the canary's while CanaryPool, the window and the latency threshold
// stay and no brake is lifted (otherwise the canary would brake again at
// once on the numbers that braked it), a cohort's while it maps to the
// same pool. Requests decided under the old plan and recorded after the
// change count in the new one.
func (sp *Split) Update(s Settings) {
	n := s.normalized()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	old := sp.plan.Load()
	if old.s.equal(n) {
		return
	}
	sp.plan.Store(build(n, old, old.brake.Load() != nil))
}

// ResetBrake lifts a brake without a config change, with a fresh canary
// window, and reports whether there was one to lift.
func (sp *Split) ResetBrake() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	old := sp.plan.Load()
	if old.brake.Load() == nil {
		return false
	}
	sp.plan.Store(build(old.s, old, true))
	return true
}

// OnBrake registers fn to be called once per brake with its reason, for
// the audit log and logs; nil unregisters. fn runs outside any lock, on
// the goroutine of the request whose outcome braked the canary, so it
// must return quickly (hand the record to a queue if writing it may
// block). A Record racing with Update or ResetBrake may, rarely, report a
// brake of the plan being replaced, which never takes effect.
func (sp *Split) OnBrake(fn func(reason string)) {
	if fn == nil {
		sp.onBrake.Store(nil)
		return
	}
	sp.onBrake.Store(&fn)
}

// build compiles normalized settings s into a plan, reusing what old
// measured when it still applies; freshCanary forces a new canary window.
func build(s Settings, old *plan, freshCanary bool) *plan {
	p := &plan{
		s:      s,
		stable: Decision{Pool: s.StablePool, Variant: VariantStable},
		canary: Decision{Pool: s.CanaryPool, Variant: VariantCanary},
	}
	if s.CanaryPool != "" {
		p.weight = s.CanaryWeight
	}
	w := s.window()
	same := old != nil && old.s.window() == w
	p.stableStats = newRolling(w)
	if same && old.s.StablePool == s.StablePool {
		p.stableStats = old.stableStats
	}
	p.canaryStats = newRolling(w)
	if same && !freshCanary && old.s.CanaryPool == s.CanaryPool && threshold(old.s) == threshold(s) {
		p.canaryStats = old.canaryStats
	}
	if c := s.Cohort; c != nil {
		p.cohortKey = Key{Kind: KeyHeader, Name: c.Header}
		if c.Header == "" {
			p.cohortKey = Key{Kind: KeyCookie, Name: c.Cookie}
		}
		p.cohorts = make(map[string]*cohort, len(c.Mappings))
		p.variants = make(map[string]*cohort, len(c.Mappings))
		for name, pool := range c.Mappings {
			co := &cohort{d: Decision{Pool: pool, Variant: CohortPrefix + name}, stats: newRolling(w)}
			if prev := old.cohort(name); same && prev != nil && prev.d.Pool == pool {
				co.stats = prev.stats
			}
			p.cohorts[name] = co
			p.variants[co.d.Variant] = co
		}
	}
	return p
}

// cohort returns the target of cohort name, nil if none (or p is nil).
func (p *plan) cohort(name string) *cohort {
	if p == nil {
		return nil
	}
	return p.cohorts[name]
}

func threshold(s Settings) time.Duration {
	if s.Brake == nil {
		return 0
	}
	return s.Brake.LatencyP95Threshold
}

// Decide returns the pool and variant of request r; clientIP is the
// client's address as the proxy determined it (trusted proxies applied),
// used by a client_ip sticky key; "" counts as absent. r may be nil when
// only clientIP matters. Decide reads r and does not keep it.
func (sp *Split) Decide(r *http.Request, clientIP string) Decision {
	p := sp.plan.Load()
	if p.cohorts != nil {
		if name, ok := keyValue(r, p.cohortKey, ""); ok {
			if c := p.cohorts[name]; c != nil {
				return c.d
			}
		}
	}
	w := uint64(p.weight)
	if w == 0 || p.brake.Load() != nil {
		return p.stable
	}
	if w >= 100 {
		return p.canary
	}
	if key, ok := keyValue(r, p.s.Sticky, clientIP); ok {
		if stickyBucket(key) < w*stickyBuckets/100 {
			return p.canary
		}
		return p.stable
	}
	// The pattern repeats every 100 requests, so n mod 100 gives the same
	// answer as n without the overflow of (n+1)*w.
	n := (sp.counter.Add(1) - 1) % 100
	if (n+1)*w/100 > n*w/100 {
		return p.canary
	}
	return p.stable
}
