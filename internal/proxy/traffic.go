package proxy

import (
	"errors"
	"net/http"
	"time"

	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/overload"
	"github.com/keelproxy/keel/internal/traffic"
)

// OverloadStage admits at most the limiter's concurrency for the route,
// queueing FIFO up to its queue and shedding the rest with 503 overloaded
// and Retry-After (SPEC section 7). It runs before the middleware chain so
// that shed requests cost as little as possible. A nil limiter admits
// everything.
func OverloadStage(l *overload.Limiter) Middleware {
	return func(next http.Handler) http.Handler {
		if l == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := l.Acquire(r.Context())
			if err != nil {
				var oe *overload.Error
				if errors.As(err, &oe) {
					Fail(w, ErrOverloaded, oe.RetryAfter)
					return
				}
				// The client went away while queued.
				if x := exchangeOf(w); x != nil {
					x.category = ErrClientClosed
				}
				return
			}
			start := time.Now()
			next.ServeHTTP(w, r)
			status := ResponseStatus(w)
			// Only overload signals from upstream shrink an adaptive limit;
			// an application 500 says nothing about capacity.
			dropped := status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests ||
				status == http.StatusGatewayTimeout
			tok.Release(time.Since(start), dropped)
		})
	}
}

// Split sends each request to the pool its route's traffic plan picks
// (cohort, canary or stable) and feeds the outcome back to the plan's
// brake. Pools maps pool id to the Forwarder for it; Default serves
// decisions that name no pool.
type Split struct {
	Plan    *traffic.Split
	Pools   map[string]http.Handler
	Default http.Handler
	// NeedClientIP is set when the sticky key is the client address.
	NeedClientIP bool
	// RouteID and Metrics count requests per variant; nil Metrics counts
	// nothing.
	RouteID string
	Metrics *obs.Metrics
}

// ServeHTTP implements http.Handler.
func (s *Split) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var cip string
	x := exchangeOf(w)
	if s.NeedClientIP && x != nil && x.snap != nil {
		cip = x.client(r, x.snap.TrustedProxies)
	}
	d := s.Plan.Decide(r, cip)
	h := s.Default
	pool := ""
	if d.Pool != "" {
		if ph, ok := s.Pools[d.Pool]; ok {
			h, pool = ph, d.Pool
		}
	}
	if x != nil {
		x.rec.CanaryVariant = d.Variant
		if pool != "" && (x.route == nil || pool != x.route.PoolID) {
			x.pool = pool
		}
	}
	start := time.Now()
	h.ServeHTTP(w, r)
	status := ResponseStatus(w)
	failed := status >= 500 || (x != nil && x.category != "" && x.category != ErrClientClosed)
	s.Plan.Record(d.Variant, failed, time.Since(start))
	s.Metrics.CanaryRequest(s.RouteID, d.Variant)
}
