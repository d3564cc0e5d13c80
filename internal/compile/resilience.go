package compile

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keelproxy/keel/internal/acme"
	"github.com/keelproxy/keel/internal/auth"
	"github.com/keelproxy/keel/internal/certs"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/overload"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/ratelimit"
	"github.com/keelproxy/keel/internal/registry"
	"github.com/keelproxy/keel/internal/resilience"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/traffic"
)

// Runtime holds the registries of runtime state that outlive snapshots,
// and the goroutines of the live values that need them. main builds one
// with NewRuntime; the apply pipeline commits the keys of each new
// snapshot after its swap (or aborts after a rejected build), and Close
// stops it at shutdown.
type Runtime struct {
	// Breakers hold circuit breakers by BreakerKey, Budgets retry budgets
	// by route id.
	Breakers *registry.Registry[*resilience.Breaker]
	Budgets  *registry.Registry[*resilience.Budget]
	// Splits and Overloads hold each route's canary plan (with its brake)
	// and overload limiter, keyed by route id.
	Splits    *registry.Registry[*traffic.Split]
	Overloads *registry.Registry[*overload.Limiter]
	// Verifiers hold JWT verifiers (and their key caches) by a digest of
	// their settings, so an apply that keeps an auth stage keeps its keys.
	Verifiers *registry.Registry[*auth.Verifier]
	// RateLimits hold each policy's limiter by policy id and settings:
	// changed settings make a new limiter, unchanged ones keep buckets.
	RateLimits *registry.Registry[*ratelimit.Limiter]
	// Redis holds one client per redis.address for global rate limits.
	Redis *registry.Registry[*ratelimit.Redis]
	// ACMEs hold the automatic-certificate managers (tls.acme) by their
	// settings' key: issued certificates and renewal survive applies.
	ACMEs *registry.Registry[*acme.Manager]

	// acmeTLSPort is where the ACME CA reaches the TLS listener for
	// tls-alpn-01; acmeLogger receives the managers' logs. Set once by
	// SetACME before the first apply.
	acmeTLSPort int
	acmeLogger  *slog.Logger

	// bg owns the goroutines of live runtime values: Redis health
	// probes and JWKS refreshers. They start at Commit (a rejected build
	// starts nothing) and stop when their value is dropped or at Close.
	bg struct {
		sync.Mutex
		ctx    context.Context
		cancel context.CancelFunc
		wg     sync.WaitGroup
		stops  map[any]context.CancelFunc
	}

	// onBrake is told when a canary brakes: route id and reason.
	onBrake atomic.Pointer[func(route, reason string)]
}

// OnBrake installs fn to hear about every canary brake (the control plane
// logs and audits it). It may be called at any time; fn must be quick and
// safe for concurrent use.
func (rt *Runtime) OnBrake(fn func(route, reason string)) {
	rt.onBrake.Store(&fn)
}

// NewRuntime returns empty registries whose breakers report their state
// changes to m (nil: no metrics).
func NewRuntime(m *obs.Metrics) *Runtime {
	rt := &Runtime{
		Breakers: registry.New(func(key string) *resilience.Breaker {
			pool, route := ParseBreakerKey(key)
			b := resilience.NewBreaker(resilience.BreakerSettings{}, nil)
			b.OnStateChange(func(from, to resilience.State) {
				if to == resilience.Open {
					m.BreakerTrip(pool)
				}
				// proxy_breaker_state is per pool: a route's own breaker
				// on the pool would fight the pool's over the series.
				if route == "" {
					m.SetBreakerState(pool, to.String())
				}
			})
			if route == "" {
				m.SetBreakerState(pool, resilience.Closed.String())
			}
			return b
		}),
		Budgets: registry.New(func(string) *resilience.Budget {
			return resilience.NewBudget(resilience.BudgetSettings{}, nil)
		}),
		Overloads: registry.New(func(string) *overload.Limiter {
			return overload.New(overload.Settings{}, nil)
		}),
		// These values need their settings to be built: AcquireNew only.
		Verifiers:  registry.New[*auth.Verifier](nil),
		RateLimits: registry.New[*ratelimit.Limiter](nil),
		Redis:      registry.New[*ratelimit.Redis](nil),
		ACMEs:      registry.New[*acme.Manager](nil),
	}
	rt.Splits = registry.New(func(route string) *traffic.Split {
		sp := traffic.NewSplit(traffic.Settings{}, nil)
		sp.OnBrake(func(reason string) {
			if fn := rt.onBrake.Load(); fn != nil {
				(*fn)(route, reason)
			}
		})
		return sp
	})
	return rt
}

