package upstream

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/obs"
)

// poolEntry is the long-lived runtime state of one pool id, the per-pool
// counterpart of Endpoint: it outlives snapshots for as long as the pool id
// is active. It holds what the request path reads lock-free (the committed
// health settings and endpoint list, the fail-open token) and the health
// goroutines of the pool, which State owns: Commit starts and stops them,
// Close stops them all. Build creates an entry for a new pool id but starts
// nothing and changes nothing in an existing one, so a rejected build is
// invisible.
type poolEntry struct {
	id      string
	now     func() time.Time
	metrics *obs.Metrics

	// policy is the committed health settings when passive health or
	// outlier detection is on, else nil: what Endpoint.Report acts on.
	// Set by Commit.
	policy atomic.Pointer[healthSpec]
	// members is the committed endpoint list, for the ejection cap and the
	// healthy count. Set by Commit; the slice is never modified.
	members atomic.Pointer[[]*Endpoint]
	// ejections is bumped by every ejection of a member. An outlier
	// ejection counts the ejected members, sets its deadline, and then
	// commits only if ejections did not move meanwhile (else it rolls back
	// and counts again), so two endpoints failing at once cannot both slip
	// under max_ejection_percent, and no one waits for a lock.
	ejections atomic.Uint64
	// guarded says whether the committed view has any health settings,
	// that is whether the healthy count is computed or equals the total.
	guarded atomic.Bool
	// trickle is the earliest time (Unix nanoseconds) at which the next
	// fail-open request may pass when no endpoint is available.
	trickle atomic.Int64
	// wake pokes the monitor after a health transition so it republishes
	// the healthy count and re-arms its expiry timer. Capacity 1; senders
	// never block.
	wake chan struct{}

	// pubMu orders the publications of the healthy count (Commit and the
	// monitor) and guards the last values published.
	pubMu                   sync.Mutex
	pubHealthy, pubTotal    int
	published, pubForgotten bool

	// The fields below are guarded by State.mu: only Commit and Close
	// touch them.
	running  healthSpec             // settings the goroutines run with
	checkers map[*Endpoint]*routine // active checkers by endpoint
	monitor  *routine               // nil when the pool has no health settings
}

func newPoolEntry(id string, now func() time.Time, m *obs.Metrics) *poolEntry {
	return &poolEntry{
		id:       id,
		now:      now,
		metrics:  m,
		wake:     make(chan struct{}, 1),
		checkers: make(map[*Endpoint]*routine),
	}
}

// nowNano reads the State's clock.
func (pe *poolEntry) nowNano() int64 { return pe.now().UnixNano() }

// notify asks the monitor to republish; it never blocks.
func (pe *poolEntry) notify() {
	select {
	case pe.wake <- struct{}{}:
	default:
	}
}

// routine is one owned background goroutine: its stop signal (cancel) and
// its waiter (done).
type routine struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// goRoutine starts f on its own goroutine. The context is a root one on
// purpose: the goroutine belongs to State, not to the call that started
// it, and stop is its only end.
func goRoutine(f func(ctx context.Context)) *routine {
	ctx, cancel := context.WithCancel(context.Background())
	r := &routine{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		f(ctx)
	}()
	return r
}

// stop cancels the goroutine and waits for it to return.
func (r *routine) stop() {
	r.cancel()
	<-r.done
}

// activate makes p the pool's committed view: it publishes the view's
// endpoints and health settings to the request path, and starts, keeps or
// stops the health goroutines to match. Goroutines whose settings and
// endpoint are unchanged keep running with their state; checkers of
// endpoints no longer in the view stop. Called by Commit with State.mu
// held; it waits for the goroutines it stops.
func (pe *poolEntry) activate(p *Pool) {
	spec := p.health
	members := p.endpoints
	pe.members.Store(&members)
	pe.guarded.Store(spec.any())
	if spec.reported() {
		pe.policy.Store(&spec)
	} else {
		pe.policy.Store(nil)
		// Nothing will ever end or use these ejections; a later config
		// that turns ejection back on starts from a clean slate.
		for _, e := range members {
			e.ejectedUntil.Store(0)
			e.consecutive.Store(0)
		}
	}

	if !spec.activeOn() || spec.active != pe.running.active {
		pe.stopCheckers(nil)
	} else {
		keep := make(map[*Endpoint]bool, len(members))
		for _, e := range members {
			keep[e] = true
		}
		pe.stopCheckers(keep)
	}
	if spec.activeOn() {
		for _, e := range members {
			if pe.checkers[e] == nil {
				pe.checkers[e] = goRoutine(func(ctx context.Context) { e.check(ctx, spec.active) })
			}
		}
	} else {
		// Without checks no one would ever mark these healthy again.
		for _, e := range members {
			e.down.Store(false)
		}
	}

	switch {
	case spec.any() && pe.monitor == nil:
		pe.monitor = goRoutine(pe.monitorLoop)
	case !spec.any() && pe.monitor != nil:
		pe.monitor.stop()
		pe.monitor = nil
	}
	pe.running = spec
	pe.pubMu.Lock()
	pe.pubForgotten = false
	pe.pubMu.Unlock()
	pe.notify()
}

