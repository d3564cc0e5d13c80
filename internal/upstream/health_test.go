package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/obs"
)

func TestHealthConfig(t *testing.T) {
	t.Parallel()
	ok := []EndpointConfig{{Address: "127.0.0.1:9001"}}
	tests := []struct {
		name        string
		cfg         PoolConfig
		wantErr     string // empty: valid
		wantHealth  *HealthCheck
		wantPassive *PassiveHealth
		wantOutlier *OutlierDetection
	}{
		{name: "all nil"},
		{name: "zero blocks are off", cfg: PoolConfig{Health: &HealthCheck{}, Passive: &PassiveHealth{}, Outlier: &OutlierDetection{}}},
		{
			name:       "active defaults",
			cfg:        PoolConfig{Health: &HealthCheck{Interval: 5 * time.Second}},
			wantHealth: &HealthCheck{Interval: 5 * time.Second, Timeout: time.Second, Path: "/health", StatusLo: 200, StatusHi: 399, HealthyThreshold: 2, UnhealthyThreshold: 3},
		},
		{
			name:       "active short interval caps the default timeout",
			cfg:        PoolConfig{Health: &HealthCheck{Interval: 300 * time.Millisecond, Path: "/ready?deep=1", StatusLo: 204}},
			wantHealth: &HealthCheck{Interval: 300 * time.Millisecond, Timeout: 300 * time.Millisecond, Path: "/ready?deep=1", StatusLo: 204, StatusHi: 204, HealthyThreshold: 2, UnhealthyThreshold: 3},
		},
		{
			name:        "passive defaults",
			cfg:         PoolConfig{Passive: &PassiveHealth{ConsecutiveFailures: 7}},
			wantPassive: &PassiveHealth{ConsecutiveFailures: 7, EjectionDuration: 30 * time.Second},
		},
		{
			name:        "outlier defaults",
			cfg:         PoolConfig{Outlier: &OutlierDetection{ErrorRatePercent: 40}},
			wantOutlier: &OutlierDetection{ErrorRatePercent: 40, Interval: 10 * time.Second, BaseEjectionTime: 30 * time.Second, MaxEjectionPercent: 50},
		},
		{name: "active without interval", cfg: PoolConfig{Health: &HealthCheck{Path: "/h"}}, wantErr: "health: interval is required"},
		{name: "active negative", cfg: PoolConfig{Health: &HealthCheck{Interval: time.Second, HealthyThreshold: -1}}, wantErr: "health: negative"},
		{name: "timeout over interval", cfg: PoolConfig{Health: &HealthCheck{Interval: time.Second, Timeout: 2 * time.Second}}, wantErr: "exceeds interval"},
		{name: "relative path", cfg: PoolConfig{Health: &HealthCheck{Interval: time.Second, Path: "health"}}, wantErr: "path"},
		{name: "absolute URL path", cfg: PoolConfig{Health: &HealthCheck{Interval: time.Second, Path: "//evil.example/x"}}, wantErr: "path"},
		{name: "path with space", cfg: PoolConfig{Health: &HealthCheck{Interval: time.Second, Path: "/a b"}}, wantErr: "path"},
		{name: "status high only", cfg: PoolConfig{Health: &HealthCheck{Interval: time.Second, StatusHi: 299}}, wantErr: "no lower bound"},
		{name: "status inverted", cfg: PoolConfig{Health: &HealthCheck{Interval: time.Second, StatusLo: 300, StatusHi: 200}}, wantErr: "invalid status range"},
		{name: "status out of range", cfg: PoolConfig{Health: &HealthCheck{Interval: time.Second, StatusLo: 200, StatusHi: 600}}, wantErr: "invalid status range"},
		{name: "passive duration alone", cfg: PoolConfig{Passive: &PassiveHealth{EjectionDuration: time.Second}}, wantErr: "consecutive failures is required"},
		{name: "passive negative", cfg: PoolConfig{Passive: &PassiveHealth{ConsecutiveFailures: -1}}, wantErr: "passive health: negative"},
		{name: "outlier without detector", cfg: PoolConfig{Outlier: &OutlierDetection{Interval: time.Second}}, wantErr: "no detector"},
		{name: "outlier rate over 100", cfg: PoolConfig{Outlier: &OutlierDetection{ErrorRatePercent: 101}}, wantErr: "above 100"},
		{name: "outlier max over 100", cfg: PoolConfig{Outlier: &OutlierDetection{ConsecutiveFailures: 1, MaxEjectionPercent: 101}}, wantErr: "above 100"},
		{name: "outlier negative", cfg: PoolConfig{Outlier: &OutlierDetection{LatencyThreshold: -time.Second}}, wantErr: "outlier detection: negative"},
	}
	for _, tt := range tests {
		s := newTestState(t, nil)
		cfg := tt.cfg
		cfg.ID, cfg.Endpoints = "p", ok
		p, err := s.Build(cfg)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), `pool "p": `) {
				t.Errorf("%s: Build error = %v, want one starting with pool \"p\" and containing %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Build error = %v", tt.name, err)
			continue
		}
		if got := p.Health(); !equalPtr(got, tt.wantHealth) {
			t.Errorf("%s: Health() = %+v, want %+v", tt.name, got, tt.wantHealth)
		}
		if got := p.Passive(); !equalPtr(got, tt.wantPassive) {
			t.Errorf("%s: Passive() = %+v, want %+v", tt.name, got, tt.wantPassive)
		}
		if got := p.Outlier(); !equalPtr(got, tt.wantOutlier) {
			t.Errorf("%s: Outlier() = %+v, want %+v", tt.name, got, tt.wantOutlier)
		}
		if want := tt.wantHealth != nil || tt.wantPassive != nil || tt.wantOutlier != nil; p.guarded != want {
			t.Errorf("%s: health-aware selection = %v, want %v", tt.name, p.guarded, want)
		}
	}
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// healthServer is a test upstream whose /health answers status (or hangs
// while slow is set), counting probes.
type healthServer struct {
	*httptest.Server
	status atomic.Int32
	slow   atomic.Bool
	probes atomic.Int64
	// onProbe, when set before the first probe, runs in the handler before
	// it answers.
	onProbe func(status int)

	mu    sync.Mutex
	paths map[string]int
	ua    string
}

