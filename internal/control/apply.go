// Package control is the control plane's one apply pipeline. Every config
// source (the config file, the admin API, and later pull and etcd) hands
// its input to an Applier, which parses, validates, compiles, swaps and
// records, serialised, so that a rejected config changes nothing and an
// accepted one becomes active in one pointer swap. The Applier also keeps
// the version history that rollback draws on, and writes every apply,
// rejection and rollback to the audit log.
package control

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/audit"
	"github.com/keelproxy/keel/internal/compile"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/resilience"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/tracing"
	"github.com/keelproxy/keel/internal/upstream"
)

// Source names where a config came from, for logs, history and audit.
type Source string

// The sources of this release.
const (
	SourceStartup  Source = "startup"
	SourceFile     Source = "file"
	SourceAdmin    Source = "admin"
	SourceRollback Source = "rollback"
)

// Request says who asks for an apply and under what condition.
type Request struct {
	// Source is where the config came from; it is recorded in the
	// history and the audit log.
	Source Source
	// Actor names who acted, for the audit log ("admin 127.0.0.1",
	// "admin CN=ops"); "" means the source's name.
	Actor string
	// ExpectedVersion, when set, makes the apply conditional: it is
	// refused with a *ConflictError unless the active version is this
	// one (optimistic concurrency between operators).
	ExpectedVersion string
}

func (r Request) actor() string {
	if r.Actor != "" {
		return r.Actor
	}
	return string(r.Source)
}

// ConflictError is returned when Request.ExpectedVersion is not the active
// version. Nothing changed.
type ConflictError struct {
	Expected, Active string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("expected_version %q is not the active version %q", e.Expected, e.Active)
}

// UnknownVersionError is returned by Rollback for a version the history
// does not hold (or, with no version given, when there is no previous one).
type UnknownVersionError struct {
	Version string // "" when the previous version was asked for
}

func (e *UnknownVersionError) Error() string {
	if e.Version == "" {
		return "no previous version to roll back to"
	}
	return fmt.Sprintf("version %q is not in the history", e.Version)
}

// HistoryEntry is one version in the history.
type HistoryEntry struct {
	Version   string
	AppliedAt time.Time
	Source    Source
	Active    bool
	// Config is the parsed config of this version; never modified.
	Config *config.Config
}

// AuditLog receives one record per control-plane action. *audit.Log
// implements it.
type AuditLog interface {
	Append(audit.Record) (audit.Record, error)
}

// historyKeep is how many distinct versions the history holds; the admin
// API promises at least 20.
const historyKeep = 50

// Result describes one accepted apply.
type Result struct {
	Version         string
	PreviousVersion string
	AppliedAt       time.Time
	// Unchanged is true when the config hashed to the active version; the
	// apply was then a no-op (no compile, no swap).
	Unchanged bool
}

// Applier owns the transition from one snapshot to the next. It is the only
// caller of snapshot.Holder.Swap and upstream.State.Commit. Safe for
// concurrent use: applies are serialised.
type Applier struct {
	holder  *snapshot.Holder
	state   *upstream.State
	metrics *obs.Metrics
	logger  *slog.Logger

	// mu serialises applies and guards active and history.
	mu     sync.Mutex
	active *config.Config // nil while the empty snapshot serves
	// history holds distinct versions, most recently activated first;
	// history[0] is the active one once any config was applied.
	history []HistoryEntry
	audit   AuditLog
	// runtime holds breakers and retry budgets across snapshots; only
	// the apply path acquires and commits.
	runtime *compile.Runtime
	tracing *tracing.Provider
	// tlsListener makes configs without any certificate invalid; read by
	// Validate without a.mu.
	tlsListener atomic.Bool
}

