// Package compile turns a validated config.Config into an immutable
// *snapshot.Snapshot: router tables, policies, pools (through the
// long-lived upstream.State) and each route's handler. It is pure apart
// from registering endpoint entries in the State it is given, which the
// control plane commits or releases; it starts no goroutines.
package compile

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/keelproxy/keel/internal/acme"
	"github.com/keelproxy/keel/internal/certs"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/proxyproto"
	"github.com/keelproxy/keel/internal/router"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/tracing"
	"github.com/keelproxy/keel/internal/upstream"
)

// Via is the Via header entry the proxy adds (RFC 9110 7.6.3).
const Via = "1.1 keel"

// Deps are the long-lived things a snapshot is built against.
type Deps struct {
	// State holds endpoint runtime state across snapshots. Required.
	State *upstream.State
	// Version is cfg.Version() when the caller has already computed it
	// (the apply pipeline needs it first, for the unchanged check); ""
	// computes it here. Hashing a 10,000-route config costs ~18 ms.
	Version string
	// FilesDigest is FilesDigest(cfg, LookupEnv) when the caller has
	// already computed it (the apply pipeline, for the same unchanged
	// check), so the files are not read twice; "" computes it here.
	FilesDigest string
	// Metrics resolves per-route instruments; nil records nothing.
	Metrics *obs.Metrics
	// LookupEnv reads the environment variables a config names (the
	// metrics token); nil means os.LookupEnv. Tests pass their own.
	LookupEnv func(string) (string, bool)
	// Runtime holds the breakers and retry budgets that survive
	// snapshots; nil builds throwaway ones (validation dry runs).
	Runtime *Runtime
	// Tracing is the trace provider the data plane records spans with;
	// nil traces nothing.
	Tracing *tracing.Provider
	// TLSListener says a TLS listener (-tls-addr) serves this snapshot: a
	// config that leaves it without any certificate is rejected.
	TLSListener bool
	// ACME returns the long-lived certificate manager for a tls.acme
	// block (from the runtime registry, so issued certificates and renewal
	// survive applies); nil leaves ACME names unserved (validation dry
	// runs).
	ACME func(acme.Options) (m certs.ACME, key string, err error)
}

// Empty returns the snapshot served before any config is applied: no
// routes, so every request is 404 no_route.
func Empty() *snapshot.Snapshot {
	table, err := router.Compile[*snapshot.Route](nil)
	if err != nil {
		panic(fmt.Sprintf("compile: empty router: %v", err)) // cannot happen: no rules
	}
	return &snapshot.Snapshot{Router: table, Pools: map[string]*upstream.Pool{}, BuiltAt: time.Now(),
		AccessLog: true, Redactor: obs.NewRedactor(nil, false)}
}

