package traffic

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	t.Parallel()
	for b := range histBuckets {
		lo, hi := bucketBounds(b)
		if b > 0 {
			if _, prevHi := bucketBounds(b - 1); prevHi != lo {
				t.Fatalf("bucket %d starts at %v, bucket %d ends at %v: want contiguous", b, lo, b-1, prevHi)
			}
		}
		if b >= 1<<subBits && float64(hi) > 1.25*float64(lo) {
			t.Errorf("bucket %d = [%v, %v): wider than 25%%", b, lo, hi)
		}
		if got := bucketOf(lo); got != b {
			t.Errorf("bucketOf(%v) = %d, want %d", lo, got, b)
		}
		if got := bucketOf(hi - 1); got != b {
			t.Errorf("bucketOf(%v) = %d, want %d", hi-1, got, b)
		}
	}
	if _, hi := bucketBounds(histBuckets - 1); hi < 60*time.Second {
		t.Errorf("last bucket ends at %v, want at least 60s", hi)
	}
	if got := bucketOf(time.Hour); got != histBuckets-1 {
		t.Errorf("bucketOf(1h) = %d, want the last bucket", got)
	}
	if got := bucketOf(-time.Second); got != 0 {
		t.Errorf("bucketOf(-1s) = %d, want 0", got)
	}
}

func TestRollingP95(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		desc   string
		sample func() time.Duration
	}{
		{"uniform 0-1s", func() time.Duration { return time.Duration(rng.Int64N(int64(time.Second))) }},
		{"exponential mean 20ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond)) }},
		{"constant 3ms", func() time.Duration { return 3 * time.Millisecond }},
		{"bimodal", func() time.Duration {
			if rng.IntN(10) == 0 {
				return 2 * time.Second
			}
			return 5 * time.Millisecond
		}},
	}
	for _, tt := range tests {
		r := newRolling(30 * time.Second)
		samples := make([]time.Duration, 20000)
		for i := range samples {
			samples[i] = tt.sample()
			r.record(0, false, false, samples[i])
		}
		exact := nearestRank95(samples)
		est, hi := r.p95(0)
		if d := float64(est-exact) / float64(exact); d < -0.13 || d > 0.13 {
			t.Errorf("%s: p95 = %v, exact %v: off by %.1f%%, want within 13%%", tt.desc, est, exact, 100*d)
		}
		if hi < exact {
			t.Errorf("%s: p95 bucket bound %v below the exact p95 %v", tt.desc, hi, exact)
		}
	}
	if est, hi := newRolling(time.Second).p95(0); est != 0 || hi != 0 {
		t.Errorf("empty window: p95 = %v, %v; want 0, 0", est, hi)
	}
}

func nearestRank95(s []time.Duration) time.Duration {
	c := slices.Clone(s)
	slices.Sort(c)
	return c[(95*len(c)+99)/100-1]
}

// TestRollingWindow checks that outcomes count until their slot leaves the
// window, and that a late writer is counted, not lost.
func TestRollingWindow(t *testing.T) {
	t.Parallel()
	const sec = int64(time.Second)
	r := newRolling(10 * time.Second) // 1s slots
	r.record(0, true, true, time.Millisecond)
	r.record(5*sec, false, false, time.Millisecond)
	if got := r.sum(9 * sec); got != (counts{requests: 2, failures: 1, slow: 1}) {
		t.Errorf("sum at 9s = %+v, want 2 requests, 1 failure, 1 slow", got)
	}
	if got := r.sum(10 * sec); got != (counts{requests: 1}) {
		t.Errorf("sum at 10s = %+v, want the first outcome gone", got)
	}
	r.record(20*sec, false, false, time.Millisecond)
	r.record(19*sec, false, false, time.Millisecond) // late: the slot is older than the word's
	if got := r.sum(20 * sec); got.requests != 2 {
		t.Errorf("sum at 20s = %+v, want 2 requests", got)
	}
	if got := r.sum(40 * sec); got != (counts{}) {
		t.Errorf("sum at 40s = %+v, want empty", got)
	}
}

// TestRollingConcurrent checks that concurrent records in changing slots
// are all counted.
func TestRollingConcurrent(t *testing.T) {
	t.Parallel()
	r := newRolling(10 * time.Second)
	const workers, each = 4, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Slots 0-4 over and over, each worker in its own order.
				now := int64((i+w)%5) * int64(time.Second)
				r.record(now, i%2 == 0, false, time.Duration(i)*time.Microsecond)
			}
		})
	}
	wg.Wait()
	got := r.sum(5 * int64(time.Second))
	if got.requests != workers*each || got.failures != workers*each/2 {
		t.Errorf("sum = %+v, want %d requests, %d failures", got, workers*each, workers*each/2)
	}
}
