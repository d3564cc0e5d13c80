package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keelproxy/keel/internal/compile"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/control"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/resilience"
	"github.com/keelproxy/keel/internal/router"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/traffic"
	"github.com/keelproxy/keel/internal/upstream"
)

// configRequest is the body of validate, apply and diff.
type configRequest struct {
	Config          json.RawMessage `json:"config"`
	ExpectedVersion string          `json:"expected_version"`
}

// readBody decodes a JSON body into v strictly (unknown keys are errors,
// one document only), answering 400 or 413 itself on failure.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.o.MaxBodyBytes))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := "malformed JSON body: " + err.Error()
		if strings.Contains(err.Error(), "unknown field") {
			msg = "unexpected key in the body: " + strings.TrimPrefix(err.Error(), "json: ") +
				` (the body is {"config": {...}}; signed bundles are not supported yet)`
		}
		writeError(w, http.StatusBadRequest, msg)
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "malformed JSON body: more than one document")
		return false
	}
	return true
}

// readConfig reads a configRequest and parses its config. A config that
// does not parse is answered 422 with its errors.
func (s *Server) readConfig(w http.ResponseWriter, r *http.Request) (*configRequest, *config.Config, bool) {
	var req configRequest
	if !s.readBody(w, r, &req) {
		return nil, nil, false
	}
	if len(req.Config) == 0 || string(req.Config) == "null" {
		writeError(w, http.StatusBadRequest, `missing "config": the body is {"config": {...}}`)
		return nil, nil, false
	}
	cfg, err := config.Parse(req.Config, config.FormatJSON)
	if err != nil {
		writeInvalid(w, err)
		return nil, nil, false
	}
	return &req, cfg, true
}

// fieldErrors turns an apply or validation error into the path/message
// list of the API.
func fieldErrors(err error) []config.FieldError {
	var fe config.Errors
	if errors.As(err, &fe) {
		return fe
	}
	return []config.FieldError{{Message: err.Error()}}
}

func writeInvalid(w http.ResponseWriter, err error) {
	errs := fieldErrors(err)
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"valid":  false,
		"error":  fmt.Sprintf("config rejected: %d errors", len(errs)),
		"errors": errs,
	})
}

