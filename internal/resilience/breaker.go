package resilience

import (
	"sync"
	"sync/atomic"
	"time"
)

// Breaker defaults, the same as the config's (config.CircuitBreaker), so the
// zero BreakerSettings behaves like an empty circuit_breaker block.
const (
	defaultErrorThreshold = 50
	defaultMinRequests    = 20
	defaultOpenDuration   = 30 * time.Second
	defaultHalfOpen       = 5
	// maxProbes bounds HalfOpenRequests by the bits the state word keeps
	// for the count of admitted probes.
	maxProbes = 1<<30 - 1
)

// BreakerSettings are the knobs of a Breaker (SPEC section 3,
// circuit_breaker). A zero field means the default named on it, so the zero
// BreakerSettings is a breaker with the config's defaults.
type BreakerSettings struct {
	// ErrorThresholdPercent opens the breaker when failures*100/requests
	// in the window reaches it, 1-100. Zero means 50; above 100 means 100.
	ErrorThresholdPercent int
	// MinRequests is how many outcomes the window must hold before the
	// breaker may open, so that a handful of early errors cannot trip it.
	// Zero means 20.
	MinRequests int
	// OpenDuration is how long the breaker rejects everything before it
	// lets probes through. Zero means 30s.
	OpenDuration time.Duration
	// Window is the length of the rolling window of outcomes, in 10
	// buckets. Zero means 10s.
	Window time.Duration
	// HalfOpenRequests is how many probes a half-open breaker admits; all
	// of them must succeed to close it. Zero means 5; at most 2^30-1.
	HalfOpenRequests int
}

// withDefaults returns s with zero and out-of-range fields replaced.
func (s BreakerSettings) withDefaults() BreakerSettings {
	if s.ErrorThresholdPercent <= 0 {
		s.ErrorThresholdPercent = defaultErrorThreshold
	}
	s.ErrorThresholdPercent = min(s.ErrorThresholdPercent, 100)
	if s.MinRequests <= 0 {
		s.MinRequests = defaultMinRequests
	}
	if s.OpenDuration <= 0 {
		s.OpenDuration = defaultOpenDuration
	}
	if s.Window <= 0 {
		s.Window = defaultWindow
	}
	if s.HalfOpenRequests <= 0 {
		s.HalfOpenRequests = defaultHalfOpen
	}
	s.HalfOpenRequests = min(s.HalfOpenRequests, maxProbes)
	return s
}

// State is a breaker's state. The zero State is not a valid state.
type State uint8

// Breaker states.
const (
	// Closed lets every request through and records its outcome.
	Closed State = iota + 1
	// Open rejects every request until OpenDuration has passed.
	Open
	// HalfOpen admits HalfOpenRequests probes and rejects the rest.
	HalfOpen
)

// String returns the state as the metrics and the access log spell it:
// "closed", "open", "half_open" ("unknown" for anything else).
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "unknown"
}

// Ticket is what Allow hands to an admitted request; give it back to Done
// (or Release) exactly once. It remembers the generation of the breaker
// (which period of which state) it was admitted in, so that an outcome
// arriving after the breaker moved on is ignored instead of being taken for
// a probe's or counted in a fresh window. The zero Ticket was never
// admitted: Done and Release ignore it. Tickets are small values, copied
// freely.
type Ticket struct {
	gen   uint32
	probe bool
}

// BreakerStats is a point-in-time view of a Breaker, for the admin API and
// metrics. Its fields are read one by one, not as one atomic snapshot.
type BreakerStats struct {
	// State is the current state. An open breaker whose OpenDuration has
	// passed stays Open until the next Allow.
	State State
	// Requests and Failures count the outcomes in the rolling window of
	// the current closed period (while open or half-open: of the period
	// that tripped, as it ages out). Probes are not counted.
	Requests, Failures int64
	// ErrorRate is Failures/Requests, 0-1; 0 when Requests is 0.
	ErrorRate float64
	// OpenedAt is when the breaker last opened; the zero Time if it never
	// did.
	OpenedAt time.Time
	// Trips counts the times the breaker opened, from closed or from
	// half-open.
	Trips uint64
}

