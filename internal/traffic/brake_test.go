package traffic

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// brakeSplit returns a 10% canary split with brake b on a fake clock, and
// the reasons its OnBrake received.
func brakeSplit(t *testing.T, b BrakeSettings) (*Split, *fakeClock, *[]string) {
	t.Helper()
	clk := &fakeClock{}
	s := canarySettings(10)
	s.Brake = &b
	sp := NewSplit(s, clk.now)
	var mu sync.Mutex
	reasons := new([]string)
	sp.OnBrake(func(r string) {
		mu.Lock()
		*reasons = append(*reasons, r)
		mu.Unlock()
	})
	return sp, clk, reasons
}

// feed records n outcomes of variant, failing the first fails of them,
// each with latency lat.
func feed(sp *Split, variant string, n, fails int, lat time.Duration) {
	for i := range n {
		sp.Record(variant, i < fails, lat)
	}
}

func TestBrakeOnErrorRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc                 string
		stable, stableFails  int
		canary, canaryFails  int
		multiplier           float64
		wantBraked           bool
		wantReasonSubstrings []string
	}{
		{"canary twice as bad plus", 1000, 10, 50, 2, 2, true,
			[]string{"canary error rate 4.0% > 2.0 x stable 1.0%", "2 of 50 canary requests failed in 30s"}},
		{"exactly twice is not more", 1000, 10, 100, 2, 2, false, nil},
		{"below MinRequests", 1000, 10, 49, 49, 2, false, nil},
		{"at most 1%", 1000, 0, 100, 1, 2, false, nil},
		{"stable silent counts as 0%", 0, 0, 50, 1, 2, true, []string{"stable 0.0%"}},
		{"higher multiplier", 1000, 10, 100, 2, 3, false, nil},
		{"multiplier below 1 is 1", 1000, 20, 100, 3, 0.5, true, []string{"1.0 x stable 2.0%"}},
		{"no failures", 1000, 100, 500, 0, 2, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			sp, _, reasons := brakeSplit(t, BrakeSettings{MinRequests: 50, ErrorRateMultiplier: tt.multiplier})
			feed(sp, VariantStable, tt.stable, tt.stableFails, time.Millisecond)
			// Failures last: the brake must not act on the MinRequests-th
			// outcome's failures before it has that many.
			for i := range tt.canary {
				sp.Record(VariantCanary, i >= tt.canary-tt.canaryFails, time.Millisecond)
			}
			st := sp.Stats()
			if st.Braked != tt.wantBraked {
				t.Fatalf("Braked = %v, want %v (stats %+v)", st.Braked, tt.wantBraked, st)
			}
			if !tt.wantBraked {
				if len(*reasons) != 0 || st.EffectiveWeight != 10 {
					t.Errorf("OnBrake calls %q, EffectiveWeight %d; want none, 10", *reasons, st.EffectiveWeight)
				}
				return
			}
			if len(*reasons) != 1 || (*reasons)[0] != st.BrakeReason {
				t.Errorf("OnBrake calls %q, want exactly one with %q", *reasons, st.BrakeReason)
			}
			for _, want := range tt.wantReasonSubstrings {
				if !strings.Contains(st.BrakeReason, want) {
					t.Errorf("BrakeReason = %q, want it to contain %q", st.BrakeReason, want)
				}
			}
			if st.EffectiveWeight != 0 || st.ConfiguredWeight != 10 || st.BrakedAt.IsZero() {
				t.Errorf("Stats = %+v, want effective 0, configured 10, BrakedAt set", st)
			}
			for range 1000 {
				if d := sp.Decide(nil, ""); d.Variant != VariantStable {
					t.Fatalf("braked: Decide = %+v, want stable", d)
				}
			}
		})
	}
}