func newHealthServer(t testing.TB) *healthServer {
	t.Helper()
	hs := &healthServer{paths: make(map[string]int)}
	hs.status.Store(http.StatusOK)
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.probes.Add(1)
		hs.mu.Lock()
		hs.paths[r.URL.RequestURI()]++
		hs.ua = r.UserAgent()
		hs.mu.Unlock()
		if hs.slow.Load() {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		status := int(hs.status.Load())
		if hs.onProbe != nil {
			hs.onProbe(status)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func (hs *healthServer) addr() string { return hs.Listener.Addr().String() }

func (hs *healthServer) pathCount(p string) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.paths[p]
}

// closedAddr returns an address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestActiveThresholds: an endpoint turns unhealthy only on its
// UnhealthyThreshold-th failed probe and healthy again only on its
// HealthyThreshold-th good one.
func TestActiveThresholds(t *testing.T) {
	t.Parallel()
	hs := newHealthServer(t)
	s := newTestState(t, nil)
	var e *Endpoint
	var bad, good atomic.Int64
	var violation atomic.Value
	hs.onProbe = func(status int) {
		// Runs before the probe's verdict is counted: the state seen here
		// is the one left by the previous probes.
		if status == http.StatusInternalServerError {
			good.Store(0)
			if n := bad.Add(1); n <= 3 && !e.HealthState().ActiveHealthy {
				violation.Store("unhealthy after fewer than 3 failed probes")
			}
		} else if e.down.Load() {
			if n := good.Add(1); n <= 2 && e.HealthState().ActiveHealthy {
				violation.Store("healthy after fewer than 2 good probes")
			}
		}
	}
	hs.status.Store(http.StatusInternalServerError)
	p := mustBuild(t, s, PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: hs.addr()}},
		Health: &HealthCheck{Interval: 20 * time.Millisecond, Path: "/healthz?deep=1", HealthyThreshold: 2, UnhealthyThreshold: 3}})
	e = p.Endpoints()[0]
	if !e.Healthy() {
		t.Fatal("new endpoint of a pool with active checks starts unhealthy, want healthy (it takes traffic at once)")
	}
	s.Commit([]*Pool{p})
	eventually(t, "the endpoint to turn unhealthy", func() bool { return !e.Healthy() })
	if got := bad.Load(); got < 3 {
		t.Errorf("unhealthy after %d failed probes, want at least 3", got)
	}
	if hs := e.HealthState(); hs.ActiveHealthy || hs.Healthy || hs.Ejected {
		t.Errorf("HealthState = %+v, want active-unhealthy, not ejected", hs)
	}
	hs.status.Store(http.StatusNoContent)
	eventually(t, "the endpoint to turn healthy again", e.Healthy)
	if v := violation.Load(); v != nil {
		t.Error(v)
	}
	if n := hs.pathCount("/healthz?deep=1"); n < 5 {
		t.Errorf("probes of /healthz?deep=1 = %d, want at least 5", n)
	}
	hs.mu.Lock()
	ua := hs.ua
	hs.mu.Unlock()
	if ua != probeUserAgent {
		t.Errorf("probe User-Agent = %q, want %q", ua, probeUserAgent)
	}
}