func (s *Server) needApplier(w http.ResponseWriter) bool {
	if s.o.Applier == nil {
		writeError(w, http.StatusNotFound, "the config API is not enabled on this listener")
		return false
	}
	return true
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	if !s.needApplier(w) {
		return
	}
	_, cfg, ok := s.readConfig(w, r)
	if !ok {
		return
	}
	if err := s.o.Applier.Validate(cfg); err != nil {
		writeInvalid(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": true, "version": cfg.Version()})
}

// applyAnswer is the body of a successful apply or rollback.
type applyAnswer struct {
	Version         string    `json:"version"`
	PreviousVersion string    `json:"previous_version"`
	AppliedAt       time.Time `json:"applied_at"`
	Unchanged       bool      `json:"unchanged"`
}

func (s *Server) writeApplyResult(w http.ResponseWriter, res control.Result, err error) {
	var conflict *control.ConflictError
	var unknown *control.UnknownVersionError
	switch {
	case errors.As(err, &conflict):
		writeJSON(w, http.StatusConflict, map[string]string{"error": conflict.Error(), "active_version": conflict.Active})
	case errors.As(err, &unknown):
		writeError(w, http.StatusNotFound, unknown.Error())
	case err != nil:
		writeInvalid(w, err)
	default:
		writeJSON(w, http.StatusOK, applyAnswer{Version: res.Version, PreviousVersion: res.PreviousVersion,
			AppliedAt: res.AppliedAt.UTC(), Unchanged: res.Unchanged})
	}
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	if !s.needApplier(w) {
		return
	}
	var req configRequest
	if !s.readBody(w, r, &req) {
		return
	}
	if len(req.Config) == 0 || string(req.Config) == "null" {
		writeError(w, http.StatusBadRequest, `missing "config": the body is {"config": {...}}`)
		return
	}
	// ApplyBytesWith parses too, so that a config that does not even
	// parse is rejected, counted and audited like any other.
	res, err := s.o.Applier.ApplyBytesWith(req.Config, config.FormatJSON, control.Request{
		Source: control.SourceAdmin, Actor: actor(r), ExpectedVersion: req.ExpectedVersion})
	s.writeApplyResult(w, res, err)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	if !s.needApplier(w) {
		return
	}
	var req struct {
		Version string `json:"version"`
	}
	if r.ContentLength != 0 && !s.readBody(w, r, &req) {
		return
	}
	res, err := s.o.Applier.Rollback(req.Version, control.Request{Source: control.SourceRollback, Actor: actor(r)})
	s.writeApplyResult(w, res, err)
}

func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	if !s.needApplier(w) {
		return
	}
	_, cfg, ok := s.readConfig(w, r)
	if !ok {
		return
	}
	from, _ := s.o.Applier.Current()
	changes := config.Diff(from.Config, cfg)
	if changes == nil {
		changes = []config.Change{}
	}
	answer := map[string]any{"from": from.Version, "to": cfg.Version(), "changes": changes}
	// A diff is most useful before an apply, so say whether the apply
	// would be accepted rather than refuse to diff an invalid config.
	if err := s.o.Applier.Validate(cfg); err != nil {
		answer["valid"], answer["errors"] = false, fieldErrors(err)
	} else {
		answer["valid"] = true
	}
	writeJSON(w, http.StatusOK, answer)
}

func (s *Server) current(w http.ResponseWriter, _ *http.Request) {
	if !s.needApplier(w) {
		return
	}
	e, ok := s.o.Applier.Current()
	if !ok {
		snap := s.o.Snapshots.Load()
		writeJSON(w, http.StatusOK, map[string]any{"version": "", "applied_at": snap.BuiltAt.UTC(),
			"source": "none", "config": nil})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": e.Version, "label": e.Config.Label,
		"applied_at": e.AppliedAt.UTC(), "source": e.Source, "config": json.RawMessage(e.Config.Canonical())})
}

func (s *Server) versions(w http.ResponseWriter, _ *http.Request) {
	if !s.needApplier(w) {
		return
	}
	type entry struct {
		Version   string    `json:"version"`
		Label     string    `json:"label,omitempty"`
		AppliedAt time.Time `json:"applied_at"`
		Source    string    `json:"source"`
		Active    bool      `json:"active"`
	}
	out := []entry{}
	for _, h := range s.o.Applier.History() {
		out = append(out, entry{h.Version, h.Config.Label, h.AppliedAt.UTC(), string(h.Source), h.Active})
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": out})
}

type poolSummary struct {
	ID       string `json:"id"`
	Healthy  int    `json:"healthy"`
	Total    int    `json:"total"`
	Balancer string `json:"balancer"`
	Protocol string `json:"protocol"`
}

func summarisePools(snap *snapshot.Snapshot) []poolSummary {
	out := []poolSummary{}
	for _, p := range snap.PoolList {
		out = append(out, poolSummary{ID: p.ID(), Healthy: p.HealthyCount(), Total: len(p.Endpoints()),
			Balancer: p.Balancer().String(), Protocol: p.Protocol().String()})
	}
	return out
}

func (s *Server) pools(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"pools": summarisePools(s.o.Snapshots.Load())})
}

