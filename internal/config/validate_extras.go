package config

import (
	"net/url"
	"strconv"
	"strings"
)

func (v *validator) traffic() {
	seen := map[string]int{}
	for i := range v.c.TrafficManagement {
		t := &v.c.TrafficManagement[i]
		p := index("traffic_management", i)
		v.routeOnce(field(p, "route"), t.Route, "traffic_management", i, seen)
		v.poolRef(field(p, "stable_pool"), t.StablePool)
		v.poolRef(field(p, "canary_pool"), t.CanaryPool)
		v.intRange(field(p, "canary_weight"), t.CanaryWeight, 0, 100)
		if t.CanaryWeight > 0 && t.CanaryPool == "" {
			v.add(field(p, "canary_pool"), "required when canary_weight is above 0")
		}
		if t.StickyKey != "" {
			if err := checkKey(t.StickyKey, keyForms{clientIP: true, header: true, cookie: true}); err != nil {
				v.add(field(p, "sticky_key"), "%v", err)
			}
		}
		if b := t.AutoBrake; b != nil {
			bp := field(p, "auto_brake")
			if t.CanaryPool == "" {
				v.add(bp, "needs a canary_pool to compare against stable")
			}
			v.positive(field(bp, "window"), b.Window)
			v.atLeast(field(bp, "min_requests"), b.MinRequests, 1)
			v.floatRange(field(bp, "error_rate_multiplier"), b.ErrorRateMultiplier, 1, 1e6)
			v.nonNegative(field(bp, "latency_p95_threshold"), b.LatencyP95Threshold)
		}
		if cr := t.CohortRouting; cr != nil {
			v.cohorts(field(p, "cohort_routing"), cr)
		}
		if o := t.OverloadProtection; o != nil {
			op := field(p, "overload_protection")
			v.atLeast(field(op, "max_concurrent"), o.MaxConcurrent, 1)
			v.atLeast(field(op, "queue_size"), o.QueueSize, 0)
			v.positive(field(op, "queue_timeout"), o.QueueTimeout)
		}
	}
}

// routeOnce checks a required route reference that may appear at most once
// per section (traffic plans, caches).
func (v *validator) routeOnce(path, route, section string, i int, seen map[string]int) {
	if route == "" {
		v.add(path, "required")
		return
	}
	v.ref(path, "route", route, v.routeIDs)
	if j, dup := seen[route]; dup {
		v.add(path, "route %q already has an entry (%s)", route, index(section, j))
		return
	}
	seen[route] = i
}

func (v *validator) cohorts(p string, cr *CohortRouting) {
	switch {
	case (cr.Header == "") == (cr.Cookie == ""):
		v.add(p, "set exactly one of header and cookie")
	case cr.Header != "" && !isToken(cr.Header):
		v.add(field(p, "header"), "invalid header name %q", cr.Header)
	case cr.Cookie != "" && !isToken(cr.Cookie):
		v.add(field(p, "cookie"), "invalid cookie name %q", cr.Cookie)
	}
	if len(cr.Mappings) == 0 {
		v.add(field(p, "mappings"), "at least one cohort -> pool mapping is required")
	}
	for _, k := range sortedKeys(cr.Mappings) {
		mp := field(field(p, "mappings"), k)
		if cr.Mappings[k] == "" {
			v.add(mp, "pool id required")
		}
		v.poolRef(mp, cr.Mappings[k])
	}
}

func (v *validator) middleware() {
	for i := range v.c.Middleware {
		ch := &v.c.Middleware[i]
		p := index("middleware", i)
		if len(ch.Stages) == 0 {
			v.add(field(p, "stages"), "a chain needs at least one stage")
		}
		for j := range ch.Stages {
			v.stage(index(field(p, "stages"), j), &ch.Stages[j])
		}
	}
}

