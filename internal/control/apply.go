// Package control is the control plane's one apply pipeline. Every config
// source (the config file, and later the admin API, pull and etcd) hands
// its input to an Applier, which parses, validates, compiles and swaps,
// serialised, so that a rejected config changes nothing and an accepted one
// becomes active in one pointer swap.
package control

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/keelproxy/keel/internal/compile"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/upstream"
)

// Source names where a config came from, for logs, history and audit.
type Source string

// The sources of this release.
const (
	SourceStartup Source = "startup"
	SourceFile    Source = "file"
	SourceAdmin   Source = "admin"
)

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

	// mu serialises applies and guards active.
	mu     sync.Mutex
	active *config.Config // nil while the empty snapshot serves
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
	return &Applier{holder: holder, state: state, metrics: metrics, logger: logger}
}

// ApplyBytes parses data in format f and applies it.
func (a *Applier) ApplyBytes(data []byte, f config.Format, src Source) (Result, error) {
	cfg, err := config.Parse(data, f)
	if err != nil {
		a.reject(src, err)
		return Result{}, err
	}
	return a.Apply(cfg, src)
}

// Apply validates, compiles and activates cfg. On any error nothing
// changes: the running snapshot keeps serving and no runtime state of it is
// touched. The returned error is a config.Errors for validation failures.
func (a *Applier) Apply(cfg *config.Config, src Source) (Result, error) {
	if err := cfg.Validate(); err != nil {
		a.reject(src, err)
		return Result{}, err
	}
	version := cfg.Version()

	a.mu.Lock()
	defer a.mu.Unlock()
	prev := a.holder.Load()
	if prev.Version == version {
		a.metrics.ConfigApplied("unchanged")
		return Result{Version: version, PreviousVersion: version, AppliedAt: prev.BuiltAt, Unchanged: true}, nil
	}
	next, err := compile.Snapshot(cfg, compile.Deps{State: a.state, Metrics: a.metrics})
	if err != nil {
		// The failed build may have registered endpoint entries; committing
		// the still-active pools releases exactly those.
		a.state.Commit(prev.PoolList)
		a.reject(src, err)
		return Result{}, err
	}
	a.holder.Swap(next)
	a.state.Commit(next.PoolList)
	forgetRemoved(a.metrics, prev, next)
	if a.active != nil && listenerSettingsChanged(a.active.Server, cfg.Server) {
		// Listener settings are fixed when the listener starts; say so
		// rather than let an operator believe a new limit is in force.
		a.logger.Warn("server.* changed: listener limits, timeouts and h2c take effect at the next restart",
			"version", version)
	}
	a.active = cfg
	a.metrics.SetConfigVersion(version)
	a.metrics.ConfigApplied("accepted")
	a.logger.Info("config applied", "version", version, "previous_version", prev.Version,
		"source", string(src), "routes", len(next.Routes), "pools", len(next.PoolList))
	return Result{Version: version, PreviousVersion: prev.Version, AppliedAt: next.BuiltAt}, nil
}

// Validate runs the pipeline up to compile against throwaway state and
// reports whether cfg would be accepted, without touching anything live.
func (a *Applier) Validate(cfg *config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	scratch := upstream.NewState(nil)
	defer scratch.Close()
	_, err := compile.Snapshot(cfg, compile.Deps{State: scratch})
	return err
}

// Active returns the active config (nil while the empty snapshot serves).
// The caller must not modify it.
func (a *Applier) Active() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.active
}

func (a *Applier) reject(src Source, err error) {
	a.metrics.ConfigApplied("rejected")
	var fe config.Errors
	if errors.As(err, &fe) {
		a.logger.Error("config rejected", "source", string(src), "errors", len(fe), "detail", fe.Error())
		return
	}
	a.logger.Error("config rejected", "source", string(src), "error", err.Error())
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