// Commit makes the snapshot's runtime values live and drops the rest: it
// starts the goroutines of the values it adds and stops (and, for Redis
// clients, closes) those it drops. Abort forgets a rejected build's. Both
// are nil-safe.
func (rt *Runtime) Commit(s *snapshot.Snapshot) {
	if rt == nil {
		return
	}
	rt.Breakers.Commit(s.BreakerKeys)
	rt.Budgets.Commit(s.BudgetKeys)
	rt.Splits.Commit(s.SplitKeys)
	rt.Overloads.Commit(s.SplitKeys)
	addedV, droppedV := rt.Verifiers.CommitDiff(s.VerifierKeys)
	rt.RateLimits.Commit(s.RateLimitKeys)
	addedR, droppedR := rt.Redis.CommitDiff(s.RedisKeys)
	addedA, droppedA := rt.ACMEs.CommitDiff(s.ACMEKeys)
	rt.bg.Lock()
	defer rt.bg.Unlock()
	if rt.bg.ctx == nil {
		rt.bg.ctx, rt.bg.cancel = context.WithCancel(context.Background())
		rt.bg.stops = make(map[any]context.CancelFunc)
	}
	for _, v := range addedV {
		rt.goRun(v, v.Run)
	}
	for _, r := range addedR {
		rt.goRun(r, r.Run)
	}
	for _, m := range addedA {
		rt.goRun(m, m.Run)
	}
	for _, v := range droppedV {
		rt.stop(v)
	}
	for _, m := range droppedA {
		rt.stop(m)
	}
	for _, r := range droppedR {
		rt.stop(r)
		r.Close()
	}
}

// goRun runs fn for owner v until v is dropped or Close. rt.bg is held.
func (rt *Runtime) goRun(v any, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(rt.bg.ctx)
	rt.bg.stops[v] = cancel
	rt.bg.wg.Add(1)
	go func() {
		defer rt.bg.wg.Done()
		fn(ctx)
	}()
}

func (rt *Runtime) stop(v any) {
	if cancel := rt.bg.stops[v]; cancel != nil {
		cancel()
		delete(rt.bg.stops, v)
	}
}

// Close stops every background goroutine the runtime started and waits for
// them, and closes the Redis clients. Call it at shutdown, after the
// listeners stopped; nil-safe and idempotent.
func (rt *Runtime) Close() {
	if rt == nil {
		return
	}
	rt.bg.Lock()
	if rt.bg.cancel != nil {
		rt.bg.cancel()
	}
	rt.bg.Unlock()
	// The live clients; Commit closed the dropped ones. Redis.Close is
	// idempotent.
	rt.Redis.Range(func(_ string, r *ratelimit.Redis) { r.Close() })
	rt.bg.wg.Wait()
}

// Abort forgets what a rejected build acquired.
func (rt *Runtime) Abort() {
	if rt == nil {
		return
	}
	rt.Breakers.Abort()
	rt.Budgets.Abort()
	rt.Splits.Abort()
	rt.Overloads.Abort()
	rt.Verifiers.Abort()
	rt.RateLimits.Abort()
	rt.Redis.Abort()
	rt.ACMEs.Abort()
}

// SetACME tells the runtime the port of the TLS listener (where the ACME
// CA validates tls-alpn-01 challenges) and where the managers log. Call it
// before the first apply; without it ACME managers assume port 443 and
// discard their logs.
func (rt *Runtime) SetACME(tlsPort int, logger *slog.Logger) {
	rt.acmeTLSPort, rt.acmeLogger = tlsPort, logger
}

// ACME returns the manager for o from the registry (a new one for new
// settings) and its registry key, for Deps.ACME. The manager starts
// obtaining certificates when the snapshot that uses it is committed.
func (rt *Runtime) ACME(o acme.Options) (certs.ACME, string, error) {
	o.TLSPort, o.Logger = rt.acmeTLSPort, rt.acmeLogger
	key := o.Key()
	m, err := rt.ACMEs.AcquireNew(key, func() (*acme.Manager, error) { return acme.New(o) })
	if err != nil {
		return nil, "", err
	}
	return m, key, nil
}

// BreakerKey names a breaker: "pool/<pool>" for a pool's breaker,
// "route/<route>/pool/<pool>" for a route's own breaker on its pool. Ids
// cannot contain "/" (config validation), so the key parses back.
func BreakerKey(pool, route string) string {
	if route == "" {
		return "pool/" + pool
	}
	return "route/" + route + "/pool/" + pool
}

// ParseBreakerKey is the inverse of BreakerKey.
func ParseBreakerKey(key string) (pool, route string) {
	if rest, ok := strings.CutPrefix(key, "route/"); ok {
		route, pool, _ = strings.Cut(rest, "/pool/")
		return pool, route
	}
	return strings.TrimPrefix(key, "pool/"), ""
}

func breakerSettings(c *config.CircuitBreaker) resilience.BreakerSettings {
	return resilience.BreakerSettings{
		ErrorThresholdPercent: c.ErrorThresholdPercent,
		MinRequests:           c.MinRequests,
		OpenDuration:          c.OpenDuration.Std(),
		Window:                c.Window.Std(),
		HalfOpenRequests:      c.HalfOpenRequests,
	}
}

