package compile

import (
	"fmt"

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
	if t := pc.TLS; t != nil {
		// Build reads the files: a missing or broken one rejects the
		// config here, before the swap.
		cfg.TLS = &upstream.TLSConfig{ServerName: t.ServerName, CAFile: t.CAFile,
			CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
	}
	t := pc.Transport
	cfg.Transport = upstream.TransportConfig{
		MaxIdlePerEndpoint:    t.MaxIdlePerEndpoint,
		IdleTimeout:           t.IdleTimeout.Std(),
		DialTimeout:           t.DialTimeout.Std(),
		ResponseHeaderTimeout: t.ResponseHeaderTimeout.Std(),
	}
	// Addresses go as written: upstream reads the scheme (https:// is TLS).
	for _, e := range pc.Endpoints {
		w := 1
		if e.Weight != nil {
			w = *e.Weight
		}
		cfg.Endpoints = append(cfg.Endpoints, upstream.EndpointConfig{Address: e.Address, Weight: w})
	}
	if err := health(pc, &cfg); err != nil {
		return nil, false, err
	}
	p, err = st.Build(cfg)
	return p, bal == upstream.ConsistentHash && hk.Kind == upstream.HashClientIP, err
}

// health maps the pool's health, passive and outlier settings (defaults
// already applied by config) to the upstream package's.
func health(pc *config.Pool, cfg *upstream.PoolConfig) error {
	if h := pc.Health; h != nil {
		if a := h.Active; a != nil {
			lo, hi, err := config.ParseStatusRange(string(a.ExpectedStatus))
			if err != nil {
				return fmt.Errorf("health.active.expected_status: %w", err)
			}
			cfg.Health = &upstream.HealthCheck{Interval: a.Interval.Std(), Timeout: a.Timeout.Std(), Path: a.Path,
				StatusLo: lo, StatusHi: hi, HealthyThreshold: a.HealthyThreshold, UnhealthyThreshold: a.UnhealthyThreshold}
		}
		if ps := h.Passive; ps != nil {
			cfg.Passive = &upstream.PassiveHealth{ConsecutiveFailures: ps.ConsecutiveFailures,
				EjectionDuration: ps.EjectionDuration.Std()}
		}
	}
	if o := pc.OutlierDetection; o != nil {
		cfg.Outlier = &upstream.OutlierDetection{ConsecutiveFailures: o.ConsecutiveFailures,
			ErrorRatePercent: o.ErrorRateThreshold, LatencyThreshold: o.LatencyThreshold.Std(),
			Interval: o.Interval.Std(), BaseEjectionTime: o.BaseEjectionTime.Std(), MaxEjectionPercent: o.MaxEjectionPercent}
	}
	return nil
}
