package traffic

import (
	"net/http"
	"testing"
	"time"
)

// hotPaths returns the per-request calls of a split, by name.
func hotPaths(tb testing.TB) map[string]func() {
	tb.Helper()
	plain := NewSplit(canarySettings(10), nil)
	header := canarySettings(10)
	header.Sticky = Key{Kind: KeyHeader, Name: "X-User"}
	cookie := canarySettings(10)
	cookie.Sticky = Key{Kind: KeyCookie, Name: "session"}
	ip := canarySettings(10)
	ip.Sticky = Key{Kind: KeyClientIP}
	cohort := canarySettings(10)
	cohort.Cohort = &CohortSettings{Cookie: "cohort", Mappings: map[string]string{"beta": "v2"}}
	braked := canarySettings(10)
	braked.Brake = &BrakeSettings{MinRequests: 1, LatencyP95Threshold: time.Second}
	spHeader, spCookie, spIP := NewSplit(header, nil), NewSplit(cookie, nil), NewSplit(ip, nil)
	spCohort, spBrake := NewSplit(cohort, nil), NewSplit(braked, nil)
	bare := request(tb)
	withUser := request(tb, "X-User", "user-1234")
	withCookie := request(tb, "Cookie", "theme=dark; session=0123456789abcdef; lang=en")
	withCohort := request(tb, "Cookie", "theme=dark; cohort=beta")
	i := 0
	return map[string]func(){
		"Decide counter":         func() { plain.Decide(bare, "10.1.2.3") },
		"Decide sticky header":   func() { spHeader.Decide(withUser, "") },
		"Decide sticky cookie":   func() { spCookie.Decide(withCookie, "") },
		"Decide sticky clientIP": func() { spIP.Decide(bare, "10.1.2.3") },
		"Decide cohort cookie":   func() { spCohort.Decide(withCohort, "") },
		"Record stable":          func() { plain.Record(VariantStable, false, 3*time.Millisecond) },
		"Record cohort":          func() { spCohort.Record("cohort:beta", false, 3*time.Millisecond) },
		"Record canary with brake": func() {
			i++
			spBrake.Record(VariantCanary, i%100 == 0, 3*time.Millisecond)
		},
	}
}

// TestHotPathAllocs fails when a per-request call starts allocating.
func TestHotPathAllocs(t *testing.T) {
	for name, f := range hotPaths(t) {
		if got := testing.AllocsPerRun(1000, f); got != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, got)
		}
	}
}

// The benchmarks use the real clock: reading it is part of Record's cost.

func BenchmarkHotPath(b *testing.B) {
	for name, f := range hotPaths(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f()
			}
		})
	}
}

// BenchmarkDecideParallel measures the shared counter and plan under
// contention.
func BenchmarkDecideParallel(b *testing.B) {
	sp := NewSplit(canarySettings(10), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := &http.Request{Header: http.Header{}}
		for pb.Next() {
			d := sp.Decide(r, "")
			sp.Record(d.Variant, false, time.Millisecond)
		}
	})
}

func BenchmarkStats(b *testing.B) {
	s := canarySettings(10)
	s.Brake = &BrakeSettings{}
	sp := NewSplit(s, nil)
	feed(sp, VariantStable, 1000, 10, 5*time.Millisecond)
	feed(sp, VariantCanary, 100, 1, 7*time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		sp.Stats()
	}
}