// TestActiveFailures: what a failed probe is.
func TestActiveFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(hs *healthServer)
		addr  func(t *testing.T, hs *healthServer) string
		check HealthCheck
	}{
		{name: "500", setup: func(hs *healthServer) { hs.status.Store(500) }},
		{name: "status outside a custom range", setup: func(hs *healthServer) { hs.status.Store(200) }, check: HealthCheck{StatusLo: 204}},
		{name: "timeout", setup: func(hs *healthServer) { hs.slow.Store(true) }},
		{name: "connection refused", addr: func(t *testing.T, _ *healthServer) string { return closedAddr(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := newHealthServer(t)
			if tt.setup != nil {
				tt.setup(hs)
			}
			addr := hs.addr()
			if tt.addr != nil {
				addr = tt.addr(t, hs)
			}
			s := newTestState(t, nil)
			hc := tt.check
			hc.Interval, hc.Timeout, hc.UnhealthyThreshold = 30*time.Millisecond, 20*time.Millisecond, 2
			p := commitPool(t, s, PoolConfig{Endpoints: []EndpointConfig{{Address: addr}}, Health: &hc})
			eventually(t, "the endpoint to turn unhealthy", func() bool { return !p.Endpoints()[0].Healthy() })
		})
	}
}

// settledProbes waits a few intervals for probes in flight to land, then
// returns the probe count.
func settledProbes(hs *healthServer, interval time.Duration) int64 {
	time.Sleep(3 * interval)
	return hs.probes.Load()
}