// stopCheckers stops the checkers of every endpoint not in keep (all of
// them for nil) and waits for them. Cancelling all first lets the probes
// in flight end in parallel.
func (pe *poolEntry) stopCheckers(keep map[*Endpoint]bool) {
	var stopped []*routine
	for e, r := range pe.checkers {
		if keep[e] {
			continue
		}
		r.cancel()
		stopped = append(stopped, r)
		delete(pe.checkers, e)
	}
	for _, r := range stopped {
		<-r.done
	}
}

// retire stops every goroutine of the pool and waits for them, and turns
// Report off for straggling requests; no publication follows. Called with
// State.mu held when the pool leaves the active set, and by Close.
func (pe *poolEntry) retire() {
	pe.policy.Store(nil)
	pe.stopCheckers(nil)
	if pe.monitor != nil {
		pe.monitor.stop()
		pe.monitor = nil
	}
	pe.running = healthSpec{}
	pe.guarded.Store(false)
	pe.pubMu.Lock()
	pe.pubForgotten = true
	pe.pubMu.Unlock()
}

// publish sets proxy_pool_healthy_endpoints and _total from the committed
// members, when they changed. Called by Commit and the monitor, never on
// the request path.
func (pe *poolEntry) publish() {
	pe.pubMu.Lock()
	defer pe.pubMu.Unlock()
	if pe.pubForgotten {
		return
	}
	mp := pe.members.Load()
	if mp == nil {
		return
	}
	total := len(*mp)
	healthy := total
	if pe.guarded.Load() {
		healthy = availableCount(*mp, pe.now)
	}
	if pe.published && healthy == pe.pubHealthy && total == pe.pubTotal {
		return
	}
	pe.pubHealthy, pe.pubTotal, pe.published = healthy, total, true
	pe.metrics.SetPoolEndpoints(pe.id, healthy, total)
}

// probeBodyLimit is how much of a probe's response body is read, so that
// the connection can be reused for the next probe (or a request); a longer
// body costs the connection instead.
const probeBodyLimit = 4 << 10

// probeUserAgent identifies health probes in upstream logs.
const probeUserAgent = "keel-health-check"

// check runs the active health checker of e until ctx ends: a probe at
// once, then one every Interval. It is the only writer of e.down while it
// runs. The consecutive success and failure counts live here, so a checker
// restarted with new settings counts afresh while the endpoint keeps its
// verdict.
func (e *Endpoint) check(ctx context.Context, hc HealthCheck) {
	url := e.Scheme() + "://" + e.Address() + hc.Path
	ticker := time.NewTicker(hc.Interval)
	defer ticker.Stop()
	var good, bad int
	for {
		ok := e.probe(ctx, url, hc)
		if ctx.Err() != nil {
			// Stopped mid-probe: the failure is ours, not the endpoint's.
			return
		}
		if ok {
			good, bad = good+1, 0
			if good >= hc.HealthyThreshold && e.down.Load() {
				e.down.Store(false)
				e.pool.notify()
			}
		} else {
			good, bad = 0, bad+1
			if bad >= hc.UnhealthyThreshold && !e.down.Load() {
				e.down.Store(true)
				e.pool.notify()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// probe sends one health check GET through the endpoint's own transport,
// so it exercises the same dialer and connection pool as the traffic it
// vouches for. It reports whether the status is in the expected range.
func (e *Endpoint) probe(ctx context.Context, url string, hc HealthCheck) bool {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", probeUserAgent)
	resp, err := e.rt.RoundTrip(req)
	if err != nil {
		return false
	}
	_, err = io.CopyN(io.Discard, resp.Body, probeBodyLimit)
	resp.Body.Close()
	if err != nil && err != io.EOF {
		// A body cut short by the timeout is a failed probe too.
		return false
	}
	return hc.StatusLo <= resp.StatusCode && resp.StatusCode <= hc.StatusHi
}
