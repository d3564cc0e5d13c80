package upstream

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/obs"
)

// fakeClock is a manual clock for ejection deadlines and the trickle.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newClockState returns a test State whose ejections and trickle run on
// clock.
func newClockState(t testing.TB, m *obs.Metrics, clock *fakeClock) *State {
	t.Helper()
	s := newTestState(t, m)
	s.now = clock.Now
	return s
}

// commitPool builds cfg (default endpoints: four weighted(1...)) and
// commits it alone.
func commitPool(t testing.TB, s *State, cfg PoolConfig) *Pool {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "p"
	}
	if cfg.Endpoints == nil {
		cfg.Endpoints = weighted(1, 1, 1, 1)
	}
	p := mustBuild(t, s, cfg)
	s.Commit([]*Pool{p})
	return p
}

// run applies ops to e: 'f' a failed attempt, 's' a successful one, '+'
// one second on the clock.
func run(e *Endpoint, clock *fakeClock, ops string) {
	for _, op := range ops {
		switch op {
		case 'f':
			e.Report(false, time.Millisecond)
		case 's':
			e.Report(true, time.Millisecond)
		case '+':
			clock.Advance(time.Second)
		}
	}
}

// remaining is how long e stays ejected from now (0 when it is not).
func remaining(e *Endpoint, clock *fakeClock) time.Duration {
	hs := e.HealthState()
	if !hs.Ejected {
		return 0
	}
	return hs.EjectedUntil.Sub(clock.Now())
}

func TestPassiveEjection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		ops           string
		wantRemaining time.Duration // 0: not ejected
		wantFailures  int
		wantTimes     int
	}{
		{name: "below threshold", ops: "ff", wantFailures: 2},
		{name: "threshold ejects", ops: "fff", wantRemaining: 5 * time.Second, wantTimes: 1},
		{name: "success resets the count", ops: "ffsff", wantFailures: 2},
		{name: "ejected until the duration ends", ops: "fff++++", wantRemaining: time.Second, wantTimes: 1},
		{name: "ejection expires", ops: "fff+++++", wantTimes: 1},
		{name: "failures while ejected do not count", ops: "ffffff+++++f", wantFailures: 1, wantTimes: 1},
		{name: "ejected again at a fixed duration", ops: "fff+++++fff", wantRemaining: 5 * time.Second, wantTimes: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			s := newClockState(t, nil, clock)
			p := commitPool(t, s, PoolConfig{Passive: &PassiveHealth{ConsecutiveFailures: 3, EjectionDuration: 5 * time.Second}})
			e := p.Endpoints()[0]
			run(e, clock, tt.ops)
			hs := e.HealthState()
			if got := remaining(e, clock); got != tt.wantRemaining {
				t.Errorf("after %q ejected for %v more, want %v", tt.ops, got, tt.wantRemaining)
			}
			if hs.Ejected != (tt.wantRemaining > 0) || e.Ejected() != hs.Ejected || e.Healthy() == hs.Ejected || hs.Healthy == hs.Ejected {
				t.Errorf("after %q Ejected() = %v, Healthy() = %v, HealthState = %+v; want consistent with ejection %v", tt.ops, e.Ejected(), e.Healthy(), hs, tt.wantRemaining > 0)
			}
			if hs.ConsecutiveFailures != tt.wantFailures || hs.TimesEjected != tt.wantTimes {
				t.Errorf("after %q ConsecutiveFailures = %d, TimesEjected = %d; want %d, %d", tt.ops, hs.ConsecutiveFailures, hs.TimesEjected, tt.wantFailures, tt.wantTimes)
			}
			if !hs.ActiveHealthy {
				t.Error("ActiveHealthy = false without active checks, want true")
			}
			for _, other := range p.Endpoints()[1:] {
				if !other.Healthy() {
					t.Errorf("untouched endpoint %s unhealthy", other.Address())
				}
			}
		})
	}
}