// TestCheckerLifecycle: who starts and stops active checkers.
func TestCheckerLifecycle(t *testing.T) {
	t.Parallel()
	const interval = 20 * time.Millisecond
	a, b, c := newHealthServer(t), newHealthServer(t), newHealthServer(t)
	s := newTestState(t, nil)
	hc := &HealthCheck{Interval: interval, UnhealthyThreshold: 1, HealthyThreshold: 1000}
	cfg := PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: a.addr()}, {Address: b.addr()}}, Health: hc}

	// Build starts nothing.
	p1 := mustBuild(t, s, cfg)
	time.Sleep(5 * interval)
	if n := a.probes.Load() + b.probes.Load(); n != 0 {
		t.Fatalf("%d probes before Commit, want none (Build starts nothing)", n)
	}

	// Commit does.
	a.status.Store(http.StatusServiceUnavailable)
	s.Commit([]*Pool{p1})
	eventually(t, "probes of both endpoints", func() bool { return a.probes.Load() >= 2 && b.probes.Load() >= 2 })
	ea, eb := p1.Endpoints()[0], p1.Endpoints()[1]
	eventually(t, "a to turn unhealthy", func() bool { return !ea.Healthy() })
	checkerA, checkerB := p1.entry.checkers[ea], p1.entry.checkers[eb]

	// A rejected build (another pool probing c) starts nothing either.
	other := mustBuild(t, s, PoolConfig{ID: "q", Endpoints: []EndpointConfig{{Address: c.addr()}}, Health: hc})
	_ = other
	s.Commit([]*Pool{p1})
	if n := settledProbes(c, interval); n != 0 {
		t.Errorf("%d probes of a rejected build's endpoint, want none", n)
	}

	// An unrelated apply (same pool, same checks, reweighted, plus another
	// pool) keeps the checkers and their state: a stays unhealthy although
	// a good probe would need 1000 in a row to heal it.
	a.status.Store(http.StatusOK)
	cfg.Endpoints[0].Weight = 5
	p2 := mustBuild(t, s, cfg)
	q := mustBuild(t, s, PoolConfig{ID: "q", Endpoints: []EndpointConfig{{Address: c.addr()}}})
	s.Commit([]*Pool{p2, q})
	if p2.entry.checkers[ea] != checkerA || p2.entry.checkers[eb] != checkerB {
		t.Error("an unrelated apply restarted the checkers, want them kept")
	}
	if ea.Healthy() {
		t.Error("an unrelated apply reset a's verdict, want it still unhealthy")
	}

	// Changed check settings restart the pool's checkers; the verdict
	// stays with the endpoint until the new checker's thresholds flip it.
	cfg.Health = &HealthCheck{Interval: interval, Path: "/v2", HealthyThreshold: 2}
	p3 := mustBuild(t, s, cfg)
	s.Commit([]*Pool{p3, q})
	if p3.entry.checkers[ea] == checkerA || p3.entry.checkers[eb] == checkerB {
		t.Error("changed check settings kept the old checkers, want them restarted")
	}
	eventually(t, "probes of the new path", func() bool { return a.pathCount("/v2") >= 1 })
	eventually(t, "a to turn healthy under the new settings", ea.Healthy)

	// A removed endpoint's checker stops; an added one gets a checker.
	cfg.Endpoints = []EndpointConfig{{Address: a.addr()}, {Address: c.addr()}}
	p4 := mustBuild(t, s, cfg)
	s.Commit([]*Pool{p4})
	if len(p4.entry.checkers) != 2 || p4.entry.checkers[eb] != nil {
		t.Errorf("after replacing b by c: %d checkers, b's still there = %v; want 2, false", len(p4.entry.checkers), p4.entry.checkers[eb] != nil)
	}
	before := settledProbes(b, interval)
	if n := settledProbes(b, interval); n != before {
		t.Errorf("removed endpoint b probed %d more times after Commit, want 0", n-before)
	}
	eventually(t, "probes of the added endpoint c", func() bool { return c.pathCount("/v2") >= 2 })

	// Turning the checks off stops them and leaves every endpoint healthy.
	a.status.Store(http.StatusInternalServerError)
	eventually(t, "a to turn unhealthy", func() bool { return !ea.Healthy() })
	cfg.Health = nil
	p5 := mustBuild(t, s, cfg)
	s.Commit([]*Pool{p5})
	if len(p5.entry.checkers) != 0 || !ea.Healthy() {
		t.Errorf("checks off: %d checkers, a healthy = %v; want 0, true", len(p5.entry.checkers), ea.Healthy())
	}
	before = settledProbes(a, interval)
	if n := settledProbes(a, interval); n != before {
		t.Errorf("a probed %d more times after its checks were turned off, want 0", n-before)
	}

	// Removing the pool stops its checkers.
	cfg.Health = hc
	p6 := mustBuild(t, s, cfg)
	s.Commit([]*Pool{p6})
	eventually(t, "probes to resume", func() bool { return a.probes.Load() > before })
	s.Commit(nil)
	before = settledProbes(a, interval) + settledProbes(c, interval)
	if n := settledProbes(a, interval) + settledProbes(c, interval); n != before {
		t.Errorf("%d probes after the pool was removed, want 0", n-before)
	}
}

