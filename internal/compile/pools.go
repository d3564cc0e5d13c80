package compile

import (
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/upstream"
)

// pool builds a pool view through the State, which reuses the runtime
// entries (connections, counters) of endpoints that survive the apply.
// needsClientIP reports whether the pool hashes on the client address, so
// the forwarder computes it only then.
func pool(pc *config.Pool, st *upstream.State) (p *upstream.Pool, needsClientIP bool, err error) {
	bal, err := upstream.ParseBalancer(string(pc.Balancer))
	if err != nil {
		return nil, false, err
	}
	proto, err := upstream.ParseProtocol(string(pc.Protocol))
	if err != nil {
		return nil, false, err
	}
	var hk upstream.HashKey
	if pc.HashKey != "" {
		if hk, err = upstream.ParseHashKey(pc.HashKey); err != nil {
			return nil, false, err
		}
	}
	cfg := upstream.PoolConfig{ID: pc.ID, Balancer: bal, HashKey: hk, Protocol: proto}
	t := pc.Transport
	cfg.Transport = upstream.TransportConfig{
		MaxIdlePerEndpoint:    t.MaxIdlePerEndpoint,
		IdleTimeout:           t.IdleTimeout.Std(),
		DialTimeout:           t.DialTimeout.Std(),
		ResponseHeaderTimeout: t.ResponseHeaderTimeout.Std(),
	}
	for _, e := range pc.Endpoints {
		w := 1
		if e.Weight != nil {
			w = *e.Weight
		}
		cfg.Endpoints = append(cfg.Endpoints, upstream.EndpointConfig{Address: e.Address, Weight: w})
	}
	p, err = st.Build(cfg)
	return p, bal == upstream.ConsistentHash && hk.Kind == upstream.HashClientIP, err
}
