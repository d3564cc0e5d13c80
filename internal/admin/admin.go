// Package admin serves the admin listener: liveness, readiness and
// metrics in this release; the config API of SPEC section 8 grows here.
// Admin paths are only ever mounted on the admin (or metrics) listener,
// never on a data-plane listener.
package admin

import (
	"net/http"
	"sync/atomic"

	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/snapshot"
)

// Server is the admin HTTP handler. Build it with New; safe for concurrent
// use.
type Server struct {
	snapshots *snapshot.Holder
	metrics   *obs.Metrics
	draining  *atomic.Bool
	mux       *http.ServeMux
	metricsH  http.Handler // nil when metrics are served elsewhere
}

// Options configures a Server.
type Options struct {
	// Snapshots is the holder /ready inspects. Required.
	Snapshots *snapshot.Holder
	// Metrics is served at /metrics; nil serves no metrics.
	Metrics *obs.Metrics
	// Draining is set by graceful shutdown; /ready answers 503 while it is
	// true. Nil means never draining.
	Draining *atomic.Bool
	// ServeMetrics mounts /metrics on this listener (false when a separate
	// metrics listener serves them).
	ServeMetrics bool
}

// New builds the admin handler.
func New(o Options) *Server {
	s := &Server{snapshots: o.Snapshots, metrics: o.Metrics, draining: o.Draining, mux: http.NewServeMux()}
	if s.draining == nil {
		s.draining = new(atomic.Bool)
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /ready", s.ready)
	if o.ServeMetrics {
		s.metricsH = MetricsHandler(o.Snapshots, o.Metrics, s.mux)
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.metricsH != nil {
		s.metricsH.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// MetricsHandler serves the Prometheus exposition at the active config's
// metrics.path (default /metrics) unless metrics.enabled is false, and
// hands every other request to next. The path and switch are read from the
// snapshot per request, so an apply moves or disables the endpoint at once.
func MetricsHandler(snapshots *snapshot.Holder, m *obs.Metrics, next http.Handler) http.Handler {
	h := m.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, disabled := "/metrics", m == nil
		if snap := snapshots.Load(); snap != nil {
			if snap.MetricsPath != "" {
				path = snap.MetricsPath
			}
			disabled = disabled || snap.MetricsDisabled
		}
		if r.URL.Path != path || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		if disabled {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// healthz answers 200 while the process is alive.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, `{"status":"ok"}`)
}

// ready answers 200 once a snapshot is active (the empty one included) and
// 503 while draining, so load balancers stop sending new traffic before
// the listeners close (SPEC section 11).
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.draining.Load():
		writeJSON(w, http.StatusServiceUnavailable, `{"status":"draining"}`)
	case s.snapshots.Load() == nil:
		writeJSON(w, http.StatusServiceUnavailable, `{"status":"starting"}`)
	default:
		writeJSON(w, http.StatusOK, `{"status":"ready","version":"`+s.snapshots.Load().Version+`"}`)
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(body + "\n"))
}

var _ http.Handler = (*Server)(nil)
