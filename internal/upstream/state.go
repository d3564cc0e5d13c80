package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/keelproxy/keel/internal/httpwire"
	"github.com/keelproxy/keel/internal/obs"
)

// ErrClosed is returned by Build after Close.
var ErrClosed = errors.New("upstream state closed")

// State is the registry of per-pool and per-endpoint runtime state that
// survives snapshot swaps (SPEC section 1). main creates one with NewState
// and owns it; the control plane calls Build for every pool of a new
// snapshot, swaps, then calls Commit with the pools now active; Close
// releases everything at shutdown. Dry runs use a throwaway State.
//
// Build, Commit and Close are safe for concurrent use, but the apply
// pipeline must serialise Build-swap-Commit: a Commit issued between
// another apply's Build and its swap releases the endpoints that build
// added. Connections are opened by the transports on demand.
//
// State owns the health goroutines of the active pools (SPEC section 7):
// per pool with any health settings one monitor (which publishes
// proxy_pool_healthy_endpoints, ends ejections and, with outlier
// detection on, evaluates every outlier interval), and per endpoint of
// a pool with active checks one checker. NewState and Build start none;
// Commit starts them for the pools it activates and stops (and waits for)
// those of the pools it removes, or whose active check settings changed,
// and the checkers of removed endpoints. An apply that keeps a pool id,
// its check settings and an endpoint keeps that checker running with its
// state. Close stops them all and waits.
type State struct {
	metrics *obs.Metrics
	// src feeds the random balancers; tests replace it for determinism.
	src randSource
	// now is the clock of ejection deadlines and the fail-open trickle;
	// time.Now except in tests, which set it before the first Build.
	now func() time.Time

	// mu guards the fields below; held only by control-plane calls, never
	// on the request path.
	mu      sync.Mutex
	entries map[endpointKey]*Endpoint
	// pools holds the runtime entry of every pool id built since the last
	// Commit or committed by it.
	pools map[string]*poolEntry
	// active is the set of pool ids of the last Commit, whose metric
	// series exist.
	active map[string]struct{}
	closed bool
}

// NewState returns an empty registry. m may be nil (no metrics).
func NewState(m *obs.Metrics) *State {
	return &State{
		metrics: m,
		src:     runtimeRand{},
		now:     time.Now,
		entries: make(map[endpointKey]*Endpoint),
		pools:   make(map[string]*poolEntry),
		active:  make(map[string]struct{}),
	}
}

// Build validates cfg and returns an immutable Pool for a new snapshot. For
// each endpoint it reuses the runtime Endpoint already known under the same
// key (pool id, address, protocol, transport settings with defaults
// applied, and TLS settings with the contents of their files), with its
// idle connections, in-flight counter and metrics handle and health state,
// or creates a new one. It reads the TLS files of cfg (before taking the
// State's lock), so a bad file fails the build. It never disturbs live
// traffic, never removes anything and starts no goroutine: a build that is
// then rejected changes nothing observable (new entries open no
// connections and create no metric series until used, and health settings
// take effect only at Commit), and the next Commit reclaims its new
// entries.
func (s *State) Build(cfg PoolConfig) (*Pool, error) {
	spec, err := validate(cfg)
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", cfg.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	pe := s.pools[spec.cfg.ID]
	if pe == nil {
		pe = newPoolEntry(spec.cfg.ID, s.now, s.metrics)
		s.pools[spec.cfg.ID] = pe
	}
	endpoints := make([]*Endpoint, len(spec.addrs))
	for i, addr := range spec.addrs {
		tm := spec.tlsFor(i)
		k := endpointKey{pool: spec.cfg.ID, address: addr, protocol: spec.cfg.Protocol, transport: spec.transport}
		if tm != nil {
			k.tls = tm.id
		}
		e := s.entries[k]
		if e == nil {
			e = newEndpoint(k, pe, s.metrics, tm)
			s.entries[k] = e
		}
		endpoints[i] = e
	}
	return newPool(spec, pe, endpoints, s.src), nil
}