// SetTLSListener tells the Applier that a TLS listener serves its
// snapshots, so a config that leaves it without a certificate (no
// tls.certificates, no tls.acme, no PROXY_TLS_CERT) is rejected instead of
// failing every handshake. Call it after the start-up config (if any) is
// applied and before the listener serves: it fails when the active
// snapshot has no certificate, and gives the empty snapshot (no config
// yet) the default certificate of PROXY_TLS_CERT/PROXY_TLS_KEY.
func (a *Applier) SetTLSListener(on bool) error {
	a.tlsListener.Store(on)
	if !on {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.holder.Load()
	if cur.Version == "" {
		store, err := compile.DefaultTLS(nil)
		if err != nil {
			return err
		}
		next := *cur
		next.TLS = store
		a.holder.Swap(&next)
		return nil
	}
	if cur.TLS.Empty() {
		return errors.New("the TLS listener needs a certificate: tls.certificates, tls.acme, or PROXY_TLS_CERT/PROXY_TLS_KEY")
	}
	return nil
}

// SetTracing hands the trace provider to the snapshots this Applier
// builds and lets applies set its sample ratio (tracing.sample_ratio).
// Call it before the first apply; nil (the default) traces nothing.
func (a *Applier) SetTracing(p *tracing.Provider) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tracing = p
}

// SetAuditLog makes the Applier record every apply, rejection and rollback
// in l. Call it before the first apply; nil (the default) records nothing.
func (a *Applier) SetAuditLog(l AuditLog) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.audit = l
}

// NewApplier returns an Applier publishing into holder. It stores the empty
// snapshot in holder when holder holds none, so the data plane always has
// one to read. metrics and logger may be nil.
func NewApplier(holder *snapshot.Holder, state *upstream.State, metrics *obs.Metrics, logger *slog.Logger) *Applier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if holder.Load() == nil {
		holder.Swap(compile.Empty())
	}
	a := &Applier{holder: holder, state: state, metrics: metrics, logger: logger, runtime: compile.NewRuntime(metrics)}
	a.runtime.OnBrake(func(route, reason string) {
		// A brake is a control-plane action taken by the data plane: it
		// is logged and audited like an apply.
		a.logger.Warn("canary braked", "route", route, "reason", reason)
		version := a.holder.Load().Version // no lock: this runs on a request
		a.record(audit.Record{Actor: "auto_brake", Action: "brake", Version: version, PreviousVersion: version,
			Result: "braked", Detail: map[string]any{"route": route, "reason": reason}})
	})
	metrics.SetRetryBudgets(func(emit func(route string, tokens float64)) {
		a.runtime.Budgets.Range(func(route string, b *resilience.Budget) { emit(route, b.Tokens()) })
	})
	return a
}

// ResetBrake lifts the automatic brake of a route's canary, as an operator
// action, and audits it. It reports false when the route has no traffic
// plan or its canary was not braked.
func (a *Applier) ResetBrake(route, actor string) bool {
	sp, ok := a.runtime.Splits.Get(route)
	if !ok || !sp.ResetBrake() {
		return false
	}
	a.logger.Info("canary brake reset", "route", route, "actor", actor)
	version := a.holder.Load().Version
	a.record(audit.Record{Actor: actor, Action: "brake_reset", Version: version, PreviousVersion: version,
		Result: "accepted", Detail: map[string]any{"route": route}})
	return true
}

// Close stops the background work of the runtime state (Redis health
// probes, JWKS refreshers) and waits for it. Call it once at shutdown,
// after the listeners have stopped.
func (a *Applier) Close() { a.runtime.Close() }

// Runtime returns the registries of breakers and retry budgets, for the
// admin views. Safe for concurrent use.
func (a *Applier) Runtime() *compile.Runtime { return a.runtime }

// ApplyBytes parses data in format f and applies it.
func (a *Applier) ApplyBytes(data []byte, f config.Format, src Source) (Result, error) {
	return a.ApplyBytesWith(data, f, Request{Source: src})
}

// ApplyBytesWith parses data in format f and applies it as req says. A
// parse error is rejected (and audited) like a validation error.
func (a *Applier) ApplyBytesWith(data []byte, f config.Format, req Request) (Result, error) {
	cfg, err := config.Parse(data, f)
	if err != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.reject("apply", req, "", err)
		return Result{}, err
	}
	return a.ApplyWith(cfg, req)
}

// Apply validates, compiles and activates cfg. On any error nothing
// changes: the running snapshot keeps serving and no runtime state of it is
// touched. The returned error is a config.Errors for validation failures.
func (a *Applier) Apply(cfg *config.Config, src Source) (Result, error) {
	return a.ApplyWith(cfg, Request{Source: src})
}