// TestProbeCancelledOnStop: a probe in flight when its checker stops is
// cancelled, so Commit does not wait out the probe's timeout.
func TestProbeCancelledOnStop(t *testing.T) {
	t.Parallel()
	hs := newHealthServer(t)
	hs.slow.Store(true)
	s := newTestState(t, nil)
	commitPool(t, s, PoolConfig{Endpoints: []EndpointConfig{{Address: hs.addr()}},
		Health: &HealthCheck{Interval: 10 * time.Second, Timeout: 10 * time.Second}})
	eventually(t, "the first probe to arrive", func() bool { return hs.probes.Load() == 1 })
	start := time.Now()
	s.Commit(nil)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Commit took %v to stop a checker with a probe in flight, want the probe cancelled", d)
	}
}

// TestHealthGoroutines: Commit and Close leave no health goroutine behind.
// Not parallel: it counts the process's goroutines.
func TestHealthGoroutines(t *testing.T) {
	a, b := newHealthServer(t), newHealthServer(t)
	base := runtime.NumGoroutine()
	s := NewState(nil)
	cfg := PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: a.addr()}, {Address: b.addr()}},
		Health:  &HealthCheck{Interval: 10 * time.Millisecond},
		Outlier: &OutlierDetection{ErrorRatePercent: 50, Interval: 10 * time.Millisecond}}
	p, err := s.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("Build started %d goroutines, want none", n-base)
	}
	s.Commit([]*Pool{p})
	if n := runtime.NumGoroutine(); n < base+3 {
		t.Errorf("Commit started %d goroutines, want at least 3 (two checkers and a monitor)", n-base)
	}
	eventually(t, "probes", func() bool { return a.probes.Load() > 0 && b.probes.Load() > 0 })
	s.Commit(nil)
	eventually(t, "the pool's goroutines to end after its removal", func() bool { return runtime.NumGoroutine() <= base })

	p, err = s.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Commit([]*Pool{p})
	eventually(t, "probes", func() bool { return a.probes.Load() > 2 && b.probes.Load() > 2 })
	s.Close()
	eventually(t, "every goroutine to end after Close", func() bool { return runtime.NumGoroutine() <= base })
	s.Commit([]*Pool{p}) // after Close: starts nothing
	time.Sleep(20 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("Commit after Close started %d goroutines, want none", n-base)
	}
}

// TestActiveMetrics: checker verdicts move proxy_pool_healthy_endpoints.
func TestActiveMetrics(t *testing.T) {
	t.Parallel()
	hs := newHealthServer(t)
	m := obs.NewMetrics()
	s := newTestState(t, m)
	p := commitPool(t, s, PoolConfig{ID: "ah", Endpoints: []EndpointConfig{{Address: hs.addr()}, {Address: closedAddr(t)}},
		Health: &HealthCheck{Interval: 20 * time.Millisecond, UnhealthyThreshold: 1, HealthyThreshold: 1}})
	eventually(t, "the gauge to count the live endpoint only", func() bool {
		return gaugeValue(t, m, "proxy_pool_healthy_endpoints", "ah") == 1 && gaugeValue(t, m, "proxy_pool_total_endpoints", "ah") == 2
	})
	hs.status.Store(http.StatusBadGateway)
	eventually(t, "the gauge to drop to 0", func() bool { return gaugeValue(t, m, "proxy_pool_healthy_endpoints", "ah") == 0 })
	if p.HealthyCount() != 0 {
		t.Errorf("HealthyCount() = %d, want 0", p.HealthyCount())
	}
	hs.status.Store(http.StatusOK)
	eventually(t, "the gauge to recover to 1", func() bool { return gaugeValue(t, m, "proxy_pool_healthy_endpoints", "ah") == 1 })
}