// breaker returns the breaker guarding pool for a route: the policy's own
// (per route and pool) when it sets one, else the pool's, else nil. keys
// collects the registry keys the snapshot uses.
func breaker(rt *Runtime, route string, pol *config.Policy, pool *config.Pool, keys *[]string) *resilience.Breaker {
	var c *config.CircuitBreaker
	key := ""
	switch {
	case pol != nil && pol.CircuitBreaker != nil:
		c, key = pol.CircuitBreaker, BreakerKey(pool.ID, route)
	case pool.CircuitBreaker != nil:
		c, key = pool.CircuitBreaker, BreakerKey(pool.ID, "")
	default:
		return nil
	}
	s := breakerSettings(c)
	if rt == nil {
		// A dry run (validation) builds a throwaway breaker.
		return resilience.NewBreaker(s, nil)
	}
	*keys = append(*keys, key)
	return rt.Breakers.Acquire(key, func(b *resilience.Breaker) { b.Update(s) })
}

// retryPolicy compiles a policy's retries for one route, with the route's
// own budget.
func retryPolicy(rt *Runtime, route string, r *config.Retries, keys *[]string) *proxy.RetryPolicy {
	if r == nil {
		return nil
	}
	p := &proxy.RetryPolicy{
		MaxAttempts:    r.MaxAttempts,
		PerTryTimeout:  r.PerTryTimeout.Std(),
		IdempotentOnly: r.IdempotentOnly == nil || *r.IdempotentOnly,
		BackoffBase:    r.Backoff.Base.Std(),
		BackoffMax:     r.Backoff.Max.Std(),
	}
	for _, s := range r.RetryOn {
		switch v := string(s); {
		case v == "connect_failure":
			p.On.ConnectFailure = true
		case v == "reset":
			p.On.Reset = true
		case v == "timeout":
			p.On.Timeout = true
		case len(v) == 3 && strings.HasSuffix(v, "xx"):
			base := int(v[0]-'0') * 100
			for code := base; code < base+100; code++ {
				p.On.AddStatus(code)
			}
		default:
			if code, err := strconv.Atoi(v); err == nil {
				p.On.AddStatus(code)
			}
		}
	}
	bs := resilience.BudgetSettings{Burst: derefOr(r.BudgetBurst, 10), Percent: derefOr(r.BudgetPercent, 20)}
	if rt == nil {
		p.Budget = resilience.NewBudget(bs, nil)
		return p
	}
	*keys = append(*keys, route)
	p.Budget = rt.Budgets.Acquire(route, func(b *resilience.Budget) { b.Update(bs) })
	return p
}

func hedgePolicy(h *config.Hedging) *proxy.HedgePolicy {
	if h == nil {
		return nil
	}
	return &proxy.HedgePolicy{Delay: h.Delay.Std(), MaxHedges: h.MaxHedges}
}

func derefOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// rateLimit returns the stage enforcing policy pc's rate_limit for a
// route, or nil when the policy has none. Limiters are shared by the
// routes of a policy (their keys, route ids for key "route", keep the
// buckets apart) and survive applies that keep the settings.
func rateLimit(d Deps, s *snapshot.Snapshot, pc *config.Policy, redisAddr string) (proxy.Middleware, error) {
	rl := pc.RateLimit
	if rl == nil {
		return nil, nil
	}
	key, err := ratelimit.ParseKey(rl.Key)
	if err != nil {
		return nil, fmt.Errorf("policy %q: rate_limit.key: %w", pc.ID, err)
	}
	set := ratelimit.Settings{RPS: rl.RequestsPerSecond, Burst: rl.Burst, Scope: ratelimit.Local}
	var opts []ratelimit.Option
	if rl.Scope == config.ScopeGlobal && d.Runtime != nil && redisAddr != "" {
		// A dry run (validation) limits locally: it must not connect.
		set.Scope = ratelimit.Global
		s.RedisKeys = append(s.RedisKeys, redisAddr)
		r, err := d.Runtime.Redis.AcquireNew(redisAddr, func() (*ratelimit.Redis, error) {
			return ratelimit.NewRedis(ratelimit.RedisOptions{Addr: redisAddr})
		})
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		opts = append(opts, ratelimit.WithRedis(r, pc.ID))
	}
	mk := func() (*ratelimit.Limiter, error) { return ratelimit.New(set, opts...) }
	var l *ratelimit.Limiter
	if d.Runtime == nil {
		l, err = mk()
	} else {
		id := fmt.Sprintf("%s/%g/%d/%s/%s/%s", pc.ID, set.RPS, set.Burst, rl.Key, rl.Scope, redisAddr)
		s.RateLimitKeys = append(s.RateLimitKeys, id)
		l, err = d.Runtime.RateLimits.AcquireNew(id, mk)
	}
	if err != nil {
		return nil, fmt.Errorf("policy %q: rate_limit: %w", pc.ID, err)
	}
	return proxy.RateLimitStage(l, key), nil
}
