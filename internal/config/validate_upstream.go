package config

func (v *validator) policies() {
	for i := range v.c.Policies {
		pol := &v.c.Policies[i]
		p := index("policies", i)
		v.nonNegative(field(p, "timeout"), pol.Timeout)
		v.size(field(p, "body_size_limit"), pol.BodySizeLimit, 0)
		if pol.Retries != nil {
			v.retries(field(p, "retries"), pol.Retries)
		}
		if h := pol.Hedging; h != nil {
			v.positive(field(p, "hedging.delay"), h.Delay)
			v.intRange(field(p, "hedging.max_hedges"), h.MaxHedges, 1, 10)
		}
		if pol.RateLimit != nil {
			v.rateLimit(field(p, "rate_limit"), pol.RateLimit)
		}
		if pol.CircuitBreaker != nil {
			v.breaker(field(p, "circuit_breaker"), pol.CircuitBreaker)
		}
	}
}

func (v *validator) retries(p string, r *Retries) {
	v.intRange(field(p, "max_attempts"), r.MaxAttempts, 1, 10)
	if r.BudgetPercent != nil {
		v.intRange(field(p, "budget_percent"), *r.BudgetPercent, 0, 100)
	}
	if r.BudgetBurst != nil {
		v.atLeast(field(p, "budget_burst"), *r.BudgetBurst, 0)
	}
	v.nonNegative(field(p, "per_try_timeout"), r.PerTryTimeout)
	for i, s := range r.RetryOn {
		if err := checkRetryOn(string(s)); err != nil {
			v.add(index(field(p, "retry_on"), i), "%v", err)
		}
	}
	v.positive(field(p, "backoff.base"), r.Backoff.Base)
	v.positive(field(p, "backoff.max"), r.Backoff.Max)
	if r.Backoff.Max < r.Backoff.Base {
		v.add(field(p, "backoff.max"), "must be at least backoff.base (%s), got %s", r.Backoff.Base, r.Backoff.Max)
	}
}

func (v *validator) rateLimit(p string, rl *RateLimit) {
	if !(rl.RequestsPerSecond > 0) {
		v.add(field(p, "requests_per_second"), "must be greater than 0, got %g", rl.RequestsPerSecond)
	}
	v.atLeast(field(p, "burst"), rl.Burst, 1)
	if err := checkKey(rl.Key, keyForms{clientIP: true, route: true, header: true}); err != nil {
		v.add(field(p, "key"), "%v", err)
	}
	switch rl.Scope {
	case ScopeLocal:
	case ScopeGlobal:
		if v.c.Redis == nil {
			v.add(field(p, "scope"), "global rate limits need a redis section")
		}
	default:
		v.add(field(p, "scope"), "invalid scope %q: want local or global", rl.Scope)
	}
}

func (v *validator) breaker(p string, b *CircuitBreaker) {
	v.intRange(field(p, "error_threshold_percent"), b.ErrorThresholdPercent, 1, 100)
	v.atLeast(field(p, "min_requests"), b.MinRequests, 1)
	v.positive(field(p, "open_duration"), b.OpenDuration)
	v.positive(field(p, "window"), b.Window)
	v.atLeast(field(p, "half_open_requests"), b.HalfOpenRequests, 1)
}

func (v *validator) pools() {
	for i := range v.c.Pools {
		pool := &v.c.Pools[i]
		p := index("pools", i)
		tlsEndpoints := v.endpoints(p, pool)
		v.balancer(p, pool)
		switch pool.Protocol {
		case ProtocolHTTP1:
		case ProtocolHTTP2:
			if !tlsEndpoints && pool.TLS == nil {
				v.add(field(p, "protocol"), "http2 needs TLS (https:// addresses or a tls block); use h2c for cleartext HTTP/2")
			}
		case ProtocolH2C:
			if tlsEndpoints || pool.TLS != nil {
				v.add(field(p, "protocol"), "h2c is cleartext and cannot be used with TLS endpoints")
			}
		default:
			v.add(field(p, "protocol"), "invalid protocol %q: want http1, http2 or h2c", pool.Protocol)
		}
		if t := pool.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
			v.add(field(p, "tls"), "set cert_file and key_file together")
		}
		if pool.Health != nil {
			v.health(field(p, "health"), pool.Health)
		}
		if pool.CircuitBreaker != nil {
			v.breaker(field(p, "circuit_breaker"), pool.CircuitBreaker)
		}
		if pool.OutlierDetection != nil {
			v.outlier(field(p, "outlier_detection"), pool.OutlierDetection)
		}
		t := pool.Transport
		v.atLeast(field(p, "transport.max_idle_per_endpoint"), t.MaxIdlePerEndpoint, 0)
		v.positive(field(p, "transport.idle_timeout"), t.IdleTimeout)
		v.positive(field(p, "transport.dial_timeout"), t.DialTimeout)
		v.nonNegative(field(p, "transport.response_header_timeout"), t.ResponseHeaderTimeout)
	}
}

