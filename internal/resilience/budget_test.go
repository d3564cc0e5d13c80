package resilience

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tryN calls TryRetry n times and returns how many were granted.
func tryN(b *Budget, n int) int {
	granted := 0
	for range n {
		if b.TryRetry() {
			granted++
		}
	}
	return granted
}

func successes(b *Budget, n int) {
	for range n {
		b.Success()
	}
}

func TestBudgetAllowance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		s         BudgetSettings
		successes int
		want      int
	}{
		{desc: "burst when there are no successes", s: BudgetSettings{Percent: 20, Burst: 3}, want: 3},
		{desc: "percent of successes", s: BudgetSettings{Percent: 20, Burst: 5}, successes: 100, want: 20},
		{desc: "never below burst", s: BudgetSettings{Percent: 20, Burst: 5}, successes: 10, want: 5},
		{desc: "fractions round down", s: BudgetSettings{Percent: 10}, successes: 19, want: 1},
		{desc: "percent 100", s: BudgetSettings{Percent: 100}, successes: 7, want: 7},
		{desc: "percent above 100 is 100", s: BudgetSettings{Percent: 150}, successes: 7, want: 7},
		{desc: "negative burst is 0", s: BudgetSettings{Percent: 50, Burst: -4}, successes: 4, want: 2},
		{desc: "percent 0 is burst only", s: BudgetSettings{Burst: 2}, successes: 1000, want: 2},
		{desc: "zero settings allow nothing", successes: 1000, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(0)
			b := NewBudget(tt.s, clk.now)
			successes(b, tt.successes)
			if got := b.Tokens(); got != float64(tt.want) {
				t.Errorf("Tokens() = %v, want %d", got, tt.want)
			}
			if got := tryN(b, tt.want+10); got != tt.want {
				t.Errorf("granted %d retries, want %d", got, tt.want)
			}
			if got := b.Tokens(); got != 0 {
				t.Errorf("Tokens() after spending = %v, want 0", got)
			}
		})
	}
}

func TestBudgetWindow(t *testing.T) {
	t.Parallel()
	t.Run("spent burst refills one window later", func(t *testing.T) {
		t.Parallel()
		clk := newFakeClock(0)
		b := NewBudget(BudgetSettings{Burst: 3}, clk.now)
		if got := tryN(b, 5); got != 3 {
			t.Fatalf("granted %d, want 3", got)
		}
		clk.advance(10*time.Second - 1)
		if b.TryRetry() {
			t.Fatal("TryRetry() 1ns before the window ends = true, want false")
		}
		clk.advance(1)
		if got := tryN(b, 5); got != 3 {
			t.Fatalf("granted %d a window later, want 3", got)
		}
	})
	t.Run("successes and retries age separately", func(t *testing.T) {
		t.Parallel()
		clk := newFakeClock(0)
		b := NewBudget(BudgetSettings{Percent: 20, Burst: 5}, clk.now)
		successes(b, 100) // at 0s: 20 retries
		clk.advance(5 * time.Second)
		if got := tryN(b, 30); got != 20 {
			t.Fatalf("granted %d, want 20", got)
		}
		clk.advance(5 * time.Second) // successes gone, the 20 retries not
		if got := b.Tokens(); got != 0 {
			t.Fatalf("Tokens() at 10s = %v, want 0", got)
		}
		clk.advance(5 * time.Second) // retries gone too
		if got := b.Tokens(); got != 5 {
			t.Fatalf("Tokens() at 15s = %v, want 5 (burst)", got)
		}
	})
	t.Run("custom window", func(t *testing.T) {
		t.Parallel()
		clk := newFakeClock(0)
		b := NewBudget(BudgetSettings{Burst: 1, Window: time.Second}, clk.now)
		tryN(b, 1)
		clk.advance(time.Second)
		if !b.TryRetry() {
			t.Fatal("TryRetry() one custom window later = false, want true")
		}
	})
}

func TestBudgetTokens(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(0)
	b := NewBudget(BudgetSettings{Percent: 50, Burst: 5}, clk.now)
	successes(b, 4) // earns 2, burst 5 wins
	if got := b.Tokens(); got != 5 {
		t.Fatalf("Tokens() = %v, want 5", got)
	}
	tryN(b, 2)
	if got := b.Tokens(); got != 3 {
		t.Fatalf("Tokens() after 2 retries = %v, want 3", got)
	}
	successes(b, 20) // 24 successes earn 12
	if got := b.Tokens(); got != 10 {
		t.Fatalf("Tokens() after 24 successes = %v, want 10", got)
	}
}

func TestBudgetUpdate(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(0)
	b := NewBudget(BudgetSettings{Burst: 2}, clk.now)
	tryN(b, 2)
	b.Update(BudgetSettings{Burst: 5})
	if got := b.Tokens(); got != 3 {
		t.Fatalf("Tokens() after raising Burst = %v, want 3 (spent retries kept)", got)
	}
	b.Update(BudgetSettings{Burst: 5, Window: 20 * time.Second})
	clk.advance(15 * time.Second)
	if got := b.Tokens(); got != 3 {
		t.Fatalf("Tokens() inside the new window = %v, want 3 (counts carried over)", got)
	}
	clk.advance(5 * time.Second)
	if got := b.Tokens(); got != 5 {
		t.Fatalf("Tokens() after the new window = %v, want 5", got)
	}
	if got, want := b.Settings(), (BudgetSettings{Burst: 5, Window: 20 * time.Second}); got != want {
		t.Fatalf("Settings() = %+v, want %+v", got, want)
	}
}

// TestBudgetConcurrentTryRetry checks that concurrent callers never take
// more retries than the allowance, also while the clock crosses slot
// boundaries inside the window.
func TestBudgetConcurrentTryRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		s         BudgetSettings
		successes int
		tick      time.Duration
		want      int64
	}{
		{desc: "burst", s: BudgetSettings{Burst: 100}, want: 100},
		{desc: "percent", s: BudgetSettings{Percent: 10, Burst: 1}, successes: 1000, want: 100},
		// 50*40 calls of 50µs: 100ms, ten 10ms slots of a 100ms+ window.
		{desc: "across slot boundaries", s: BudgetSettings{Burst: 100, Window: 110 * time.Millisecond}, tick: 50 * time.Microsecond, want: 100},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(0)
			b := NewBudget(tt.s, clk.now)
			successes(b, tt.successes)
			var granted atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 50 {
				wg.Go(func() {
					<-start
					for range 40 {
						if b.TryRetry() {
							granted.Add(1)
						}
						clk.advance(tt.tick)
					}
				})
			}
			close(start)
			wg.Wait()
			if got := granted.Load(); got != tt.want {
				t.Fatalf("50 goroutines were granted %d retries, want exactly %d", got, tt.want)
			}
		})
	}
}
