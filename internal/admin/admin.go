// Package admin serves the admin listener (SPEC sections 2 and 8): liveness,
// readiness and metrics, the config API (validate, diff, apply, rollback,
// current, versions), runtime views (pools, health, breakers, canaries),
// route explanation, the audit trail and the status page. Admin paths are
// only ever mounted on the admin (or metrics) listener, never on a
// data-plane listener.
package admin

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/audit"
	"github.com/keelproxy/keel/internal/control"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/snapshot"
)

// Server is the admin HTTP handler. Build it with New; safe for concurrent
// use.
type Server struct {
	o        Options
	draining *atomic.Bool
	metricsH http.Handler // nil when metrics are served elsewhere
	auth     *authenticator
	routes   map[string]map[string]handlerFunc // path -> method -> handler
}

type handlerFunc func(w http.ResponseWriter, r *http.Request)

// Options configures a Server. Only Snapshots is required; a nil Applier
// or Audit leaves the endpoints that need them answering 404.
type Options struct {
	// Snapshots is the holder the views read. Required.
	Snapshots *snapshot.Holder
	// Metrics is served at the metrics path; nil serves no metrics.
	Metrics *obs.Metrics
	// Draining is set by graceful shutdown; /ready answers 503 while it is
	// true. Nil means never draining.
	Draining *atomic.Bool
	// ServeMetrics mounts the metrics endpoint on this listener (false
	// when a separate metrics listener serves them).
	ServeMetrics bool
	// Applier runs validate, apply, diff and rollback, and holds the
	// version history.
	Applier *control.Applier
	// Audit holds the recent audit records shown by /api/v2/audit and the
	// status page.
	Audit *audit.Log
	// Token is the admin bearer token. "" means no token is required
	// (only allowed on a loopback listener; serve enforces that).
	Token string
	// MaxBodyBytes caps request bodies. Zero means 32 MiB, enough for a
	// config of tens of thousands of routes.
	MaxBodyBytes int64
	// Logger receives failed authentication attempts. Nil discards.
	Logger *slog.Logger
	// Now is the clock, for the auth limiter; nil means time.Now.
	Now func() time.Time
}

// New builds the admin handler.
func New(o Options) *Server {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, draining: o.Draining, routes: make(map[string]map[string]handlerFunc)}
	if s.draining == nil {
		s.draining = new(atomic.Bool)
	}
	s.auth = newAuthenticator(o.Token, o.Now)
	s.handle("GET", "/api/v2/config/current", s.current)
	s.handle("GET", "/api/v2/config/versions", s.versions)
	s.handle("POST", "/api/v2/config/validate", s.validate)
	s.handle("POST", "/api/v2/config/apply", s.apply)
	s.handle("POST", "/api/v2/config/diff", s.diff)
	s.handle("POST", "/api/v2/config/rollback", s.rollback)
	s.handle("GET", "/api/v2/pools", s.pools)
	s.handle("GET", "/api/v2/breakers", s.breakers)
	s.handle("GET", "/api/v2/traffic/canary", s.canary)
	s.handle("GET", "/api/v2/routes/match", s.explain)
	s.handle("GET", "/api/v2/audit", s.auditRecords)
	s.handle("GET", "/", s.statusPage)
	if o.ServeMetrics {
		s.metricsH = MetricsHandler(o.Snapshots, o.Metrics, http.HandlerFunc(s.serve))
	}
	return s
}

func (s *Server) handle(method, path string, h handlerFunc) {
	if s.routes[path] == nil {
		s.routes[path] = make(map[string]handlerFunc)
	}
	s.routes[path][method] = h
	if method == "GET" {
		s.routes[path]["HEAD"] = h
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if s.metricsH != nil {
		s.metricsH.ServeHTTP(w, r)
		return
	}
	s.serve(w, r)
}

// serve routes everything but metrics: the open probes first, then the
// authenticated API.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		if !allowGet(w, r) {
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	case "/ready":
		if !allowGet(w, r) {
			return
		}
		s.ready(w, r)
		return
	}
	// Every other path needs the token, unknown ones too: an unknown path
	// answered 404 without authentication would let anyone map the API.
	if !s.auth.check(w, r, s.o.Logger) {
		return
	}
	methods, h := s.lookup(r.URL.Path)
	if methods == nil {
		writeError(w, http.StatusNotFound, "no such admin endpoint: "+r.URL.Path)
		return
	}
	if h = methods[r.Method]; h == nil {
		w.Header().Set("Allow", allowList(methods))
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		return
	}
	h(w, r)
}

// lookup finds the handlers of a path, including the one parameterised
// path, /api/v2/pools/{pool_id}/health.
func (s *Server) lookup(path string) (map[string]handlerFunc, handlerFunc) {
	if m := s.routes[path]; m != nil {
		return m, nil
	}
	if rest, ok := strings.CutPrefix(path, "/api/v2/traffic/canary/"); ok {
		if route, ok := strings.CutSuffix(rest, "/reset"); ok && route != "" && !strings.Contains(route, "/") {
			h := func(w http.ResponseWriter, r *http.Request) { s.canaryReset(w, r, route) }
			return map[string]handlerFunc{"POST": h}, nil
		}
	}
	if rest, ok := strings.CutPrefix(path, "/api/v2/pools/"); ok {
		if id, ok := strings.CutSuffix(rest, "/health"); ok && id != "" && !strings.Contains(id, "/") {
			h := func(w http.ResponseWriter, r *http.Request) { s.poolHealth(w, r, id) }
			return map[string]handlerFunc{"GET": h, "HEAD": h}, nil
		}
	}
	return nil, nil
}

func allowList(methods map[string]handlerFunc) string {
	var out []string
	for _, m := range []string{"GET", "HEAD", "POST"} {
		if methods[m] != nil {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
	return false
}

// MetricsHandler serves the Prometheus exposition at the active config's
// metrics.path (default /metrics) unless metrics.enabled is false, and
// hands every other request to next. The path, switch and token are read
// from the snapshot per request, so an apply moves, protects or disables
// the endpoint at once. With metrics.require_token the endpoint wants
// "Authorization: Bearer <token>" with the token of metrics.token_env,
// which is not the admin token: scrapers get only what they need.
func MetricsHandler(snapshots *snapshot.Holder, m *obs.Metrics, next http.Handler) http.Handler {
	h := m.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, disabled, token := "/metrics", m == nil, ""
		if snap := snapshots.Load(); snap != nil {
			if snap.MetricsPath != "" {
				path = snap.MetricsPath
			}
			disabled = disabled || snap.MetricsDisabled
			token = snap.MetricsToken
		}
		if r.URL.Path != path || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		if disabled {
			writeError(w, http.StatusNotFound, "metrics are disabled (metrics.enabled: false)")
			return
		}
		if token != "" && !tokenEqual(bearer(r), token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			writeError(w, http.StatusUnauthorized, "metrics need the bearer token of metrics.token_env")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ready answers 200 once a snapshot is active (the empty one included) and
// 503 while draining, so load balancers stop sending new traffic before
// the listeners close (SPEC section 11).
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	switch snap := s.o.Snapshots.Load(); {
	case s.draining.Load():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	case snap == nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "version": snap.Version})
	}
}

// writeJSON writes v as an indented JSON body: the admin API is read by
// people as often as by programs.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error": "encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError writes the admin API's one error shape, {"error": message}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

var _ http.Handler = (*Server)(nil)
