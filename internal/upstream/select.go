package upstream

import (
	"errors"
	"net/http"
	"time"
)

// ErrNoHealthyUpstream is returned by Select when no endpoint of the pool is
// available and the pool's fail-open trickle is spent (SPEC category
// no_healthy_upstream, 503).
var ErrNoHealthyUpstream = errors.New("no healthy upstream")

// trickleEvery is the fail-open rate of a pool with no available endpoint:
// one request per second reaches an endpoint anyway (SPEC section 7), so a
// recovered backend is noticed by passive health even without active
// checks, and a mass ejection caused by the proxy's own view cannot take
// the pool out entirely.
const trickleEvery = time.Second

// Select chooses an endpoint for r like Pick, but never one that is
// unhealthy (active checks) or ejected (passive health, outlier detection)
// while an available one exists. The balancer picks first; when its choice
// is unavailable Select moves on from it: along the hash ring for
// consistent hashing with a key (so the keys of a down endpoint spread the
// way they would if it were removed, and retries of one key agree), to the
// next endpoint in config order otherwise. exclude (may be nil) is avoided
// whenever another available endpoint exists, for retries and hedges.
//
// When no endpoint is available the pool fails open at a trickle: at most
// one request per second per pool gets the balancer's pick anyway, the rest
// get ErrNoHealthyUpstream. The token is one compare-and-swap on a
// timestamp shared by every snapshot's view of the pool.
//
// A pool built without health settings selects exactly as Pick (one branch
// more); Select then fails only for a pool without endpoints. Select is
// safe for concurrent use and allocates nothing.
func (p *Pool) Select(r *http.Request, clientIP string, exclude *Endpoint) (*Endpoint, error) {
	if !p.guarded {
		if e := p.Pick(r, clientIP, exclude); e != nil {
			return e, nil
		}
		return nil, ErrNoHealthyUpstream
	}
	ex := p.excludeIndex(exclude)
	i := p.picker.pick(r, clientIP, ex)
	c := instant{now: p.entry.now}
	if e := p.endpoints[i]; e.availableAt(&c) {
		return e, nil
	}
	if j := p.fallback(r, clientIP, i, ex, &c); j >= 0 {
		return p.endpoints[j], nil
	}
	if p.entry.allowTrickle(c.nano()) {
		return p.endpoints[i], nil
	}
	return nil, ErrNoHealthyUpstream
}

// excludeIndex returns exclude's index for the pickers, or -1 when there is
// nothing to exclude (no endpoint given, not in the pool, or the pool's
// only endpoint).
func (p *Pool) excludeIndex(exclude *Endpoint) int {
	if exclude == nil || len(p.endpoints) < 2 {
		return -1
	}
	for i, e := range p.endpoints {
		if e == exclude {
			return i
		}
	}
	return -1
}

// fallback finds an available endpoint when the balancer's pick i is not
// one: another than ex if any is available, else ex if available, else -1.
func (p *Pool) fallback(r *http.Request, clientIP string, i, ex int, c *instant) int {
	if ch, ok := p.picker.(*consistentHash); ok {
		if k := ch.keyOf(r, clientIP); k != "" {
			return p.nextOnRing(ch, k, ex, c)
		}
		// Without a key the pick was a weighted random one: moving on in
		// config order is as good as anything.
	}
	n := len(p.endpoints)
	for k := 1; k < n; k++ {
		j := (i + k) % n
		if j != ex && p.endpoints[j].availableAt(c) {
			return j
		}
	}
	return p.lastResort(ex, c)
}

// lastResort returns ex when it is available, else -1.
func (p *Pool) lastResort(ex int, c *instant) int {
	if ex >= 0 && p.endpoints[ex].availableAt(c) {
		return ex
	}
	return -1
}

// nextOnRing walks the hash ring from key to the first point whose owner
// is available and not ex, falling back to lastResort. A linear scan first
// makes sure the walk ends, and ends soon: unavailable endpoints may own
// thousands of points, but with one available endpoint of n the walk
// meets one of its points after about n steps.
func (p *Pool) nextOnRing(ch *consistentHash, key string, ex int, c *instant) int {
	found := false
	for j, e := range p.endpoints {
		if j != ex && e.availableAt(c) {
			found = true
			break
		}
	}
	if !found {
		return p.lastResort(ex, c)
	}
	pos := ch.search(hash(key))
	for {
		if o := int(ch.owners[pos]); o != ex && p.endpoints[o].availableAt(c) {
			return o
		}
		if pos++; pos == len(ch.owners) {
			pos = 0
		}
	}
}

// allowTrickle takes the pool's fail-open token at now (Unix nanoseconds):
// true for the first caller once a second has passed since the last taker.
func (pe *poolEntry) allowTrickle(now int64) bool {
	next := pe.trickle.Load()
	if now < next {
		return false
	}
	return pe.trickle.CompareAndSwap(next, now+int64(trickleEvery))
}

// HealthyCount returns how many of the pool's endpoints are available now
// (Healthy); all of them for a pool built without health settings, as
// Select ignores health there. O(endpoints); for status output.
func (p *Pool) HealthyCount() int {
	if !p.guarded {
		return len(p.endpoints)
	}
	return availableCount(p.endpoints, p.entry.now)
}

// availableCount returns how many of eps are available at now, reading the
// clock at most once.
func availableCount(eps []*Endpoint, now func() time.Time) int {
	c := instant{now: now}
	n := 0
	for _, e := range eps {
		if e.availableAt(&c) {
			n++
		}
	}
	return n
}