// ApplyWith is Apply with the conditions and attribution of req. It
// returns a *ConflictError when req.ExpectedVersion is set and is not the
// active version.
func (a *Applier) ApplyWith(cfg *config.Config, req Request) (Result, error) {
	// Validation is the expensive pure part; it runs before the lock so
	// that a slow validation does not hold up other applies' swaps.
	verr := cfg.Validate()
	a.mu.Lock()
	defer a.mu.Unlock()
	if verr != nil {
		a.reject("apply", req, cfg.Version(), verr)
		return Result{}, verr
	}
	return a.activate(cfg, req, "apply")
}

// activate compiles and swaps in cfg, which passed validation. a.mu is
// held.
func (a *Applier) activate(cfg *config.Config, req Request, action string) (Result, error) {
	version := cfg.Version()
	prev := a.holder.Load()
	if req.ExpectedVersion != "" && req.ExpectedVersion != prev.Version {
		err := &ConflictError{Expected: req.ExpectedVersion, Active: prev.Version}
		a.reject(action, req, version, err)
		return Result{}, err
	}
	// The digest reads the files the config names: once per apply, for
	// the unchanged check and for the snapshot built below.
	digest := compile.FilesDigest(cfg, nil)
	if prev.Version == version && prev.FilesDigest == digest {
		a.metrics.ConfigApplied("unchanged")
		a.record(audit.Record{Actor: req.actor(), Action: action, Version: version, PreviousVersion: version,
			Result: "unchanged", Detail: map[string]any{"source": string(req.Source)}})
		return Result{Version: version, PreviousVersion: version, AppliedAt: prev.BuiltAt, Unchanged: true}, nil
	}
	next, err := compile.Snapshot(cfg, compile.Deps{State: a.state, Metrics: a.metrics, Runtime: a.runtime,
		Tracing: a.tracing, Version: version, FilesDigest: digest, TLSListener: a.tlsListener.Load(), ACME: a.runtime.ACME})
	if err != nil {
		// The failed build may have registered endpoint entries, breakers
		// and budgets; committing the still-active pools and aborting the
		// registries' build releases exactly those.
		a.state.Commit(prev.PoolList)
		a.runtime.Abort()
		a.reject(action, req, version, err)
		return Result{}, err
	}
	a.holder.Swap(next)
	a.state.Commit(next.PoolList)
	a.runtime.Commit(next)
	if cfg.Tracing != nil && cfg.Tracing.SampleRatio != nil {
		a.tracing.SetSampleRatio(*cfg.Tracing.SampleRatio)
	} else {
		a.tracing.SetSampleRatio(config.DefaultSampleRatio)
	}
	forgetRemoved(a.metrics, prev, next)
	if a.active != nil && listenerSettingsChanged(a.active.Server, cfg.Server) {
		// Listener settings are fixed when the listener starts; say so
		// rather than let an operator believe a new limit is in force.
		a.logger.Warn("server.* changed: listener limits, timeouts and h2c take effect at the next restart",
			"version", version)
	}
	a.active = cfg
	a.remember(HistoryEntry{Version: version, AppliedAt: next.BuiltAt, Source: req.Source, Config: cfg})
	a.metrics.SetConfigVersion(version)
	a.metrics.ConfigApplied("accepted")
	a.logger.Info("config applied", "action", action, "version", version, "previous_version", prev.Version,
		"source", string(req.Source), "actor", req.actor(), "routes", len(next.Routes), "pools", len(next.PoolList))
	a.record(audit.Record{Actor: req.actor(), Action: action, Version: version, PreviousVersion: prev.Version,
		Result: "accepted", Detail: map[string]any{"source": string(req.Source),
			"routes": len(next.Routes), "pools": len(next.PoolList)}})
	return Result{Version: version, PreviousVersion: prev.Version, AppliedAt: next.BuiltAt}, nil
}

// Rollback re-activates a version from the history: version, or with ""
// the one active before the current one. It goes through the same compile
// and swap as an apply, so runtime state of pools the two versions share
// survives. It returns an *UnknownVersionError when the history does not
// hold the version.
func (a *Applier) Rollback(version string, req Request) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var target *HistoryEntry
	switch {
	case version == "" && len(a.history) > 1:
		target = &a.history[1]
	case version != "":
		for i := range a.history {
			if a.history[i].Version == version {
				target = &a.history[i]
				break
			}
		}
	}
	if target == nil {
		err := &UnknownVersionError{Version: version}
		a.reject("rollback", req, version, err)
		return Result{}, err
	}
	if req.Source == "" {
		req.Source = SourceRollback
	}
	// Validate again: what a config refers to outside itself (files,
	// environment variables) may have changed since it was applied.
	if err := target.Config.Validate(); err != nil {
		a.reject("rollback", req, target.Version, err)
		return Result{}, err
	}
	return a.activate(target.Config, req, "rollback")
}