// TestBrakeWindow checks that failures older than the window no longer
// count.
func TestBrakeWindow(t *testing.T) {
	t.Parallel()
	sp, clk, _ := brakeSplit(t, BrakeSettings{Window: 10 * time.Second, MinRequests: 50})
	feed(sp, VariantCanary, 40, 40, time.Millisecond)
	clk.advance(10 * time.Second) // the failures leave the window
	feed(sp, VariantCanary, 60, 0, time.Millisecond)
	if st := sp.Stats(); st.Braked || st.Variants[VariantCanary].Requests != 60 {
		t.Fatalf("Stats = %+v, want not braked, 60 canary requests in the window", st)
	}
	clk.advance(8 * time.Second) // the successes are still in the window
	feed(sp, VariantCanary, 1, 1, time.Millisecond)
	if st := sp.Stats(); !st.Braked {
		t.Fatalf("Stats = %+v, want braked on 1 failure in 61", st)
	}
}

func TestBrakeOnP95(t *testing.T) {
	t.Parallel()
	const threshold = 500 * time.Millisecond
	tests := []struct {
		desc       string
		slow       int // of 100 canary outcomes, the last ones
		wantBraked bool
	}{
		{"5% slow: p95 is fast", 5, false},
		{"6% slow: p95 is slow", 6, true},
		{"all slow", 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			sp, _, reasons := brakeSplit(t, BrakeSettings{MinRequests: 100, LatencyP95Threshold: threshold})
			feed(sp, VariantStable, 1000, 0, 800*time.Millisecond) // stable's latency does not matter
			for i := range 100 {
				lat := 20 * time.Millisecond
				if i >= 100-tt.slow {
					lat = 800 * time.Millisecond
				}
				sp.Record(VariantCanary, false, lat)
			}
			st := sp.Stats()
			if st.Braked != tt.wantBraked {
				t.Fatalf("Braked = %v, want %v (stats %+v)", st.Braked, tt.wantBraked, st)
			}
			if !tt.wantBraked {
				return
			}
			if want := "> threshold 500ms (" + strconv.Itoa(tt.slow) + " of 100 canary requests slower in 30s)"; !strings.Contains(st.BrakeReason, want) {
				t.Errorf("BrakeReason = %q, want it to contain %q", st.BrakeReason, want)
			}
			if !strings.HasPrefix(st.BrakeReason, "canary p95 latency ") || len(*reasons) != 1 {
				t.Errorf("BrakeReason = %q, OnBrake calls %d; want a p95 reason, one call", st.BrakeReason, len(*reasons))
			}
			if p95 := st.Variants[VariantCanary].P95Ms; p95 < 500 || p95 > 900 {
				t.Errorf("canary P95Ms = %v, want about 800", p95)
			}
		})
	}
}

// TestBrakeHolds checks that a brake holds until the plan changes or
// ResetBrake, however much time passes and however often the same plan is
// applied again.
func TestBrakeHolds(t *testing.T) {
	t.Parallel()
	sp, clk, reasons := brakeSplit(t, BrakeSettings{MinRequests: 10})
	brake := func() {
		t.Helper()
		feed(sp, VariantCanary, 10, 10, time.Millisecond)
		if !sp.Stats().Braked {
			t.Fatal("not braked after 10 canary failures")
		}
	}
	brake()
	same := canarySettings(10)
	same.Brake = &BrakeSettings{MinRequests: 10, Window: 30 * time.Second, ErrorRateMultiplier: 2} // equal after defaults
	sp.Update(same)
	clk.advance(time.Hour)
	if st := sp.Stats(); !st.Braked || st.EffectiveWeight != 0 {
		t.Fatalf("after re-applying the same plan and an hour: Stats = %+v, want still braked", st)
	}

	if !sp.ResetBrake() {
		t.Fatal("ResetBrake() = false, want true")
	}
	if sp.ResetBrake() {
		t.Error("second ResetBrake() = true, want false")
	}
	if st := sp.Stats(); st.Braked || st.EffectiveWeight != 10 || st.Variants[VariantCanary].Requests != 0 {
		t.Fatalf("after ResetBrake: Stats = %+v, want unbraked, weight 10, a fresh canary window", st)
	}

	brake()
	changed := canarySettings(20)
	changed.Brake = &BrakeSettings{MinRequests: 10}
	sp.Update(changed)
	if st := sp.Stats(); st.Braked || st.EffectiveWeight != 20 {
		t.Fatalf("after a changed plan: Stats = %+v, want unbraked, weight 20", st)
	}
	// A success must not re-brake on the numbers that braked the old plan.
	sp.Record(VariantCanary, false, time.Millisecond)
	if st := sp.Stats(); st.Braked {
		t.Fatalf("after a changed plan and a success: braked again: %q", st.BrakeReason)
	}
	if len(*reasons) != 2 {
		t.Errorf("OnBrake calls = %q, want 2", *reasons)
	}
}