type endpointHealth struct {
	Address string `json:"address"`
	Weight  int    `json:"weight"`
	Healthy bool   `json:"healthy"`
	Ejected bool   `json:"ejected"`
	// EjectedUntil is set while the endpoint is ejected (passive health
	// or outlier detection).
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
	// ActiveHealthy is the verdict of the active checks (true without
	// them).
	ActiveHealthy       bool   `json:"active_healthy"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	TimesEjected        int    `json:"times_ejected"`
	Breaker             string `json:"breaker"`
	InFlight            int64  `json:"in_flight"`
}

// poolBreakerState is the state of a pool's own breaker, or "none".
func (s *Server) poolBreakerState(pool string) string {
	if s.o.Applier == nil {
		return "none"
	}
	if b, ok := s.o.Applier.Runtime().Breakers.Get(compile.BreakerKey(pool, "")); ok {
		return b.State().String()
	}
	return "none"
}

func (s *Server) endpointsOf(p *upstream.Pool) []endpointHealth {
	breaker := s.poolBreakerState(p.ID())
	eps := []endpointHealth{}
	for i, e := range p.Endpoints() {
		hs := e.HealthState()
		eh := endpointHealth{Address: e.Address(), Weight: p.Weight(i), Healthy: hs.Healthy, Ejected: hs.Ejected,
			ActiveHealthy: hs.ActiveHealthy, ConsecutiveFailures: hs.ConsecutiveFailures, TimesEjected: hs.TimesEjected,
			Breaker: breaker, InFlight: e.InFlight()}
		if hs.Ejected {
			until := hs.EjectedUntil.UTC()
			eh.EjectedUntil = &until
		}
		eps = append(eps, eh)
	}
	return eps
}

func (s *Server) poolHealth(w http.ResponseWriter, _ *http.Request, id string) {
	p := s.o.Snapshots.Load().Pools[id]
	if p == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no pool %q in the active config", id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pool": id, "healthy": p.HealthyCount(), "total": len(p.Endpoints()),
		"breaker": s.poolBreakerState(id), "endpoints": s.endpointsOf(p)})
}

type breakerView struct {
	Key       string     `json:"key"`
	Pool      string     `json:"pool"`
	Route     string     `json:"route,omitempty"`
	State     string     `json:"state"`
	ErrorRate float64    `json:"error_rate"`
	Requests  int64      `json:"requests"`
	Failures  int64      `json:"failures"`
	Trips     uint64     `json:"trips"`
	OpenedAt  *time.Time `json:"opened_at"`
}

func viewBreaker(key string, b *resilience.Breaker) breakerView {
	pool, route := compile.ParseBreakerKey(key)
	st := b.Stats()
	v := breakerView{Key: key, Pool: pool, Route: route, State: st.State.String(), ErrorRate: st.ErrorRate,
		Requests: int64(st.Requests), Failures: int64(st.Failures), Trips: st.Trips}
	if !st.OpenedAt.IsZero() {
		t := st.OpenedAt.UTC()
		v.OpenedAt = &t
	}
	return v
}

// breakers lists every live circuit breaker: pools' own and routes' own
// (a policy circuit_breaker), sorted by key.
func (s *Server) breakers(w http.ResponseWriter, _ *http.Request) {
	out := []breakerView{}
	if s.o.Applier != nil {
		s.o.Applier.Runtime().Breakers.Range(func(key string, b *resilience.Breaker) {
			out = append(out, viewBreaker(key, b))
		})
	}
	slices.SortFunc(out, func(a, b breakerView) int { return strings.Compare(a.Key, b.Key) })
	writeJSON(w, http.StatusOK, map[string]any{"breakers": out})
}

type variantView struct {
	Requests  int64   `json:"requests"`
	ErrorRate float64 `json:"error_rate"`
	P95Ms     float64 `json:"p95_ms"`
}

type canaryView struct {
	Route            string                 `json:"route"`
	StablePool       string                 `json:"stable_pool"`
	CanaryPool       string                 `json:"canary_pool"`
	ConfiguredWeight int                    `json:"configured_weight"`
	EffectiveWeight  int                    `json:"effective_weight"`
	Braked           bool                   `json:"braked"`
	BrakeReason      string                 `json:"brake_reason"`
	BrakedAt         *time.Time             `json:"braked_at"`
	Variants         map[string]variantView `json:"variants"`
}

// canary lists every route's traffic plan with its live numbers: the
// configured and effective canary weight, the brake and why, and each
// variant's requests, error rate and p95 over the brake window.
func (s *Server) canary(w http.ResponseWriter, _ *http.Request) {
	out := []canaryView{}
	if s.o.Applier != nil {
		s.o.Applier.Runtime().Splits.Range(func(route string, sp *traffic.Split) {
			st := sp.Stats()
			v := canaryView{Route: route, StablePool: st.StablePool, CanaryPool: st.CanaryPool,
				ConfiguredWeight: st.ConfiguredWeight, EffectiveWeight: st.EffectiveWeight, Braked: st.Braked,
				BrakeReason: st.BrakeReason, Variants: map[string]variantView{}}
			if !st.BrakedAt.IsZero() {
				t := st.BrakedAt.UTC()
				v.BrakedAt = &t
			}
			for name, vs := range st.Variants {
				v.Variants[name] = variantView{Requests: vs.Requests, ErrorRate: vs.ErrorRate, P95Ms: vs.P95Ms}
			}
			out = append(out, v)
		})
	}
	slices.SortFunc(out, func(a, b canaryView) int { return strings.Compare(a.Route, b.Route) })
	writeJSON(w, http.StatusOK, map[string]any{"routes": out})
}

// canaryReset lifts a route's canary brake (POST
// /api/v2/traffic/canary/{route}/reset).
func (s *Server) canaryReset(w http.ResponseWriter, r *http.Request, route string) {
	if !s.needApplier(w) {
		return
	}
	if !s.o.Applier.ResetBrake(route, actor(r)) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("route %q has no braked canary", route))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"route": route, "braked": false})
}

type candidate struct {
	Route  string `json:"route"`
	Result string `json:"result"`
	Reason string `json:"reason"`
}

// explain answers which route would serve a request, from the active
// snapshot's own router, so it can never disagree with the data plane.
func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	host, path, method := q.Get("host"), q.Get("path"), q.Get("method")
	if path == "" {
		path = "/"
	}
	if method == "" {
		method = http.MethodGet
	}
	rawQuery := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, rawQuery = path[:i], path[i+1:]
	}
	h := http.Header{}
	for _, kv := range q["h"] {
		name, value, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(name) == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("h=%q: want Name:value", kv))
			return
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	snap := s.o.Snapshots.Load()
	res, cands := snap.Router.Explain(host, method, path, rawQuery, h)
	out := map[string]any{"matched": res.Status == router.Matched, "host": host, "path": path, "method": method}
	switch res.Status {
	case router.Matched:
		rt := res.Rule.Value
		out["route"], out["pool"], out["policy"], out["middleware"] = rt.ID, rt.PoolID, rt.PolicyID, rt.MiddlewareID
		// The state the request would meet at the pool: its health and
		// the breaker guarding it for this route.
		out["pool_health"] = map[string]any{"healthy": rt.Pool.HealthyCount(), "total": len(rt.Pool.Endpoints()),
			"endpoints": s.endpointsOf(rt.Pool)}
		if fw, ok := rt.Handler.(*proxy.Forwarder); ok && fw.Breaker != nil {
			st := fw.Breaker.Stats()
			out["breaker"] = map[string]any{"state": st.State.String(), "error_rate": st.ErrorRate, "requests": st.Requests}
		} else {
			out["breaker"] = nil
		}
		// 200 here means "forwarded": the upstream decides the final
		// status.
		out["status"] = http.StatusOK
		if res.MatchedPrefix != "" {
			out["matched_prefix"] = res.MatchedPrefix
		}
	case router.MethodNotAllowed:
		out["status"], out["error"], out["allow"] = http.StatusMethodNotAllowed, "method_not_allowed", res.Allow
	default:
		out["status"], out["error"] = http.StatusNotFound, "no_route"
	}
	list := make([]candidate, len(cands))
	for i, c := range cands {
		list[i] = candidate{Route: c.ID, Result: c.Result, Reason: c.Reason}
	}
	out["candidates"] = list
	out["version"] = snap.Version
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) auditRecords(w http.ResponseWriter, _ *http.Request) {
	records := []any{}
	if s.o.Audit != nil {
		for _, rec := range s.o.Audit.Recent(0) {
			records = append(records, rec)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": records})
}
