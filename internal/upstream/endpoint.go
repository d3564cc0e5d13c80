package upstream

import (
	"crypto/tls"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/obs"
)

// endpointKey identifies an endpoint's runtime entry across snapshots: a new
// build reuses the entry (and so its connections and counters) exactly when
// all of these are unchanged. Weight is deliberately absent: it belongs to
// the pool view, so reweighting keeps the warm connections. The TLS part
// carries a fingerprint of the files' contents: connections made with a
// certificate that was since rotated must not outlive the apply that
// rotated it. Every field is comparable: the key is a map key.
type endpointKey struct {
	pool      string
	address   string
	protocol  Protocol
	transport TransportConfig // with defaults applied
	tls       tlsID           // zero for plaintext
}

// Endpoint is the long-lived runtime entry of one upstream endpoint of one
// pool: its transport (and idle connections), in-flight counter, metrics
// handle and health state (active verdict, ejection, failure counts). State
// creates it on the first Build that names it and releases it on the
// Commit that no longer references it; Pools of successive snapshots share
// it meanwhile, so its health survives config applies that keep its key.
// All methods are safe for concurrent use and none takes a lock. Endpoints
// are only created by State; the zero value is not usable.
type Endpoint struct {
	key  endpointKey
	rt   *transport
	pool *poolEntry

	inFlight atomic.Int64

	// down is the active checks' verdict: true once UnhealthyThreshold
	// probes failed in a row, false again after HealthyThreshold
	// successes. False (healthy) initially and whenever the pool has no
	// active checks. Written only by the endpoint's checker (and by Commit
	// when the checks are turned off).
	down atomic.Bool
	// ejectedUntil is the end (Unix nanoseconds of State's clock) of the
	// current passive or outlier ejection; 0, or a time past, means not
	// ejected. The monitor resets past deadlines to 0 so the request path
	// can skip the clock.
	ejectedUntil atomic.Int64
	// consecutive counts failed attempts since the last success or
	// ejection; both passive health and the consecutive-failure outlier
	// detector read it.
	consecutive atomic.Int64
	// timesEjected counts every ejection of the entry (admin view).
	timesEjected atomic.Int64
	// backoff is the outlier ejection multiplier: up by one per outlier
	// ejection, down by one per outlier interval spent un-ejected.
	backoff atomic.Int64
	// The current outlier interval's attempts, failures and summed latency
	// (nanoseconds), kept only when the error-rate or latency detector is
	// on; the evaluator swaps them to zero each interval.
	windowRequests atomic.Int64
	windowFailures atomic.Int64
	windowLatency  atomic.Int64

	// metricsOnce resolves metrics on first use rather than at Build, so a
	// build that is rejected never creates metric series.
	metricsOnce sync.Once
	obs         *obs.Metrics
	metrics     *obs.EndpointMetrics
}

// newEndpoint creates the entry for k in pool pe; tm is the endpoint's TLS
// material (its id is k.tls), nil for plaintext. It starts nothing.
func newEndpoint(k endpointKey, pe *poolEntry, m *obs.Metrics, tm *tlsMaterial) *Endpoint {
	var tc *tls.Config
	if tm != nil {
		tc = tm.clientConfig(k.address, k.protocol)
	}
	return &Endpoint{
		key:  k,
		rt:   newTransport(k.address, k.protocol, k.transport, tc),
		pool: pe,
		obs:  m,
	}
}

// Address returns the endpoint's "host:port" (normalised: lower-case host,
// no scheme).
func (e *Endpoint) Address() string { return e.key.address }

// Scheme returns the URL scheme to use for requests to the endpoint:
// "https" for a TLS endpoint, "http" otherwise (h2c included).
func (e *Endpoint) Scheme() string {
	if e.key.tls.on {
		return schemeHTTPS
	}
	return schemeHTTP
}

// PoolID returns the id of the pool the endpoint belongs to.
func (e *Endpoint) PoolID() string { return e.key.pool }

// Protocol returns the protocol spoken to the endpoint.
func (e *Endpoint) Protocol() Protocol { return e.key.protocol }

// Transport returns the endpoint's own RoundTripper. It always connects to
// Address, whatever host and scheme the request URL names, and returns a
// *DialError when the connection cannot be opened: TCP connect, TLS
// handshake (certificate verification included) or, for protocol http2,
// ALPN. Response bodies must be closed.
// The RoundTripper stays usable after the endpoint is released (requests
// of an old snapshot finish), but then keeps no connection alive.
func (e *Endpoint) Transport() http.RoundTripper { return e.rt }

// Acquire counts one request in flight to the endpoint; pair it with
// Release. least_request balancing reads the count.
func (e *Endpoint) Acquire() { e.inFlight.Add(1) }

// Release ends a request counted by Acquire.
func (e *Endpoint) Release() { e.inFlight.Add(-1) }

// InFlight returns the number of requests between Acquire and Release.
func (e *Endpoint) InFlight() int64 { return e.inFlight.Load() }

// Metrics returns the endpoint's instruments, resolved on first call. It is
// nil (records nothing) when State has no *obs.Metrics, or when the
// endpoint was released before its first use, so a straggling request
// cannot recreate the series of a pool that is gone.
func (e *Endpoint) Metrics() *obs.EndpointMetrics {
	e.metricsOnce.Do(e.resolveMetrics)
	return e.metrics
}

func (e *Endpoint) resolveMetrics() {
	e.metrics = e.obs.ForEndpoint(e.key.pool, e.key.address)
}