func (v *validator) stage(p string, s *Stage) {
	cfg := s.Config
	if cfg == nil {
		cfg = &StageConfig{}
	}
	transform := cfg.Add != nil || cfg.Remove != nil || cfg.ResponseAdd != nil || cfg.ResponseRemove != nil
	switch s.Type {
	case StageAuth:
		v.jwt(field(p, "config.jwt"), cfg.JWT)
	case StageHeaderTransform:
		v.headerMap(field(p, "config.add"), cfg.Add)
		v.headerNames(field(p, "config.remove"), cfg.Remove)
		v.headerMap(field(p, "config.response_add"), cfg.ResponseAdd)
		v.headerNames(field(p, "config.response_remove"), cfg.ResponseRemove)
	case StageRateLimit:
		v.rateLimitRef(field(p, "policy_ref"), s.PolicyRef)
	case StagePlugin:
		if s.PluginRef == "" {
			v.add(field(p, "plugin_ref"), "required for plugin stages")
		}
		v.ref(field(p, "plugin_ref"), "plugin", s.PluginRef, v.pluginIDs)
	case StageRequestID, StageTracing, StageAccessLog:
	default:
		v.add(field(p, "type"), "invalid stage type %q: want request_id, auth, rate_limit, header_transform, plugin, tracing or access_log", s.Type)
		return
	}
	if cfg.JWT != nil && s.Type != StageAuth {
		v.add(field(p, "config.jwt"), "only used by auth stages")
	}
	if transform && s.Type != StageHeaderTransform {
		v.add(field(p, "config"), "add, remove, response_add and response_remove are only used by header_transform stages")
	}
	if s.PolicyRef != "" && s.Type != StageRateLimit {
		v.add(field(p, "policy_ref"), "only used by rate_limit stages")
	}
	if s.PluginRef != "" && s.Type != StagePlugin {
		v.add(field(p, "plugin_ref"), "only used by plugin stages")
	}
}

// rateLimitRef requires a reference to a policy that has a rate_limit.
func (v *validator) rateLimitRef(path, id string) {
	if id == "" {
		v.add(path, "required for rate_limit stages")
		return
	}
	i, ok := v.policyIDs[id]
	if !ok {
		v.add(path, "unknown policy %q", id)
		return
	}
	if v.c.Policies[i].RateLimit == nil {
		v.add(path, "policy %q has no rate_limit", id)
	}
}

// jwtAlgorithms are the signature algorithms an auth stage may accept;
// "none" and HMAC are left out on purpose (no shared secrets in config).
var jwtAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

func (v *validator) jwt(p string, j *JWT) {
	if j == nil {
		v.add(p, "required for auth stages")
		return
	}
	if (j.JWKSURL == "") == (j.JWKSFile == "") {
		v.add(p, "set exactly one of jwks_url and jwks_file")
	}
	if j.JWKSURL != "" {
		v.httpURL(field(p, "jwks_url"), j.JWKSURL)
	}
	for i, a := range j.Algorithms {
		if !jwtAlgorithms[a] {
			v.add(index(field(p, "algorithms"), i), "unsupported algorithm %q: want RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA", a)
		}
	}
	for _, claim := range sortedKeys(j.ForwardClaims) {
		if !isToken(j.ForwardClaims[claim]) {
			v.add(field(field(p, "forward_claims"), claim), "invalid header name %q", j.ForwardClaims[claim])
		}
	}
}

// httpURL requires an absolute http(s) URL with a host.
func (v *validator) httpURL(path, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.add(path, "invalid URL %q: want an absolute http:// or https:// URL", s)
	}
}

func (v *validator) caches() {
	seen := map[string]int{}
	for i := range v.c.Cache {
		c := &v.c.Cache[i]
		p := index("cache", i)
		v.routeOnce(field(p, "route"), c.Route, "cache", i, seen)
		v.nonNegative(field(p, "ttl"), c.TTL)
		v.headerNames(field(p, "vary_headers"), c.VaryHeaders)
		v.size(field(p, "max_size"), c.MaxSize, 1)
		v.size(field(p, "max_object_size"), c.MaxObjectSize, 1)
		if c.MaxObjectSize > c.MaxSize {
			v.add(field(p, "max_object_size"), "must not exceed max_size (%d bytes), got %d", int64(c.MaxSize), int64(c.MaxObjectSize))
		}
		v.positive(field(p, "coalesce_timeout"), c.CoalesceTimeout)
	}
}