// TestReportNeedsCommit: health settings take effect at Commit, so a build
// that is rejected (or not yet swapped in) changes nothing.
func TestReportNeedsCommit(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newClockState(t, nil, clock)
	lenient := PoolConfig{ID: "p", Endpoints: weighted(1, 1), Passive: &PassiveHealth{ConsecutiveFailures: 3}}
	strict := PoolConfig{ID: "p", Endpoints: weighted(1, 1), Passive: &PassiveHealth{ConsecutiveFailures: 1}}

	fresh := mustBuild(t, s, lenient)
	run(fresh.Endpoints()[0], clock, "ffff")
	if fresh.Endpoints()[0].Ejected() {
		t.Fatal("endpoint of an uncommitted pool ejected, want the settings inert until Commit")
	}

	active := commitPool(t, s, lenient)
	e := active.Endpoints()[0]
	rejected := mustBuild(t, s, strict)
	if rejected.Endpoints()[0] != e {
		t.Fatal("rebuild did not reuse the endpoint")
	}
	run(e, clock, "f")
	s.Commit([]*Pool{active}) // the strict build is rejected
	run(e, clock, "f")
	if e.Ejected() {
		t.Error("two failures ejected the endpoint: the rejected build's threshold of 1 took effect, want 3")
	}
	run(e, clock, "f")
	if !e.Ejected() {
		t.Error("three failures did not eject the endpoint, want the committed threshold of 3")
	}
}

// TestHealthSurvivesApply: an apply that keeps an endpoint's key keeps its
// health state; one that changes it (transport settings) starts afresh.
func TestHealthSurvivesApply(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newClockState(t, nil, clock)
	cfg := PoolConfig{ID: "p", Endpoints: weighted(1, 1), Passive: &PassiveHealth{ConsecutiveFailures: 1, EjectionDuration: time.Minute}}
	p := commitPool(t, s, cfg)
	run(p.Endpoints()[0], clock, "f")

	cfg.Endpoints = weighted(3, 1)
	reweighted := commitPool(t, s, cfg)
	if hs := reweighted.Endpoints()[0].HealthState(); !hs.Ejected || hs.TimesEjected != 1 {
		t.Errorf("after a reweighting apply HealthState = %+v, want still ejected", hs)
	}
	cfg.Transport.DialTimeout = 2 * time.Second
	rekeyed := commitPool(t, s, cfg)
	if hs := rekeyed.Endpoints()[0].HealthState(); hs.Ejected || hs.TimesEjected != 0 {
		t.Errorf("after a transport change HealthState = %+v, want a fresh entry", hs)
	}
	// Turning ejection off clears what nothing would end any more.
	run(rekeyed.Endpoints()[0], clock, "f")
	cfg.Passive = nil
	off := commitPool(t, s, cfg)
	if off.Endpoints()[0].Ejected() {
		t.Error("ejection survived turning passive health off")
	}
}

func TestEjectionTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base time.Duration
		want []time.Duration // for n = 1, 2, ...
	}{
		{base: time.Second, want: []time.Duration{1e9, 2e9, 3e9, 4e9, 5e9, 6e9, 7e9, 8e9, 9e9, 10e9, 10e9}},
		{base: time.Minute, want: []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}},
		{base: 10 * time.Minute, want: []time.Duration{10 * time.Minute, 10 * time.Minute}},
	}
	for _, tt := range tests {
		for i, want := range tt.want {
			if got := ejectionTime(tt.base, int64(i+1)); got != want {
				t.Errorf("ejectionTime(%v, %d) = %v, want %v", tt.base, i+1, got, want)
			}
		}
	}
}

