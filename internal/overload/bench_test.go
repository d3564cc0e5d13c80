package overload

import (
	"context"
	"testing"
	"time"
)

// TestHotPathAllocs fails when admission below the limit starts
// allocating.
func TestHotPathAllocs(t *testing.T) {
	ctx := context.Background()
	static := New(Settings{MaxConcurrent: 10, QueueSize: 10}, nil)
	adaptive := New(Settings{MaxConcurrent: 10, QueueSize: 10, Adaptive: true}, nil)
	full := New(Settings{MaxConcurrent: 1}, nil)
	mustAcquire(t, full)
	tests := []struct {
		desc string
		f    func()
	}{
		{"Acquire+Release", func() { tk, _ := static.Acquire(ctx); tk.Release(time.Millisecond, false) }},
		{"Acquire+Release adaptive", func() { tk, _ := adaptive.Acquire(ctx); tk.Release(time.Millisecond, false) }},
		{"Acquire shed", func() { full.Acquire(ctx) }},
		{"InFlight, Queued, Limit", func() { static.InFlight(); static.Queued(); static.Limit() }},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(1000, tt.f); got != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tt.desc, got)
		}
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	for _, bc := range []struct {
		desc string
		s    Settings
	}{
		{"static", Settings{MaxConcurrent: 1 << 20}},
		{"adaptive", Settings{MaxConcurrent: 1 << 20, Adaptive: true}},
	} {
		b.Run(bc.desc, func(b *testing.B) {
			l := New(bc.s, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				tk, err := l.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				tk.Release(time.Millisecond, false)
			}
		})
	}
}

// BenchmarkAcquireReleaseParallel measures contention on the state word:
// "under_limit" never queues; "queueing" has more goroutines than slots,
// so most requests wait in the queue and are handed a slot.
func BenchmarkAcquireReleaseParallel(b *testing.B) {
	for _, bc := range []struct {
		desc string
		s    Settings
	}{
		{"under_limit", Settings{MaxConcurrent: 1 << 20}},
		{"under_limit_adaptive", Settings{MaxConcurrent: 1 << 20, Adaptive: true}},
		{"queueing", Settings{MaxConcurrent: 1, QueueSize: 1 << 10, QueueTimeout: time.Minute}},
	} {
		b.Run(bc.desc, func(b *testing.B) {
			l := New(bc.s, nil)
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					tk, err := l.Acquire(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					tk.Release(time.Millisecond, false)
				}
			})
		})
	}
}