func (v *validator) plugins() {
	for i := range v.c.Plugins {
		pl := &v.c.Plugins[i]
		p := index("plugins", i)
		switch pl.Type {
		case PluginExternalGRPC:
			if pl.Address == "" {
				v.add(field(p, "address"), "required for external_grpc plugins")
			} else if err := checkHostPort(pl.Address); err != nil {
				v.add(field(p, "address"), "%v", err)
			}
			if pl.Name != "" {
				v.add(field(p, "name"), "only used by builtin plugins")
			}
		case PluginBuiltin:
			if pl.Name == "" {
				v.add(field(p, "name"), "required for builtin plugins")
			}
			if pl.Address != "" {
				v.add(field(p, "address"), "only used by external_grpc plugins")
			}
		default:
			v.add(field(p, "type"), "invalid plugin type %q: want external_grpc or builtin", pl.Type)
		}
		v.positive(field(p, "timeout"), pl.Timeout)
		if pl.FailMode != FailClosed && pl.FailMode != FailOpen {
			v.add(field(p, "fail_mode"), "invalid fail_mode %q: want closed or open", pl.FailMode)
		}
	}
}

func (v *validator) tls() {
	t := v.c.TLS
	if t == nil {
		return
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		v.add("tls.min_version", "invalid %q: want \"1.2\" or \"1.3\"", t.MinVersion)
	}
	for i, c := range t.Certificates {
		p := index("tls.certificates", i)
		if c.CertFile == "" {
			v.add(field(p, "cert_file"), "required")
		}
		if c.KeyFile == "" {
			v.add(field(p, "key_file"), "required")
		}
		if k := ClassifyHost(c.SNI); k == HostRegex || (k == HostExact && !validHostname(c.SNI)) ||
			(k == HostWildcard && !validHostname(c.SNI[2:])) {
			v.add(field(p, "sni"), "invalid server name %q: want a name or *.name", c.SNI)
		}
	}
	if m := t.MTLS; m != nil && m.Enabled && m.CAFile == "" {
		v.add("tls.mtls.ca_file", "required when mtls is enabled")
	}
	if a := t.ACME; a != nil {
		if len(a.Domains) == 0 {
			v.add("tls.acme.domains", "at least one domain is required")
		}
		for i, d := range a.Domains {
			if !validHostname(strings.TrimPrefix(d, "*.")) {
				v.add(index("tls.acme.domains", i), "invalid domain %q", d)
			}
		}
		if a.DirectoryURL != "" {
			v.httpURL("tls.acme.directory_url", a.DirectoryURL)
		}
	}
}

func (v *validator) rollout() {
	r := v.c.Rollout
	if r == nil {
		return
	}
	if len(r.Stages) == 0 {
		v.add("rollout.stages", "at least one stage is required")
	}
	names := map[string]bool{}
	prev := 0
	for i, s := range r.Stages {
		p := index("rollout.stages", i)
		switch {
		case s.Name == "":
			v.add(field(p, "name"), "required")
		case names[s.Name]:
			v.add(field(p, "name"), "duplicate stage name %q", s.Name)
		}
		names[s.Name] = true
		v.intRange(field(p, "fleet_percent"), s.FleetPercent, 1, 100)
		if s.FleetPercent < prev {
			v.add(field(p, "fleet_percent"), "must not be below the previous stage's (%d), got %d", prev, s.FleetPercent)
		}
		prev = max(prev, s.FleetPercent)
		v.nonNegative(field(p, "bake_time"), s.BakeTime)
	}
	for i, g := range r.HealthGates {
		v.gate(index("rollout.health_gates", i), g)
	}
	if a := r.AutoRollback; a != nil {
		rate := strings.TrimSuffix(strings.TrimSpace(string(a.ErrorBudgetBurnRate)), "x")
		if f, err := strconv.ParseFloat(rate, 64); err != nil || !(f > 0) || f > 1e6 {
			v.add("rollout.auto_rollback.error_budget_burn_rate", "invalid %q: want a positive multiple such as 10x", a.ErrorBudgetBurnRate)
		}
	}
}

func (v *validator) gate(p string, g HealthGate) {
	switch g.Metric {
	case "error_rate":
		f, err := strconv.ParseFloat(string(g.Threshold), 64)
		if err != nil || !(f >= 0 && f <= 1) {
			v.add(field(p, "threshold"), "invalid %q: error_rate thresholds are fractions between 0 and 1", g.Threshold)
		}
	case "p95_latency":
		d, err := ParseDuration(string(g.Threshold))
		if err != nil || d <= 0 {
			v.add(field(p, "threshold"), "invalid %q: p95_latency thresholds are positive durations such as 500ms", g.Threshold)
		}
	default:
		v.add(field(p, "metric"), "invalid metric %q: want error_rate or p95_latency", g.Metric)
	}
}