// poolSpec is a validated PoolConfig with defaults applied.
type poolSpec struct {
	cfg       PoolConfig      // Balancer and Protocol set; HashKey only for ConsistentHash; TLS nil
	addrs     []string        // normalised, distinct
	weights   []int           // at least 1
	secure    []bool          // parallel to addrs: the endpoint speaks TLS
	transport TransportConfig // defaults applied
	health    healthSpec      // defaults applied; zero parts are off
	// tls is the pool's TLS settings, loaded; nil when it has none. An
	// https:// endpoint of a pool without settings uses defaultTLS.
	tls        *tlsMaterial
	defaultTLS *tlsMaterial
}

// tlsFor returns the TLS material of endpoint i, or nil for plaintext.
func (s *poolSpec) tlsFor(i int) *tlsMaterial {
	switch {
	case !s.secure[i]:
		return nil
	case s.tls != nil:
		return s.tls
	}
	return s.defaultTLS
}

// validate checks cfg and returns it with defaults applied.
func validate(cfg PoolConfig) (poolSpec, error) {
	if cfg.ID == "" {
		return poolSpec{}, errors.New("empty id")
	}
	if len(cfg.Endpoints) == 0 {
		return poolSpec{}, errors.New("no endpoints")
	}
	if cfg.Balancer == 0 {
		cfg.Balancer = RoundRobin
	}
	if cfg.Balancer < RoundRobin || cfg.Balancer > ConsistentHash {
		return poolSpec{}, fmt.Errorf("invalid balancer %v", cfg.Balancer)
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = HTTP1
	}
	if cfg.Protocol < HTTP1 || cfg.Protocol > H2C {
		return poolSpec{}, fmt.Errorf("invalid protocol %v", cfg.Protocol)
	}
	if cfg.Balancer != ConsistentHash {
		cfg.HashKey = HashKey{}
	} else if err := validHashKey(cfg.HashKey); err != nil {
		return poolSpec{}, err
	}
	if cfg.HashKey.Kind == HashHeader {
		// Pick indexes r.Header directly, which needs the canonical form.
		cfg.HashKey.Name = http.CanonicalHeaderKey(cfg.HashKey.Name)
	}
	tc, err := cfg.Transport.withDefaults()
	if err != nil {
		return poolSpec{}, err
	}
	health, err := validHealth(cfg)
	if err != nil {
		return poolSpec{}, err
	}
	addrs, weights, secure, err := validEndpoints(cfg)
	if err != nil {
		return poolSpec{}, err
	}
	spec := poolSpec{addrs: addrs, weights: weights, secure: secure, transport: tc, health: health}
	if cfg.TLS != nil {
		if spec.tls, err = loadTLS(*cfg.TLS); err != nil {
			return poolSpec{}, err
		}
	} else if slices.Contains(secure, true) {
		// The defaults, keyed exactly as an empty TLS block would be: the
		// two mean the same.
		if spec.defaultTLS, err = loadTLS(TLSConfig{}); err != nil {
			return poolSpec{}, err
		}
	}
	// The spec keeps the settings by value: the caller may reuse its
	// blocks.
	cfg.Health, cfg.Passive, cfg.Outlier, cfg.TLS = nil, nil, nil, nil
	spec.cfg = cfg
	return spec, nil
}

func validHashKey(k HashKey) error {
	switch k.Kind {
	case HashClientIP:
		return nil
	case HashHeader, HashCookie:
		if httpwire.ValidToken(k.Name) {
			return nil
		}
		return fmt.Errorf("hash key %v: invalid name", k)
	case 0:
		return errors.New("consistent_hash needs a hash key")
	}
	return fmt.Errorf("invalid hash key kind %d", k.Kind)
}