// endpoints checks addresses and weights and reports whether any endpoint
// uses https://.
func (v *validator) endpoints(p string, pool *Pool) (anyTLS bool) {
	if len(pool.Endpoints) == 0 {
		v.add(field(p, "endpoints"), "a pool needs at least one endpoint")
	}
	seen := make(map[string]int, len(pool.Endpoints))
	eps := field(p, "endpoints")
	for j, ep := range pool.Endpoints {
		// The path is joined only for a problem: a large config has
		// thousands of endpoints.
		e := entryPath{eps, j}
		scheme, hostport := splitScheme(ep.Address)
		anyTLS = anyTLS || scheme == "https"
		if err := checkHostPort(hostport); err != nil {
			v.add(e.at("address"), "%v", err)
		} else if k, dup := seen[hostport]; dup {
			// Endpoint state (health, breaker, ejection) is keyed by
			// address, so two entries for one address would share it.
			v.add(e.at("address"), "duplicate endpoint %q (also endpoints[%d])", hostport, k)
		} else {
			seen[hostport] = j
		}
		if w := ep.Weight; w != nil && (*w < 1 || *w > 10000) {
			v.intRange(e.at("weight"), *w, 1, 10000)
		}
	}
	return anyTLS
}

func (v *validator) balancer(p string, pool *Pool) {
	switch pool.Balancer {
	case BalancerRoundRobin, BalancerWeightedRoundRobin, BalancerLeastRequest, BalancerRandom:
		if pool.HashKey != "" {
			v.add(field(p, "hash_key"), "only used with balancer consistent_hash")
		}
	case BalancerConsistentHash:
		if pool.HashKey == "" {
			v.add(field(p, "hash_key"), "required with balancer consistent_hash")
		} else if err := checkKey(pool.HashKey, keyForms{clientIP: true, header: true, cookie: true}); err != nil {
			v.add(field(p, "hash_key"), "%v", err)
		}
	default:
		v.add(field(p, "balancer"), "invalid balancer %q: want round_robin, weighted_round_robin, least_request, random or consistent_hash", pool.Balancer)
	}
}

func (v *validator) health(p string, h *Health) {
	if a := h.Active; a != nil {
		ap := field(p, "active")
		v.positive(field(ap, "interval"), a.Interval)
		v.positive(field(ap, "timeout"), a.Timeout)
		if a.Timeout > a.Interval {
			v.add(field(ap, "timeout"), "must not exceed interval (%s), got %s", a.Interval, a.Timeout)
		}
		v.absPath(field(ap, "path"), a.Path)
		if _, _, err := ParseStatusRange(string(a.ExpectedStatus)); err != nil {
			v.add(field(ap, "expected_status"), "invalid %q: %v", a.ExpectedStatus, err)
		}
		v.atLeast(field(ap, "healthy_threshold"), a.HealthyThreshold, 1)
		v.atLeast(field(ap, "unhealthy_threshold"), a.UnhealthyThreshold, 1)
	}
	if ps := h.Passive; ps != nil {
		v.atLeast(field(p, "passive.consecutive_failures"), ps.ConsecutiveFailures, 1)
		v.positive(field(p, "passive.ejection_duration"), ps.EjectionDuration)
	}
}

func (v *validator) outlier(p string, o *OutlierDetection) {
	v.atLeast(field(p, "consecutive_failures"), o.ConsecutiveFailures, 1)
	v.intRange(field(p, "error_rate_threshold"), o.ErrorRateThreshold, 1, 100)
	v.nonNegative(field(p, "latency_threshold"), o.LatencyThreshold)
	v.positive(field(p, "interval"), o.Interval)
	v.positive(field(p, "base_ejection_time"), o.BaseEjectionTime)
	v.intRange(field(p, "max_ejection_percent"), o.MaxEjectionPercent, 0, 100)
}

// poolRef checks a required-or-optional pool reference.
func (v *validator) poolRef(path, id string) {
	v.ref(path, "pool", id, v.poolIDs)
}