// TestOutlierBackoff: repeated ejections of one endpoint grow, and an
// interval spent un-ejected brings the multiplier down.
func TestOutlierBackoff(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newClockState(t, nil, clock)
	o := OutlierDetection{ConsecutiveFailures: 2, BaseEjectionTime: time.Second, MaxEjectionPercent: 100, Interval: time.Hour}
	p := commitPool(t, s, PoolConfig{Outlier: &o})
	e := p.Endpoints()[0]
	for i, want := range []time.Duration{1e9, 2e9, 3e9} {
		run(e, clock, "ff")
		if got := remaining(e, clock); got != want {
			t.Fatalf("ejection %d lasts %v, want %v", i+1, got, want)
		}
		clock.Advance(want)
	}
	// Two intervals un-ejected: the multiplier drops from 3 to 1.
	p.entry.evaluate(p.entry.policy.Load().outlier, clock.Now().UnixNano())
	p.entry.evaluate(p.entry.policy.Load().outlier, clock.Now().UnixNano())
	run(e, clock, "ff")
	if got, want := remaining(e, clock), 2*time.Second; got != want {
		t.Errorf("after two clean intervals the ejection lasts %v, want %v", got, want)
	}
	if got := e.HealthState().TimesEjected; got != 4 {
		t.Errorf("TimesEjected = %d, want 4", got)
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		endpoints  int
		maxPercent int
		want       int
	}{
		{endpoints: 4, maxPercent: 50, want: 2},
		{endpoints: 3, maxPercent: 50, want: 1}, // rounded down, never above the cap
		{endpoints: 1, maxPercent: 50, want: 0},
		{endpoints: 1, maxPercent: 100, want: 1},
		{endpoints: 10, maxPercent: 10, want: 1},
		{endpoints: 10, maxPercent: 35, want: 3},
		{endpoints: 5, maxPercent: 100, want: 5},
	}
	for _, tt := range tests {
		for _, concurrent := range []bool{false, true} {
			clock := newFakeClock()
			s := newClockState(t, nil, clock)
			ws := make([]int, tt.endpoints)
			p := commitPool(t, s, PoolConfig{Endpoints: weighted(ws...), Outlier: &OutlierDetection{ConsecutiveFailures: 1, MaxEjectionPercent: tt.maxPercent, Interval: time.Hour}})
			var wg sync.WaitGroup
			for _, e := range p.Endpoints() {
				fail := func() {
					for range 200 {
						e.Report(false, time.Millisecond)
					}
				}
				if concurrent {
					wg.Go(fail)
				} else {
					fail()
				}
			}
			wg.Wait()
			got := 0
			for _, e := range p.Endpoints() {
				if e.Ejected() {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("%d endpoints at %d%% (concurrent %v): %d ejected, want %d", tt.endpoints, tt.maxPercent, concurrent, got, tt.want)
			}
		}
	}
}

// TestOutlierCapCountsPassive: passive ejections count toward the outlier
// cap, and are themselves not capped.
func TestOutlierCapCountsPassive(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newClockState(t, nil, clock)
	p := commitPool(t, s, PoolConfig{
		Passive: &PassiveHealth{ConsecutiveFailures: 3},
		Outlier: &OutlierDetection{ConsecutiveFailures: 1, MaxEjectionPercent: 50, Interval: time.Hour},
	})
	eps := p.Endpoints()
	run(eps[0], clock, "f")
	run(eps[1], clock, "f")
	run(eps[2], clock, "ff")
	if eps[2].Ejected() {
		t.Fatal("a third outlier ejection passed the 50% cap")
	}
	run(eps[2], clock, "f")
	run(eps[3], clock, "fff")
	for i, e := range eps {
		if !e.Ejected() {
			t.Errorf("endpoint %d not ejected, want passive ejections uncapped", i)
		}
	}
}

// TestOutlierEvaluate: the error-rate and latency detectors judge one
// interval's attempts, with a minimum of five.
func TestOutlierEvaluate(t *testing.T) {
	t.Parallel()
	type traffic struct{ ok, fail, latencyMS int }
	tests := []struct {
		name    string
		o       OutlierDetection
		traffic []traffic // per endpoint
		want    string    // 'x' ejected, '.' not
	}{
		{
			name:    "error rate",
			o:       OutlierDetection{ErrorRatePercent: 50},
			traffic: []traffic{{ok: 5, fail: 5}, {ok: 6, fail: 4}, {fail: 4}, {}},
			want:    "x...",
		},
		{
			name:    "error rate capped",
			o:       OutlierDetection{ErrorRatePercent: 20, MaxEjectionPercent: 50},
			traffic: []traffic{{fail: 5}, {fail: 5}, {fail: 5}, {fail: 5}},
			want:    "xx..",
		},
		{
			name:    "latency",
			o:       OutlierDetection{LatencyThreshold: 100 * time.Millisecond},
			traffic: []traffic{{ok: 5, latencyMS: 150}, {ok: 5, latencyMS: 90}, {ok: 4, latencyMS: 1000}, {ok: 5, latencyMS: 100}},
			want:    "x...",
		},
		{
			name:    "both detectors",
			o:       OutlierDetection{ErrorRatePercent: 90, LatencyThreshold: time.Second},
			traffic: []traffic{{fail: 9, ok: 1}, {ok: 10, latencyMS: 1001}, {fail: 8, ok: 2}, {ok: 10, latencyMS: 999}},
			want:    "xx..",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			s := newClockState(t, nil, clock)
			o := tt.o
			o.Interval = time.Hour // the monitor's own tick never comes
			if o.MaxEjectionPercent == 0 {
				o.MaxEjectionPercent = 100
			}
			p := commitPool(t, s, PoolConfig{Outlier: &o})
			for i, tr := range tt.traffic {
				e := p.Endpoints()[i]
				lat := time.Duration(tr.latencyMS) * time.Millisecond
				for range tr.ok {
					e.Report(true, lat)
				}
				for range tr.fail {
					e.Report(false, lat)
				}
			}
			p.entry.evaluate(p.entry.policy.Load().outlier, clock.Now().UnixNano())
			if got := ejections(p); got != tt.want {
				t.Errorf("ejected after one interval = %q, want %q", got, tt.want)
			}
			// The next interval starts from zero: nothing more is ejected.
			p.entry.evaluate(p.entry.policy.Load().outlier, clock.Now().UnixNano())
			if got := ejections(p); got != tt.want {
				t.Errorf("ejected after an empty interval = %q, want %q", got, tt.want)
			}
			clock.Advance(DefaultBaseEjectionTime)
			if got := ejections(p); got != strings.Repeat(".", len(tt.want)) {
				t.Errorf("ejected after the base ejection time = %q, want none", got)
			}
		})
	}
}