// validEndpoints normalises the addresses and weights of cfg's endpoints
// and says which speak TLS. Two entries for the same address would share
// one Endpoint and skew every balancer, so they are rejected.
func validEndpoints(cfg PoolConfig) (addrs []string, weights []int, secure []bool, err error) {
	eps := cfg.Endpoints
	addrs = make([]string, len(eps))
	weights = make([]int, len(eps))
	secure = make([]bool, len(eps))
	seen := make(map[string]int, len(eps))
	for i, ep := range eps {
		addr, scheme, err := normalizeAddress(ep.Address)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("endpoints[%d]: %w", i, err)
		}
		if j, dup := seen[addr]; dup {
			return nil, nil, nil, fmt.Errorf("endpoints[%d]: address %s repeats endpoints[%d]", i, addr, j)
		}
		seen[addr] = i
		if ep.Weight < 0 {
			return nil, nil, nil, fmt.Errorf("endpoints[%d]: negative weight %d", i, ep.Weight)
		}
		addrs[i], weights[i] = addr, max(ep.Weight, 1)
		secure[i] = cfg.TLS != nil || scheme == schemeHTTPS
		if err := checkScheme(cfg, ep.Address, scheme, secure[i]); err != nil {
			return nil, nil, nil, fmt.Errorf("endpoints[%d]: %w", i, err)
		}
	}
	return addrs, weights, secure, nil
}

// checkScheme rejects an endpoint whose TLS use contradicts the pool: an
// explicit http:// next to TLS settings, plaintext under protocol http2
// (HTTP/2 is negotiated by ALPN), TLS under h2c (cleartext by
// definition).
func checkScheme(cfg PoolConfig, address, scheme string, secure bool) error {
	switch {
	case scheme == schemeHTTP && cfg.TLS != nil:
		return fmt.Errorf("address %q is plaintext but the pool has TLS settings (drop the http:// or the tls block)", address)
	case cfg.Protocol == HTTP2 && !secure:
		return fmt.Errorf("address %q: protocol http2 needs TLS (an https:// address or TLS settings); use h2c for cleartext HTTP/2", address)
	case cfg.Protocol == H2C && secure:
		return fmt.Errorf("address %q: protocol h2c is cleartext and cannot use TLS", address)
	}
	return nil
}

// Commit is called after a snapshot swap with the pools of the now-active
// snapshot, and after a rejected build with the still-active ones. Every
// endpoint entry they do not reference is released: its transport closes
// idle connections now and in-use ones as their requests finish, so
// requests in flight on the old snapshot complete. Metric series of pools
// that are no longer active are dropped (obs.ForgetPool) and the endpoint
// counts of the active ones published. Released entries are forgotten: a
// Pool whose entries were released must not be activated again; build a
// new one. Commit after Close does nothing.
//
// Commit is also where health settings take effect: it hands each active
// pool's settings and endpoints to the request path (Endpoint.Report,
// Pool.Select) and starts, keeps or stops the pool's health goroutines to
// match (see State). It waits for the goroutines it stops, which is quick:
// a probe in flight is cancelled.
func (s *State) Commit(active []*Pool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	keep := make(map[*Endpoint]struct{})
	views := make(map[string]*Pool, len(active))
	for _, p := range active {
		if p == nil || p.entry == nil {
			continue
		}
		views[p.id] = p
		for _, e := range p.endpoints {
			keep[e] = struct{}{}
		}
	}
	// Stop the health goroutines of pools that are gone first, so no probe
	// runs through a draining transport and no monitor publishes for a
	// pool whose series are forgotten below.
	for id, pe := range s.pools {
		if p := views[id]; p == nil || p.entry != pe {
			pe.retire()
			delete(s.pools, id)
		}
	}
	for id, p := range views {
		s.pools[id] = p.entry
		p.entry.activate(p)
	}
	for k, e := range s.entries {
		if _, ok := keep[e]; !ok {
			e.release()
			delete(s.entries, k)
		}
	}
	for id := range s.active {
		if _, ok := views[id]; !ok {
			s.metrics.ForgetPool(id)
			delete(s.active, id)
		}
	}
	for id, p := range views {
		s.active[id] = struct{}{}
		p.entry.publish()
	}
}

// Close stops every health goroutine and waits for them, then releases
// every endpoint entry (shutdown): idle connections close at once, in-use
// ones as their requests finish. Later Builds fail with ErrClosed.
// Idempotent.
func (s *State) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for id, pe := range s.pools {
		pe.retire()
		delete(s.pools, id)
	}
	for k, e := range s.entries {
		e.release()
		delete(s.entries, k)
	}
}
