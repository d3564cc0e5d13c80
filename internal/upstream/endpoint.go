package upstream

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/keelproxy/keel/internal/obs"
)

// endpointKey identifies an endpoint's runtime entry across snapshots: a new
// build reuses the entry (and so its connections and counters) exactly when
// all of these are unchanged. Weight is deliberately absent: it belongs to
// the pool view, so reweighting keeps the warm connections.
type endpointKey struct {
	pool      string
	address   string
	protocol  Protocol
	transport TransportConfig // with defaults applied
}

// Endpoint is the long-lived runtime entry of one upstream endpoint of one
// pool: its transport (and idle connections), in-flight counter and metrics
// handle. State creates it on the first Build that names it and releases it
// on the Commit that no longer references it; Pools of successive snapshots
// share it meanwhile. All methods are safe for concurrent use. Endpoints are
// only created by State; the zero value is not usable.
type Endpoint struct {
	key endpointKey
	rt  *transport

	inFlight atomic.Int64

	// metricsOnce resolves metrics on first use rather than at Build, so a
	// build that is rejected never creates metric series.
	metricsOnce sync.Once
	obs         *obs.Metrics
	metrics     *obs.EndpointMetrics
}

// newEndpoint creates the entry for k. It starts nothing.
func newEndpoint(k endpointKey, m *obs.Metrics) *Endpoint {
	return &Endpoint{
		key: k,
		rt:  newTransport(k.address, k.protocol, k.transport),
		obs: m,
	}
}

// Address returns the endpoint's "host:port" (normalised: lower-case host,
// no scheme).
func (e *Endpoint) Address() string { return e.key.address }

// Scheme returns the URL scheme to use for requests to the endpoint: "http"
// for every protocol supported so far (h2c included).
func (e *Endpoint) Scheme() string { return "http" }

// PoolID returns the id of the pool the endpoint belongs to.
func (e *Endpoint) PoolID() string { return e.key.pool }

// Protocol returns the protocol spoken to the endpoint.
func (e *Endpoint) Protocol() Protocol { return e.key.protocol }

// Transport returns the endpoint's own RoundTripper. It always connects to
// Address, whatever host the request URL names, and returns a *DialError
// when the TCP connection cannot be opened. Response bodies must be closed.
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