// TestUpdateKeepsMeasurements checks which windows survive a plan change.
func TestUpdateKeepsMeasurements(t *testing.T) {
	t.Parallel()
	c := &CohortSettings{Header: "X-Cohort", Mappings: map[string]string{"beta": "v2", "qa": "v3"}}
	s := Settings{StablePool: "v1", CanaryPool: "v2", CanaryWeight: 10, Cohort: c}
	sp := NewSplit(s, nil)
	for _, v := range []string{VariantStable, VariantCanary, "cohort:beta", "cohort:qa", "cohort:nope", "other"} {
		feed(sp, v, 5, 1, time.Millisecond)
	}
	s.CanaryWeight = 30
	s.Cohort = &CohortSettings{Header: "X-Cohort", Mappings: map[string]string{"beta": "v2", "qa": "v4"}}
	sp.Update(s)
	got := map[string]int64{}
	for v, vs := range sp.Stats().Variants {
		got[v] = vs.Requests
	}
	want := map[string]int64{VariantStable: 5, VariantCanary: 5, "cohort:beta": 5, "cohort:qa": 0}
	if len(got) != len(want) {
		t.Fatalf("Variants = %v, want %v", got, want)
	}
	for v, n := range want {
		if got[v] != n {
			t.Errorf("Variants[%q].Requests = %d, want %d (all: %v)", v, got[v], n, got)
		}
	}
	if er := sp.Stats().Variants[VariantStable].ErrorRate; er != 0.2 {
		t.Errorf("stable ErrorRate = %v, want 0.2", er)
	}

	s.CanaryPool = "v5" // measures another pool now
	sp.Update(s)
	if n := sp.Stats().Variants[VariantCanary].Requests; n != 0 {
		t.Errorf("after a new canary pool: canary Requests = %d, want 0", n)
	}
}

// TestConcurrent exercises every method at once, for the race detector,
// and checks that a brake is reported once.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	s := canarySettings(50)
	s.Sticky = Key{Kind: KeyHeader, Name: "X-User"}
	s.Brake = &BrakeSettings{MinRequests: 20, LatencyP95Threshold: 100 * time.Millisecond}
	s.Cohort = &CohortSettings{Cookie: "cohort", Mappings: map[string]string{"beta": "v3"}}
	sp := NewSplit(s, nil)
	var brakes atomic.Int64
	sp.OnBrake(func(string) { brakes.Add(1) })
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := request(t, "X-User", "u"+strconv.Itoa(w), "Cookie", "cohort=beta")
			for i := range 20000 {
				d := sp.Decide(r, "")
				sp.Decide(nil, "")
				sp.Record(d.Variant, i%50 == 0, time.Millisecond)
				sp.Record(VariantCanary, i%3 == 0, time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			_ = sp.Stats()
			if i%20 == 0 {
				sp.ResetBrake()
			}
			if i%50 == 0 {
				s2 := s
				s2.CanaryWeight = 10 + i%40
				sp.Update(s2)
			}
			runtime.Gosched()
		}
	})
	wg.Wait()
	if brakes.Load() == 0 {
		t.Error("a canary failing a third of its requests was never braked")
	}
}
