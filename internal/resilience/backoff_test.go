package resilience

import (
	"math"
	"testing"
	"time"
)

func TestBackoffCap(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		attempt       int
		base, max     time.Duration
		wantCap       time.Duration
		wantRandRange int64 // n passed to rand
	}{
		{attempt: 1, base: 25 * ms, max: 250 * ms, wantCap: 25 * ms},
		{attempt: 2, base: 25 * ms, max: 250 * ms, wantCap: 50 * ms},
		{attempt: 3, base: 25 * ms, max: 250 * ms, wantCap: 100 * ms},
		{attempt: 4, base: 25 * ms, max: 250 * ms, wantCap: 200 * ms},
		{attempt: 5, base: 25 * ms, max: 250 * ms, wantCap: 250 * ms},
		{attempt: 1000, base: 25 * ms, max: 250 * ms, wantCap: 250 * ms},
		{attempt: 0, base: 25 * ms, max: 250 * ms, wantCap: 25 * ms},
		{attempt: -3, base: 25 * ms, max: 250 * ms, wantCap: 25 * ms},
		{attempt: 1, wantCap: 25 * ms},  // defaults
		{attempt: 4, wantCap: 200 * ms}, // defaults
		{attempt: 9, wantCap: 250 * ms}, // defaults
		{attempt: 1, base: 100 * ms, max: 50 * ms, wantCap: 50 * ms},
		{attempt: 2, base: 10 * ms, max: 15 * ms, wantCap: 15 * ms},
		{attempt: 64, base: 1, max: math.MaxInt64, wantCap: math.MaxInt64, wantRandRange: math.MaxInt64},
	}
	for _, tt := range tests {
		var gotN int64
		top := func(n int64) int64 { gotN = n; return n - 1 }
		// rand's range includes the cap, unless the cap is MaxInt64.
		wantN, wantTop := int64(tt.wantCap)+1, tt.wantCap
		if tt.wantRandRange != 0 {
			wantN, wantTop = tt.wantRandRange, time.Duration(tt.wantRandRange-1)
		}
		if got := Backoff(tt.attempt, tt.base, tt.max, top); got != wantTop {
			t.Errorf("Backoff(%d, %v, %v, max rand) = %v, want %v", tt.attempt, tt.base, tt.max, got, wantTop)
		}
		if gotN != wantN {
			t.Errorf("Backoff(%d, %v, %v) called rand(%d), want rand(%d)", tt.attempt, tt.base, tt.max, gotN, wantN)
		}
		bottom := func(int64) int64 { return 0 }
		if got := Backoff(tt.attempt, tt.base, tt.max, bottom); got != 0 {
			t.Errorf("Backoff(%d, %v, %v, min rand) = %v, want 0", tt.attempt, tt.base, tt.max, got)
		}
	}
}

// TestBackoffJitter uses the real random source: every delay stays in
// [0, cap], and each attempt's delays reach beyond the previous cap, which
// 1000 uniform draws fail to do with probability 2^-1000.
func TestBackoffJitter(t *testing.T) {
	t.Parallel()
	prevCap := time.Duration(0)
	for attempt := 1; attempt <= 4; attempt++ {
		limit := 25 * time.Millisecond << (attempt - 1)
		var hi time.Duration
		for range 1000 {
			d := Backoff(attempt, 25*time.Millisecond, 250*time.Millisecond, nil)
			if d < 0 || d > limit {
				t.Fatalf("Backoff(%d) = %v, want within [0, %v]", attempt, d, limit)
			}
			hi = max(hi, d)
		}
		if hi <= prevCap {
			t.Errorf("Backoff(%d): largest of 1000 delays %v, want above the previous cap %v", attempt, hi, prevCap)
		}
		prevCap = limit
	}
}