// History returns the versions the Applier knows, most recently activated
// first, at most 50. The entries' configs must not be modified.
func (a *Applier) History() []HistoryEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.history)
	for i := range out {
		out[i].Active = i == 0
	}
	return out
}

// Current returns the active version's history entry, and false while the
// empty snapshot serves.
func (a *Applier) Current() (HistoryEntry, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.history) == 0 {
		return HistoryEntry{}, false
	}
	e := a.history[0]
	e.Active = true
	return e, true
}

// remember puts e at the front of the history, dropping an older entry of
// the same version and the oldest beyond historyKeep. a.mu is held.
func (a *Applier) remember(e HistoryEntry) {
	a.history = slices.DeleteFunc(a.history, func(h HistoryEntry) bool { return h.Version == e.Version })
	a.history = slices.Insert(a.history, 0, e)
	if len(a.history) > historyKeep {
		a.history = a.history[:historyKeep]
	}
}

// Validate runs the pipeline up to compile against throwaway state and
// reports whether cfg would be accepted, without touching anything live.
func (a *Applier) Validate(cfg *config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	scratch := upstream.NewState(nil)
	defer scratch.Close()
	_, err := compile.Snapshot(cfg, compile.Deps{State: scratch, TLSListener: a.tlsListener.Load()})
	return err
}

// Active returns the active config (nil while the empty snapshot serves).
// The caller must not modify it.
func (a *Applier) Active() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.active
}

// reject counts, logs and audits a refused action. a.mu is held.
func (a *Applier) reject(action string, req Request, version string, err error) {
	a.metrics.ConfigApplied("rejected")
	prev := a.holder.Load().Version
	detail := map[string]any{"source": string(req.Source), "error": err.Error()}
	var fe config.Errors
	if errors.As(err, &fe) {
		a.logger.Error("config rejected", "action", action, "source", string(req.Source), "actor", req.actor(),
			"errors", len(fe), "detail", fe.Error())
		list := make([]map[string]string, len(fe))
		for i, e := range fe {
			list[i] = map[string]string{"path": e.Path, "message": e.Message}
		}
		detail["errors"] = list
		delete(detail, "error")
	} else {
		a.logger.Error("config rejected", "action", action, "source", string(req.Source), "actor", req.actor(),
			"error", err.Error())
	}
	a.record(audit.Record{Actor: req.actor(), Action: action, Version: version, PreviousVersion: prev,
		Result: "rejected", Detail: detail})
}

// record appends r to the audit log, if any. A failed write is logged and
// does not undo the action: the action happened, and refusing further
// applies because a disk is full would make an outage worse. a.mu is held,
// which also keeps the records in the order of the actions.
func (a *Applier) record(r audit.Record) {
	if a.audit == nil {
		return
	}
	if _, err := a.audit.Append(r); err != nil {
		a.logger.Error("audit log write failed", "action", r.Action, "version", r.Version, "error", err.Error())
	}
}

// forgetRemoved drops the metric series of routes that are gone, so an
// exposition never shows config that no longer exists.
func forgetRemoved(m *obs.Metrics, prev, next *snapshot.Snapshot) {
	keep := make(map[string]bool, len(next.Routes))
	for _, r := range next.Routes {
		keep[r.ID] = true
	}
	for _, r := range prev.Routes {
		if !keep[r.ID] {
			m.ForgetRoute(r.ID)
		}
	}
}

// String describes a result for logs and the CLI.
func (r Result) String() string {
	if r.Unchanged {
		return fmt.Sprintf("version %s unchanged", r.Version)
	}
	return fmt.Sprintf("version %s applied (was %s)", r.Version, r.PreviousVersion)
}

// listenerSettingsChanged reports whether an apply changed the server.*
// settings that are fixed when a listener starts: all of them except
// trusted_proxies, which the snapshot carries.
func listenerSettingsChanged(prev, next config.Server) bool {
	prev.TrustedProxies, next.TrustedProxies = nil, nil
	return !reflect.DeepEqual(prev, next)
}