// Breaker is a circuit breaker over a rolling window (SPEC section 7, in
// the manner of Envoy and resilience4j). Closed, it records the outcome of
// every request and opens when the window holds at least MinRequests
// outcomes of which at least ErrorThresholdPercent percent failed. Open, it
// rejects every request; the first Allow after OpenDuration moves it to
// half-open. Half-open, it admits HalfOpenRequests probes and rejects the
// rest; when all of them have succeeded it closes with a fresh window, and
// the first failed probe opens it again for another OpenDuration.
//
// Allow and Done on a closed breaker, and Allow on an open one, are
// lock-free and allocation-free; the mutex is taken only for state
// transitions and for the outcomes of the few half-open probes.
//
// The zero Breaker is not usable; create one with NewBreaker. All methods
// are safe for concurrent use.
type Breaker struct {
	// state packs generation<<32 | admitted probes<<2 | State. The
	// generation grows at every transition: tickets carry it, and
	// admitting a probe is a CAS on the same word, so a probe can never be
	// admitted for a half-open period that has already ended.
	state    atomic.Uint64
	settings atomic.Pointer[BreakerSettings] // with defaults applied
	period   atomic.Pointer[period]          // outcomes of the closed period
	openedAt atomic.Int64                    // clock reading of the last trip
	trips    atomic.Uint64

	clock    func() int64
	wallBase time.Time // wall time at clock reading monoBase, for OpenedAt
	monoBase int64

	// mu serialises transitions: every change of the generation, and the
	// fields below. It is never held while calling out.
	mu sync.Mutex
	// probeSuccesses counts the successful probes of the current
	// half-open period.
	probeSuccesses int
	onChange       func(from, to State)
	// pending holds transitions not yet reported to onChange; delivering
	// is true while a goroutine reports them, in order, outside mu.
	pending    []change
	delivering bool
}

// period is one closed period of a breaker: its generation and rolling
// window. A new period starts at every close, so an outcome can only land
// in the window of the period its ticket was admitted in.
type period struct {
	gen      uint32
	requests *Window
	failures *Window
}

type change struct{ from, to State }

const (
	stateBits = 2
	probeUnit = 1 << stateBits
)

func packState(gen, probes uint32, s State) uint64 {
	return uint64(gen)<<32 | uint64(probes)<<stateBits | uint64(s)
}

func genOf(v uint64) uint32     { return uint32(v >> 32) }
func probesOf(v uint64) uint32  { return uint32(v) >> stateBits }
func stateOf(v uint64) State    { return State(v & (probeUnit - 1)) }
func nextGen(gen uint32) uint32 { return max(gen+1, 1) } // 0 is the zero Ticket's

// NewBreaker returns a closed breaker with settings s (zero fields get
// their defaults). clock returns monotonic nanoseconds; nil means the real
// monotonic clock. It starts no goroutine.
func NewBreaker(s BreakerSettings, clock func() int64) *Breaker {
	if clock == nil {
		clock = monotonic()
	}
	s = s.withDefaults()
	b := &Breaker{clock: clock, wallBase: time.Now()}
	b.monoBase = clock()
	b.settings.Store(&s)
	b.period.Store(newPeriod(1, s.Window, clock, b.monoBase))
	b.state.Store(packState(1, 0, Closed))
	return b
}

func newPeriod(gen uint32, d time.Duration, clock func() int64, now int64) *period {
	return &period{
		gen:      gen,
		requests: newWindow(d, defaultBuckets, clock, now, 0),
		failures: newWindow(d, defaultBuckets, clock, now, 0),
	}
}

// Allow asks to send one request. It returns false when the breaker is
// open, or half-open with every probe slot taken: the caller must then
// answer circuit_open without contacting the upstream. Otherwise the
// request goes ahead and the caller must pass the ticket to Done (or
// Release) exactly once; a half-open probe that is never given back keeps
// its slot, and the breaker half-open, for good.
func (b *Breaker) Allow() (Ticket, bool) {
	v := b.state.Load()
	if stateOf(v) == Closed {
		return Ticket{gen: genOf(v)}, true
	}
	return b.allowSlow(v)
}

