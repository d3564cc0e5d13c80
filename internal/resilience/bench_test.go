package resilience

import (
	"math"
	"testing"
	"time"
)

// TestHotPathAllocs fails when a per-request call starts allocating.
func TestHotPathAllocs(t *testing.T) {
	br := NewBreaker(BreakerSettings{ErrorThresholdPercent: 100}, nil)
	bu := NewBudget(BudgetSettings{Percent: 100, Burst: 1 << 20}, nil)
	w := NewWindow(0, 0, nil)
	open := NewBreaker(BreakerSettings{MinRequests: 1}, nil)
	tk, _ := open.Allow()
	open.Done(tk, false)
	i := 0
	tests := []struct {
		desc string
		f    func()
	}{
		{"Breaker Allow+Done closed", func() { tk, _ := br.Allow(); i++; br.Done(tk, i%10 != 0) }},
		{"Breaker Allow open", func() { open.Allow() }},
		{"Budget Success", bu.Success},
		{"Budget TryRetry", func() { bu.TryRetry() }},
		{"Budget Tokens", func() { bu.Tokens() }},
		{"Window Add", func() { w.Add(1) }},
		{"Window Sum", func() { w.Sum() }},
		{"Backoff", func() { Backoff(3, 0, 0, nil) }},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(1000, tt.f); got != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tt.desc, got)
		}
	}
}

// The benchmarks use the real clock: reading it is part of the cost.

func BenchmarkBreakerAllowDone(b *testing.B) {
	for _, bc := range []struct {
		desc string
		fail int // one failure every fail outcomes; 0: none
	}{{"success", 0}, {"1pct_failures", 100}} {
		b.Run(bc.desc, func(b *testing.B) {
			br := NewBreaker(BreakerSettings{}, nil)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tk, ok := br.Allow()
				if !ok {
					b.Fatal("breaker opened")
				}
				i++
				br.Done(tk, bc.fail == 0 || i%bc.fail != 0)
			}
		})
	}
}

func BenchmarkBreakerAllowDoneParallel(b *testing.B) {
	br := NewBreaker(BreakerSettings{}, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tk, _ := br.Allow()
			br.Done(tk, true)
		}
	})
}

func BenchmarkBreakerAllowOpen(b *testing.B) {
	br := NewBreaker(BreakerSettings{MinRequests: 1, OpenDuration: time.Hour}, nil)
	tk, _ := br.Allow()
	br.Done(tk, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := br.Allow(); ok {
			b.Fatal("open breaker admitted")
		}
	}
}

func BenchmarkBudgetSuccess(b *testing.B) {
	bu := NewBudget(BudgetSettings{Percent: 20, Burst: 10}, nil)
	b.ReportAllocs()
	for b.Loop() {
		bu.Success()
	}
}

func BenchmarkBudgetSuccessParallel(b *testing.B) {
	bu := NewBudget(BudgetSettings{Percent: 20, Burst: 10}, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bu.Success()
		}
	})
}

func BenchmarkBudgetTryRetry(b *testing.B) {
	for _, bc := range []struct {
		desc  string
		burst int
	}{{"granted", math.MaxInt32}, {"exhausted", 0}} {
		b.Run(bc.desc, func(b *testing.B) {
			bu := NewBudget(BudgetSettings{Burst: bc.burst}, nil)
			b.ReportAllocs()
			for b.Loop() {
				bu.TryRetry()
			}
		})
	}
}

func BenchmarkBudgetTryRetryParallel(b *testing.B) {
	bu := NewBudget(BudgetSettings{Burst: math.MaxInt32}, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bu.TryRetry()
		}
	})
}

func BenchmarkWindowAdd(b *testing.B) {
	w := NewWindow(0, 0, nil)
	b.ReportAllocs()
	for b.Loop() {
		w.Add(1)
	}
}

func BenchmarkWindowAddParallel(b *testing.B) {
	w := NewWindow(0, 0, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Add(1)
		}
	})
}

func BenchmarkWindowSum(b *testing.B) {
	w := NewWindow(0, 0, nil)
	w.Add(1)
	b.ReportAllocs()
	for b.Loop() {
		w.Sum()
	}
}

func BenchmarkBackoff(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Backoff(3, 0, 0, nil)
	}
}
