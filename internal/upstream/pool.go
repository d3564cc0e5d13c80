package upstream

import "net/http"

// Pool is the view of one pool built for one snapshot: its endpoints in
// config order, their weights and the balancer over them. It is immutable
// once built and safe for concurrent use; the runtime state it points at
// (Endpoints) is shared with the pools of other snapshots and is itself safe
// for concurrent use. Pools are created by State.Build; the zero value has
// no endpoints, its Pick returns nil and its Select ErrNoHealthyUpstream.
type Pool struct {
	id        string
	balancer  Balancer
	protocol  Protocol
	hashKey   HashKey
	endpoints []*Endpoint
	weights   []int
	picker    picker

	// health is the view's health settings; guarded caches health.any():
	// whether Select must look at endpoint health.
	health  healthSpec
	guarded bool
	// entry is the pool id's long-lived runtime state (nil only for the
	// zero Pool).
	entry *poolEntry
}

// newPool builds the view and its balancer. spec.cfg must be validated and
// defaulted, and endpoints parallel to spec.weights and non-empty.
func newPool(spec poolSpec, entry *poolEntry, endpoints []*Endpoint, src randSource) *Pool {
	cfg, weights := spec.cfg, spec.weights
	p := &Pool{
		id:        cfg.ID,
		balancer:  cfg.Balancer,
		protocol:  cfg.Protocol,
		hashKey:   cfg.HashKey,
		endpoints: endpoints,
		weights:   weights,
		health:    spec.health,
		guarded:   spec.health.any(),
		entry:     entry,
	}
	switch cfg.Balancer {
	case WeightedRoundRobin:
		p.picker = newWeightedRoundRobin(reduceWeights(weights), src)
	case LeastRequest:
		p.picker = &leastRequest{endpoints: endpoints, weights: newWeightTable(weights), src: src}
	case Random:
		p.picker = &random{weights: newWeightTable(weights), src: src}
	case ConsistentHash:
		addrs := make([]string, len(endpoints))
		for i, e := range endpoints {
			addrs[i] = e.Address()
		}
		p.picker = newConsistentHash(cfg.HashKey, addrs, weights, src)
	default:
		p.picker = &roundRobin{n: uint64(len(endpoints))}
	}
	return p
}

// ID returns the pool's config id.
func (p *Pool) ID() string { return p.id }

// Balancer returns the pool's balancing algorithm (never zero).
func (p *Pool) Balancer() Balancer { return p.balancer }

// Protocol returns the protocol spoken to the pool's endpoints (never zero).
func (p *Pool) Protocol() Protocol { return p.protocol }

// HashKey returns the consistent-hash key; the zero HashKey for other
// balancers.
func (p *Pool) HashKey() HashKey { return p.hashKey }

// Health returns the pool's active check settings (defaults applied), nil
// when it has none.
func (p *Pool) Health() *HealthCheck {
	if !p.health.activeOn() {
		return nil
	}
	h := p.health.active
	return &h
}

// Passive returns the pool's passive health settings (defaults applied),
// nil when it has none.
func (p *Pool) Passive() *PassiveHealth {
	if !p.health.passiveOn() {
		return nil
	}
	h := p.health.passive
	return &h
}

// Outlier returns the pool's outlier detection settings (defaults applied),
// nil when it has none.
func (p *Pool) Outlier() *OutlierDetection {
	if !p.health.outlierOn() {
		return nil
	}
	o := p.health.outlier
	return &o
}

// Endpoints returns the pool's endpoints in config order. The slice is
// shared: callers must not modify it.
func (p *Pool) Endpoints() []*Endpoint { return p.endpoints }

// Weight returns the weight of Endpoints()[i] in this view (at least 1).
func (p *Pool) Weight(i int) int { return p.weights[i] }

// Pick chooses an endpoint for r with the pool's balancer, ignoring
// endpoint health (Select honours it). clientIP feeds client_ip hashing; r
// may be nil for balancers that do not read it. exclude (may be nil) is
// avoided whenever the pool has another endpoint, for retries and hedges.
// Pick returns nil only for a pool without endpoints, which Build never
// produces. It allocates nothing.
func (p *Pool) Pick(r *http.Request, clientIP string, exclude *Endpoint) *Endpoint {
	if len(p.endpoints) == 0 {
		return nil
	}
	return p.endpoints[p.picker.pick(r, clientIP, p.excludeIndex(exclude))]
}