func (b *Breaker) allowSlow(v uint64) (Ticket, bool) {
	for {
		switch stateOf(v) {
		case Closed:
			return Ticket{gen: genOf(v)}, true
		case Open:
			s := b.settings.Load()
			if b.clock()-b.openedAt.Load() < int64(s.OpenDuration) {
				return Ticket{}, false
			}
			if t, ok := b.halfOpen(v); ok {
				return t, true
			}
		case HalfOpen:
			s := b.settings.Load()
			if probesOf(v) >= uint32(s.HalfOpenRequests) {
				return Ticket{}, false
			}
			if b.state.CompareAndSwap(v, v+probeUnit) {
				return Ticket{gen: genOf(v), probe: true}, true
			}
		}
		v = b.state.Load()
	}
}

// halfOpen moves the breaker, open in state word v, to half-open with the
// caller as its first probe. It reports false if another caller moved it
// first.
func (b *Breaker) halfOpen(v uint64) (Ticket, bool) {
	b.mu.Lock()
	if b.state.Load() != v {
		b.mu.Unlock()
		return Ticket{}, false
	}
	b.probeSuccesses = 0
	b.moveLocked(v, HalfOpen, 1)
	b.mu.Unlock()
	b.deliver()
	return Ticket{gen: nextGen(genOf(v)), probe: true}, true
}

// Done records the outcome of a request admitted with t: success false for
// a failure in the sense of SPEC section 7 (connect failure, reset,
// timeout, 5xx). An outcome whose ticket belongs to an earlier generation
// (the breaker tripped, or closed again, while the request was in flight)
// changes nothing.
func (b *Breaker) Done(t Ticket, success bool) {
	if t.probe {
		b.probeDone(t, success)
		return
	}
	p := b.period.Load()
	if p.gen != t.gen {
		return
	}
	now := b.clock()
	// Requests are added before failures and read after them, so the
	// failures read are not ahead of the requests read.
	p.requests.addAt(now, 1)
	if !success {
		p.failures.addAt(now, 1)
	}
	fails := p.failures.sumAt(now)
	if fails == 0 {
		return // the common healthy case: nothing can trip
	}
	// A success may trip the breaker too: it can be the outcome that
	// brings the window to MinRequests.
	s := b.settings.Load()
	req := p.requests.sumAt(now)
	if req >= int64(s.MinRequests) && fails*100 >= int64(s.ErrorThresholdPercent)*req {
		b.trip(t.gen, now)
	}
}

// trip opens the breaker, closed in generation gen.
func (b *Breaker) trip(gen uint32, now int64) {
	if v := b.state.Load(); genOf(v) != gen || stateOf(v) != Closed {
		return // already tripped by another outcome
	}
	b.mu.Lock()
	v := b.state.Load()
	if genOf(v) != gen || stateOf(v) != Closed {
		b.mu.Unlock()
		return
	}
	b.openLocked(v, now)
	b.mu.Unlock()
	b.deliver()
}

func (b *Breaker) probeDone(t Ticket, success bool) {
	now := b.clock()
	b.mu.Lock()
	v := b.state.Load()
	if genOf(v) != t.gen || stateOf(v) != HalfOpen {
		b.mu.Unlock()
		return
	}
	switch {
	case !success:
		b.openLocked(v, now)
	case b.probeSuccesses+1 >= b.settings.Load().HalfOpenRequests:
		b.closeLocked(v, now)
	default:
		b.probeSuccesses++
	}
	b.mu.Unlock()
	b.deliver()
}

// Release gives back a ticket without an outcome, for a request that ended
// for a reason that says nothing about the upstream (the client went away,
// the request was rejected before it was sent). A half-open probe slot
// becomes free again; a closed-state ticket records nothing.
func (b *Breaker) Release(t Ticket) {
	if !t.probe {
		return
	}
	for {
		v := b.state.Load()
		if genOf(v) != t.gen || stateOf(v) != HalfOpen || probesOf(v) == 0 {
			return
		}
		if b.state.CompareAndSwap(v, v-probeUnit) {
			return
		}
	}
}

// openLocked opens the breaker from state word v. b.mu must be held.
func (b *Breaker) openLocked(v uint64, now int64) {
	// openedAt before the state: whoever sees Open sees its time.
	b.openedAt.Store(now)
	b.trips.Add(1)
	b.moveLocked(v, Open, 0)
}