// release drains the endpoint's transport and freezes its metrics handle.
// Called by State with its lock held; idempotent.
func (e *Endpoint) release() {
	e.metricsOnce.Do(func() {})
	e.rt.release()
}

// Report feeds the outcome of one attempt on the endpoint to passive health
// and outlier detection. The proxy calls it after every attempt with
// success=false for what SPEC section 7 counts as a failure (connect
// failure, reset, timeout, 5xx response) and the attempt's latency (used by
// the latency detector). It is lock-free: a few atomic operations, and the
// clock is read only when the endpoint is ejected or is being ejected. It
// does nothing for a pool without passive health or outlier detection, for
// a pool whose settings have not been committed yet, and for an endpoint
// released by Commit.
//
// While the endpoint is ejected, reports do not count: they are the tail
// of requests sent before the ejection (which reset the failure count), or
// fail-open trickle requests. An ejection ends only when its time is up.
func (e *Endpoint) Report(success bool, latency time.Duration) {
	pe := e.pool
	if pe == nil {
		return
	}
	spec := pe.policy.Load()
	if spec == nil {
		return
	}
	if u := e.ejectedUntil.Load(); u != 0 && u > pe.nowNano() {
		return
	}
	if spec.windowed() {
		e.windowRequests.Add(1)
		e.windowLatency.Add(int64(latency))
		if !success {
			e.windowFailures.Add(1)
		}
	}
	if success {
		// Load first: a healthy endpoint's count is zero, and a store on
		// every success would bounce the cache line between cores.
		if e.consecutive.Load() != 0 {
			e.consecutive.Store(0)
		}
		return
	}
	n := e.consecutive.Add(1)
	if o := int64(spec.outlier.ConsecutiveFailures); o > 0 && n >= o && pe.ejectOutlier(e, spec.outlier, pe.nowNano()) {
		return
	}
	if p := int64(spec.passive.ConsecutiveFailures); p > 0 && n >= p {
		now := pe.nowNano()
		e.eject(now, now+int64(spec.passive.EjectionDuration))
	}
}

// Healthy reports whether the endpoint may take traffic now: its active
// checks (if any) pass and it is not ejected. It reflects the endpoint's
// state only; a pool view without health settings ignores it.
func (e *Endpoint) Healthy() bool {
	return !e.down.Load() && !e.Ejected()
}

// Ejected reports whether the endpoint is ejected now by passive health or
// outlier detection.
func (e *Endpoint) Ejected() bool {
	u := e.ejectedUntil.Load()
	return u != 0 && e.pool != nil && u > e.pool.nowNano()
}

// HealthState is a point-in-time view of an endpoint's health, for the
// admin API. Values are read one by one without a lock, so under traffic
// they may be a moment apart.
type HealthState struct {
	// Healthy is ActiveHealthy and not Ejected: the endpoint takes
	// traffic.
	Healthy bool
	// Ejected says a passive or outlier ejection is in force until
	// EjectedUntil (the zero time when not ejected).
	Ejected      bool
	EjectedUntil time.Time
	// ActiveHealthy is the active checks' verdict; true when the pool has
	// none.
	ActiveHealthy bool
	// ConsecutiveFailures counts failed attempts since the last success or
	// ejection (counted only while passive health or outlier detection is
	// on).
	ConsecutiveFailures int
	// TimesEjected counts the endpoint's ejections, passive and outlier,
	// since its entry was created.
	TimesEjected int
}

// HealthState returns the endpoint's current health state.
func (e *Endpoint) HealthState() HealthState {
	hs := HealthState{
		ActiveHealthy:       !e.down.Load(),
		ConsecutiveFailures: int(e.consecutive.Load()),
		TimesEjected:        int(e.timesEjected.Load()),
	}
	if u := e.ejectedUntil.Load(); u != 0 && e.pool != nil && u > e.pool.nowNano() {
		hs.Ejected, hs.EjectedUntil = true, time.Unix(0, u)
	}
	hs.Healthy = hs.ActiveHealthy && !hs.Ejected
	return hs
}

// availableAt is Healthy with the clock read at most once per request
// (and only when some ejection deadline is set).
func (e *Endpoint) availableAt(c *instant) bool {
	if e.down.Load() {
		return false
	}
	u := e.ejectedUntil.Load()
	return u == 0 || u <= c.nano()
}

// eject ejects the endpoint until the given time, uncapped (passive
// health), unless it already is ejected at now, and reports whether it
// did. The compare-and-swap makes concurrent failures that all crossed the
// threshold eject once; bumping the pool's ejection count makes a
// concurrent outlier decision count again.
func (e *Endpoint) eject(now, until int64) bool {
	old := e.ejectedUntil.Load()
	if old > now || !e.ejectedUntil.CompareAndSwap(old, until) {
		return false
	}
	e.pool.ejections.Add(1)
	e.ejected()
	return true
}

// ejected does the bookkeeping of a committed ejection.
func (e *Endpoint) ejected() {
	e.timesEjected.Add(1)
	e.consecutive.Store(0)
	e.pool.notify()
}

// instant reads a clock lazily, once: Select reads the time only when an
// endpoint it looks at has an ejection deadline.
type instant struct {
	now func() time.Time
	t   int64
}

func (c *instant) nano() int64 {
	if c.t == 0 {
		c.t = c.now().UnixNano()
	}
	return c.t
}
