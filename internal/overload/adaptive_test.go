package overload

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a hand-driven monotonic clock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// drive runs windows sample windows through an adaptive limiter with no
// queue. A window is batches of requests that fill busy slots of the
// current limit (all of them when busy is 0) and release with latency lat
// (every dropEvery-th one dropped). The clock moves on by windowTime just
// before the release that closes the window: the first one at or after
// windowSamples that checks the clock (see checkDue), the last of the
// largest batch that can end there, so that each window holds exactly its own samples.
func drive(t *testing.T, l *Limiter, clk *fakeClock, windows, busy int, lat time.Duration, dropEvery int) {
	t.Helper()
	for range windows {
		for samples, closed := 0, false; !closed; {
			n := l.Limit()
			if busy > 0 {
				n = min(n, busy)
			}
			for m := n; m >= 1; m-- { // the largest batch, for the peak
				if checkDue(int64(samples + m)) {
					n, closed = m, true
					break
				}
			}
			held := make([]Token, 0, n)
			for range n {
				held = append(held, mustAcquire(t, l))
			}
			for i, tk := range held {
				samples++
				if closed && i == len(held)-1 {
					clk.advance(windowTime)
				}
				tk.Release(lat, dropEvery > 0 && samples%dropEvery == 0)
			}
		}
	}
}

func TestAdaptiveShrinksAndGrows(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	const maxC = 200
	l := New(Settings{MaxConcurrent: maxC, Adaptive: true}, clk.now)
	if l.Limit() != maxC {
		t.Fatalf("initial Limit() = %d, want %d", l.Limit(), maxC)
	}
	drive(t, l, clk, 30, 0, 10*time.Millisecond, 0)
	if got := l.Limit(); got != maxC {
		t.Fatalf("steady latency: Limit() = %d, want %d", got, maxC)
	}

	// Latency ten times higher: the upstream is queueing; shrink.
	prev := l.Limit()
	for i := range 30 {
		drive(t, l, clk, 1, 0, 100*time.Millisecond, 0)
		if got := l.Limit(); got > prev {
			t.Fatalf("window %d of high latency: Limit() rose from %d to %d", i, prev, got)
		}
		prev = l.Limit()
	}
	low := l.Limit()
	if low > maxC/4 || low < minLimit {
		t.Fatalf("after 30 windows at 10x latency: Limit() = %d, want between %d and %d", low, minLimit, maxC/4)
	}

	// Latency back to normal: grow back, never above the maximum.
	for i := range 400 {
		drive(t, l, clk, 1, 0, 10*time.Millisecond, 0)
		if got := l.Limit(); got > maxC || got < prev {
			t.Fatalf("window %d of normal latency: Limit() = %d after %d, want rising to at most %d", i, got, prev, maxC)
		}
		prev = l.Limit()
	}
	if got := l.Limit(); got != maxC {
		t.Errorf("after 400 windows back at normal latency: Limit() = %d, want %d (from %d)", got, maxC, low)
	}
}

// TestAdaptiveDrops checks that windows with drops cut the limit by about
// 10% each, whatever the latency.
func TestAdaptiveDrops(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	l := New(Settings{MaxConcurrent: 100, Adaptive: true}, clk.now)
	drive(t, l, clk, 20, 0, 10*time.Millisecond, 0)
	drive(t, l, clk, 5, 0, 10*time.Millisecond, 10)
	// 100 -> 0.9*100 + 0.2*sqrt(100) = 92 and so on.
	if got := l.Limit(); got < 60 || got > 75 {
		t.Errorf("after 5 windows with drops: Limit() = %d, want about 66", got)
	}
}

// TestAdaptiveAppLimited checks that a limit does not grow while most of
// it is unused.
func TestAdaptiveAppLimited(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	l := New(Settings{MaxConcurrent: 100, Adaptive: true}, clk.now)
	drive(t, l, clk, 20, 0, 10*time.Millisecond, 0)
	drive(t, l, clk, 10, 0, 10*time.Millisecond, 1)
	low := l.Limit()
	drive(t, l, clk, 50, low/2, time.Millisecond, 0)
	if got := l.Limit(); got != low {
		t.Errorf("using half the limit: Limit() = %d, want it kept at %d", got, low)
	}
	drive(t, l, clk, 5, 0, time.Millisecond, 0)
	if got := l.Limit(); got <= low {
		t.Errorf("using all of the limit: Limit() = %d, want above %d", got, low)
	}
}

// TestAdaptiveUpdate checks the adaptive limit across config applies.
func TestAdaptiveUpdate(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	s := Settings{MaxConcurrent: 100, Adaptive: true}
	l := New(s, clk.now)
	drive(t, l, clk, 20, 0, 10*time.Millisecond, 0)
	drive(t, l, clk, 10, 0, 10*time.Millisecond, 1)
	low := l.Limit()
	if low >= 100 {
		t.Fatalf("Limit() = %d after drops, want below 100", low)
	}
	l.Update(s) // the same settings keep the adaptive limit
	if got := l.Limit(); got != low {
		t.Errorf("after re-applying: Limit() = %d, want %d", got, low)
	}
	l.Update(Settings{MaxConcurrent: 10, Adaptive: true}) // a lower maximum caps it
	if got := l.Limit(); got != min(low, 10) {
		t.Errorf("after lowering the maximum: Limit() = %d, want %d", got, min(low, 10))
	}
	l.Update(Settings{MaxConcurrent: 100}) // off: the static limit
	if got := l.Limit(); got != 100 {
		t.Errorf("adaptive off: Limit() = %d, want 100", got)
	}
	drive(t, l, clk, 5, 0, time.Second, 1)
	if got := l.Limit(); got != 100 {
		t.Errorf("adaptive off, with drops: Limit() = %d, want 100", got)
	}
	l.Update(Settings{MaxConcurrent: 100, Adaptive: true}) // on again: starts from the limit
	if got := l.Limit(); got != 100 {
		t.Errorf("adaptive on again: Limit() = %d, want 100", got)
	}
}

// TestAdaptiveRiseAdmitsWaiters checks that a limit raised by the adaptive
// algorithm hands the new slots to queued requests at once.
func TestAdaptiveRiseAdmitsWaiters(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	l := New(Settings{MaxConcurrent: 40, QueueSize: 10, QueueTimeout: long, Adaptive: true}, clk.now)
	drive(t, l, clk, 20, 0, 10*time.Millisecond, 0)
	drive(t, l, clk, 10, 0, 10*time.Millisecond, 1)
	low := l.Limit()
	held := make([]Token, 0, low)
	for range low {
		held = append(held, mustAcquire(t, l))
	}
	waiter := queue(t, l, context.Background())
	// Samples without releases (a release would hand its slot over
	// anyway): only the raised limit can admit the waiter.
	clk.advance(windowTime)
	for range windowSamples {
		l.sample(time.Millisecond, false)
	}
	if l.Limit() <= low {
		t.Fatalf("Limit() = %d after a fast window at the limit, want above %d", l.Limit(), low)
	}
	r := <-waiter
	if r.err != nil {
		t.Fatalf("waiter after the limit rose: %v", r.err)
	}
	checkCounts(t, l, low+1, 0)
	r.tk.Release(0, false)
	for _, tk := range held {
		tk.Release(0, false)
	}
	checkCounts(t, l, 0, 0)
}