// ejections renders the pool's endpoints as 'x' (ejected) or '.'.
func ejections(p *Pool) string {
	var b strings.Builder
	for _, e := range p.Endpoints() {
		if e.Ejected() {
			b.WriteByte('x')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// TestOutlierMonitor: the pool's goroutine evaluates every interval in real
// time, publishes the healthy count on every transition and again when the
// ejection ends.
func TestOutlierMonitor(t *testing.T) {
	t.Parallel()
	m := obs.NewMetrics()
	s := newTestState(t, m)
	p := commitPool(t, s, PoolConfig{ID: "od", Endpoints: weighted(1, 1),
		Outlier: &OutlierDetection{ErrorRatePercent: 50, Interval: 20 * time.Millisecond, BaseEjectionTime: 500 * time.Millisecond}})
	if got := gaugeValue(t, m, "proxy_pool_healthy_endpoints", "od"); got != 2 {
		t.Fatalf("proxy_pool_healthy_endpoints after Commit = %v, want 2", got)
	}
	e := p.Endpoints()[1]
	for range 10 {
		e.Report(false, time.Millisecond)
	}
	eventually(t, "the evaluator to eject the failing endpoint", e.Ejected)
	eventually(t, "the healthy gauge to drop to 1", func() bool {
		return gaugeValue(t, m, "proxy_pool_healthy_endpoints", "od") == 1
	})
	if p.HealthyCount() != 1 {
		t.Errorf("HealthyCount() = %d while one of two is ejected, want 1", p.HealthyCount())
	}
	eventually(t, "the ejection to end and the gauge to recover", func() bool {
		return !e.Ejected() && gaugeValue(t, m, "proxy_pool_healthy_endpoints", "od") == 2
	})
	if e.ejectedUntil.Load() != 0 {
		t.Error("the monitor left a past ejection deadline set, want it cleared")
	}
}

// TestPassiveMetrics: a passive ejection and its end move
// proxy_pool_healthy_endpoints; removing the pool removes the series.
func TestPassiveMetrics(t *testing.T) {
	t.Parallel()
	m := obs.NewMetrics()
	s := newTestState(t, m)
	p := commitPool(t, s, PoolConfig{ID: "ph", Endpoints: weighted(1, 1, 1),
		Passive: &PassiveHealth{ConsecutiveFailures: 1, EjectionDuration: 400 * time.Millisecond}})
	p.Endpoints()[0].Report(false, 0)
	p.Endpoints()[2].Report(false, 0)
	eventually(t, "the healthy gauge to drop to 1", func() bool {
		return gaugeValue(t, m, "proxy_pool_healthy_endpoints", "ph") == 1
	})
	eventually(t, "the healthy gauge to recover to 3", func() bool {
		return gaugeValue(t, m, "proxy_pool_healthy_endpoints", "ph") == 3
	})
	s.Commit(nil)
	if got := poolLabels(t, m, "proxy_pool_healthy_endpoints"); len(got) != 0 {
		t.Errorf("after removing the pool proxy_pool_healthy_endpoints pools = %v, want none", got)
	}
}