// closeLocked closes the breaker from state word v with a fresh window.
// b.mu must be held.
func (b *Breaker) closeLocked(v uint64, now int64) {
	// The period before the state: a ticket of the new generation must
	// find its window.
	gen := nextGen(genOf(v))
	b.period.Store(newPeriod(gen, b.settings.Load().Window, b.clock, now))
	b.moveLocked(v, Closed, 0)
}

// moveLocked moves the breaker from the generation of state word v to the
// next one, in state to with probes admitted, and queues the change for
// OnStateChange. b.mu must be held, which keeps the generation still; the
// loop only absorbs concurrent probe admissions.
func (b *Breaker) moveLocked(v uint64, to State, probes uint32) {
	next := packState(nextGen(genOf(v)), probes, to)
	for !b.state.CompareAndSwap(v, next) {
		v = b.state.Load()
	}
	if b.onChange != nil {
		b.pending = append(b.pending, change{from: stateOf(v), to: to})
	}
}

// Update applies new settings (zero fields get their defaults), for a
// config apply. The state, trip count and recorded outcomes are kept; the
// new thresholds apply from the next outcome, a new OpenDuration also to
// a breaker already open. A new Window length carries the outcomes now in
// the window over into the new one. A half-open breaker whose successful
// probes already reach a lowered HalfOpenRequests closes.
func (b *Breaker) Update(s BreakerSettings) {
	s = s.withDefaults()
	now := b.clock()
	b.mu.Lock()
	old := b.settings.Swap(&s)
	if s.Window != old.Window {
		p := b.period.Load()
		b.period.Store(&period{
			gen:      p.gen,
			requests: p.requests.resized(s.Window, now),
			failures: p.failures.resized(s.Window, now),
		})
	}
	if v := b.state.Load(); stateOf(v) == HalfOpen && b.probeSuccesses >= s.HalfOpenRequests {
		b.closeLocked(v, now)
	}
	b.mu.Unlock()
	b.deliver()
}

// Settings returns the settings in force, defaults applied.
func (b *Breaker) Settings() BreakerSettings { return *b.settings.Load() }

// State returns the current state.
func (b *Breaker) State() State { return stateOf(b.state.Load()) }

// Stats returns the breaker's state and counts; see BreakerStats.
func (b *Breaker) Stats() BreakerStats {
	st := BreakerStats{State: b.State(), Trips: b.trips.Load()}
	now := b.clock()
	p := b.period.Load()
	st.Requests = p.requests.sumAt(now)
	// The two windows are read one after the other: clamp so that a
	// failure recorded in between cannot give a rate above 1.
	st.Failures = min(p.failures.sumAt(now), st.Requests)
	if st.Requests > 0 {
		st.ErrorRate = float64(st.Failures) / float64(st.Requests)
	}
	if st.Trips > 0 {
		st.OpenedAt = b.wallBase.Add(time.Duration(b.openedAt.Load() - b.monoBase))
	}
	return st
}

// OnStateChange registers fn to be called after every state transition,
// for metrics (proxy_breaker_state, proxy_breaker_trips_total) and logs;
// nil unregisters. fn is called outside any lock, possibly on another
// goroutine than the one whose call made the transition, but never
// concurrently with itself and always in the order of the transitions, so
// a gauge set from it ends on the current state. fn may call the breaker's
// methods. Register it before the breaker is shared: transitions made
// earlier are not reported.
func (b *Breaker) OnStateChange(fn func(from, to State)) {
	b.mu.Lock()
	b.onChange = fn
	b.mu.Unlock()
}

// deliver reports the pending transitions to onChange, outside mu. One
// goroutine at a time delivers; one that finds another delivering leaves
// its transitions to it, so the callbacks run in order and no request
// waits for another's callbacks.
func (b *Breaker) deliver() {
	b.mu.Lock()
	if b.delivering || len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	b.delivering = true
	b.mu.Unlock()
	finished := false
	defer func() {
		if !finished { // fn panicked: let a later transition deliver
			b.mu.Lock()
			b.delivering = false
			b.mu.Unlock()
		}
	}()
	for {
		b.mu.Lock()
		batch, fn := b.pending, b.onChange
		b.pending = nil
		if len(batch) == 0 || fn == nil {
			b.delivering = false
			b.mu.Unlock()
			finished = true
			return
		}
		b.mu.Unlock()
		for _, c := range batch {
			fn(c.from, c.to)
		}
	}
}
