package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/keelproxy/keel/internal/ratelimit"
	"github.com/keelproxy/keel/internal/tracing"
)

// Middleware is one stage of a route's chain (SPEC section 3,
// middleware[].stages): it wraps the rest of the chain. compile builds a
// route's chain once per snapshot with Chain; stages are immutable and
// safe for concurrent use.
type Middleware func(next http.Handler) http.Handler

// Chain composes stages around h so that stages[0] sees the request first
// and the response last (request phase forward, response phase backward).
func Chain(h http.Handler, stages ...Middleware) http.Handler {
	for i := len(stages) - 1; i >= 0; i-- {
		h = stages[i](h)
	}
	return h
}

// RequestIDStage sends the request's id (a valid incoming X-Request-Id, or
// the one the Handler generated) upstream and on the response. Without
// this stage the id still appears in the access log and on proxy-generated
// errors, but is not forwarded.
func RequestIDStage() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if x := exchangeOf(w); x != nil && x.requestID != "" {
				id := []string{x.requestID}
				r.Header["X-Request-Id"] = id
				w.Header()["X-Request-Id"] = id
			}
			next.ServeHTTP(w, r)
		})
	}
}

// HeaderEdit is a set of header changes: remove the listed names, then set
// the added ones. Names must be canonical (compile canonicalises them).
type HeaderEdit struct {
	Set    http.Header
	Remove []string
}

func (e *HeaderEdit) apply(h http.Header) {
	for _, k := range e.Remove {
		delete(h, k)
	}
	for k, v := range e.Set {
		h[k] = v
	}
}

// HeaderTransformStage edits the request headers before the rest of the
// chain runs (so later stages and the upstream see the result) and the
// response headers when the status is written (whoever produced the
// response). A nil edit does nothing.
func HeaderTransformStage(req, resp *HeaderEdit) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if req != nil {
				req.apply(r.Header)
			}
			if resp != nil {
				if x := exchangeOf(w); x != nil {
					x.respEdits = append(x.respEdits, resp)
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// AccessLogStage makes the route's requests appear in the access log even
// when logging.access_log is false, so one route can be logged while the
// rest of the proxy is not.
func AccessLogStage() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if x := exchangeOf(w); x != nil {
				x.forceLog = true
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Fail answers a request with a proxy-generated error from a middleware
// stage (auth, rate limits, overload), with retryAfter as Retry-After when
// positive. It works with or without a Handler around the stage.
func Fail(w http.ResponseWriter, c Category, retryAfter time.Duration) {
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		w.Header()["Retry-After"] = []string{strconv.FormatInt(secs, 10)}
	}
	if x := exchangeOf(w); x != nil {
		x.fail(w, c)
		return
	}
	writeError(w, c, "")
}

// ResponseStatus returns the status written so far through w (0 before
// WriteHeader), for stages that observe outcomes (the canary brake).
func ResponseStatus(w http.ResponseWriter) int {
	if x := exchangeOf(w); x != nil {
		if x.category != "" && x.rw.status == 0 {
			return x.category.Status()
		}
		return x.rw.status
	}
	return 0
}

// TracingStage is the `tracing` stage: it opens a "middleware" span for the
// rest of the chain, so the stages after it (each in its own span, see
// Traced) and the upstream attempts hang under it. Without a tracing
// provider it does nothing.
func TracingStage(p *tracing.Provider) Middleware {
	return Traced(p, "middleware", func(next http.Handler) http.Handler { return next })
}

// Traced wraps stage m in a span named name that covers the stage and the
// rest of the chain after it. Unsampled requests get no span and no
// allocation; without an enabled provider m is not wrapped at all.
func Traced(p *tracing.Provider, name string, m Middleware) Middleware {
	return func(next http.Handler) http.Handler {
		inner := m(next)
		if !p.Enabled() {
			return inner
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, sp := p.StartInternal(r.Context(), name)
			if !sp.IsRecording() {
				inner.ServeHTTP(w, r)
				return
			}
			defer sp.End()
			inner.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// RateLimitStage answers 429 rate_limited with Retry-After once the
// request's key (client address, route or a header, per key) has used its
// bucket in l (SPEC section 3, policies[].rate_limit). The "route" key is
// the matched route's id, so a chain shared by routes limits each route on
// its own.
func RateLimitStage(l *ratelimit.Limiter, key ratelimit.KeyFunc) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var cip, routeID string
			if x := exchangeOf(w); x != nil && x.snap != nil {
				cip = x.client(r, x.snap.TrustedProxies)
				if x.route != nil {
					routeID = x.route.ID
				}
			}
			if ok, retryAfter := l.Allow(r.Context(), key(r, cip, routeID)); !ok {
				Fail(w, ErrRateLimited, max(retryAfter, time.Second))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