// Snapshot compiles cfg, which must already have passed Validate. The
// returned error describes what could not be built (a regex the router
// rejects, a pool the upstream package rejects); nothing live is touched
// either way.
func Snapshot(cfg *config.Config, d Deps) (*snapshot.Snapshot, error) {
	s := &snapshot.Snapshot{
		Version:   d.Version,
		Label:     cfg.Label,
		BuiltAt:   time.Now(),
		Pools:     make(map[string]*upstream.Pool, len(cfg.Pools)),
		PoolList:  make([]*upstream.Pool, 0, len(cfg.Pools)),
		Routes:    make([]*snapshot.Route, 0, len(cfg.Routes)),
		AccessLog: cfg.Logging.AccessLog == nil || *cfg.Logging.AccessLog,
		Redactor:  obs.NewRedactor(cfg.Logging.RedactedHeaders(), cfg.Logging.RedactQuery),

		MetricsDisabled: cfg.Metrics.Enabled != nil && !*cfg.Metrics.Enabled,
		MetricsPath:     cfg.Metrics.Path,
	}
	if s.Version == "" {
		s.Version = cfg.Version()
	}
	var err error
	if s.TrustedProxies, err = trustedProxies(cfg.Server.TrustedProxies); err != nil {
		return nil, err
	}
	if cfg.Server.ProxyProtocol {
		t := proxyproto.NewTrusted(s.TrustedProxies)
		s.ProxyProtocol = &t
	}
	if cfg.Metrics.RequireToken {
		if s.MetricsToken, err = metricsToken(cfg.Metrics.TokenEnv, d.LookupEnv); err != nil {
			return nil, err
		}
	}
	if s.TLS, err = tlsStore(cfg, d, &s.ACMEKeys); err != nil {
		return nil, err
	}
	if s.FilesDigest = d.FilesDigest; s.FilesDigest == "" {
		s.FilesDigest = FilesDigest(cfg, d.LookupEnv)
	}
	needsIP := make(map[string]bool, len(cfg.Pools))
	for i := range cfg.Pools {
		p, ip, err := pool(&cfg.Pools[i], d.State)
		if err != nil {
			var fe *upstream.FieldError
			if errors.As(err, &fe) {
				return nil, config.Errors{{Path: fmt.Sprintf("pools[%d].%s", i, fe.Field), Message: fe.Detail + ": " + fe.Err.Error()}}
			}
			return nil, fmt.Errorf("pools[%d] (%s): %w", i, cfg.Pools[i].ID, err)
		}
		needsIP[p.ID()] = ip
		s.Pools[p.ID()] = p
		s.PoolList = append(s.PoolList, p)
	}
	policies := make(map[string]*snapshot.Policy, len(cfg.Policies))
	cfgPolicies := make(map[string]*config.Policy, len(cfg.Policies))
	for i := range cfg.Policies {
		p := policy(&cfg.Policies[i])
		policies[p.ID] = p
		cfgPolicies[p.ID] = &cfg.Policies[i]
	}
	chains := make(map[string][]proxy.Middleware, len(cfg.Middleware))
	for i := range cfg.Middleware {
		stages, err := chain(&cfg.Middleware[i], d, s, cfgPolicies, redisAddr(cfg))
		if err != nil {
			return nil, err
		}
		chains[cfg.Middleware[i].ID] = stages
	}
	plans := make(map[string]*config.Traffic, len(cfg.TrafficManagement))
	for i := range cfg.TrafficManagement {
		plans[cfg.TrafficManagement[i].Route] = &cfg.TrafficManagement[i]
	}
	cfgPools := make(map[string]*config.Pool, len(cfg.Pools))
	for i := range cfg.Pools {
		cfgPools[cfg.Pools[i].ID] = &cfg.Pools[i]
	}
	rules := make([]router.Rule[*snapshot.Route], 0, len(cfg.Routes))
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		tp := plans[rc.ID]
		if rc.Pool == "" && tp != nil {
			// A route may leave its pool to its traffic plan.
			c := *rc
			c.Pool = plannedPools(tp, "")[0]
			rc = &c
		}
		r, err := route(rc, s, policies, needsIP[rc.Pool], d.Metrics)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] (%s): %w", i, rc.ID, err)
		}
		fw := r.Handler.(*proxy.Forwarder)
		fw.Tracing = d.Tracing
		pc := cfgPolicies[rc.Policy]
		fw.Breaker = breaker(d.Runtime, rc.ID, pc, cfgPools[rc.Pool], &s.BreakerKeys)
		if pc != nil {
			fw.Retry = retryPolicy(d.Runtime, rc.ID, pc.Retries, &s.BudgetKeys)
			fw.Hedge = hedgePolicy(pc.Hedging)
		}
		if tp != nil {
			if r.Handler, err = trafficHandler(d, s, rc, tp, fw, pc, cfgPools, needsIP); err != nil {
				return nil, fmt.Errorf("routes[%d] (%s): %w", i, rc.ID, err)
			}
			s.SplitKeys = append(s.SplitKeys, rc.ID)
		}
		if rc.Middleware != "" {
			stages, ok := chains[rc.Middleware]
			if !ok {
				return nil, fmt.Errorf("routes[%d] (%s): middleware %q not found", i, rc.ID, rc.Middleware)
			}
			r.Handler = proxy.Chain(r.Handler, stages...)
		}
		if tp != nil {
			// Overload protection sheds before the chain spends anything.
			r.Handler = proxy.OverloadStage(overloadLimiter(d, rc.ID, tp.OverloadProtection))(r.Handler)
		}
		if pc != nil && pc.RateLimit != nil {
			// The policy's rate limit comes first of all: a request over
			// its limit must not take an overload slot either.
			rl, err := rateLimit(d, s, pc, redisAddr(cfg))
			if err != nil {
				return nil, fmt.Errorf("routes[%d] (%s): %w", i, rc.ID, err)
			}
			r.Handler = rl(r.Handler)
		}
		s.Routes = append(s.Routes, r)
		rules = append(rules, router.Rule[*snapshot.Route]{
			ID: rc.ID, Host: rc.Host, Path: rc.Path, PathPrefix: rc.PathPrefix, PathRegex: rc.PathRegex,
			Methods: rc.Methods, Headers: rc.Headers, Query: rc.Query, Value: r,
		})
	}
	if s.Router, err = router.Compile(rules); err != nil {
		return nil, err
	}
	return s, nil
}

// trustedProxies parses server.trusted_proxies: CIDRs or single addresses.
func trustedProxies(in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for i, s := range in {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("server.trusted_proxies[%d]: %w", i, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies[%d]: %w", i, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// metricsToken reads the metrics token from the environment when the
// config is applied, not per scrape: a token that is missing is a config
// error now, not a 401 for every scraper later.
func metricsToken(name string, lookup func(string) (string, bool)) (string, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	tok, ok := lookup(name)
	if !ok || strings.TrimSpace(tok) == "" {
		return "", config.Errors{{Path: "metrics.require_token",
			Message: fmt.Sprintf("the metrics token variable %s (metrics.token_env) is unset or empty in the proxy's environment", name)}}
	}
	return tok, nil
}

// redisAddr is the address of the config's Redis, "" without one.
func redisAddr(cfg *config.Config) string {
	if cfg.Redis == nil {
		return ""
	}
	return cfg.Redis.Address
}
