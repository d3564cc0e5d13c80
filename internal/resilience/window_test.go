package resilience

import (
	"math"
	"sync"
	"testing"
	"time"
)

// windowStep moves the clock to at, adds add events, then checks Sum
// (unless want is -1).
type windowStep struct {
	at   time.Duration
	add  int64
	want int64
}

func TestWindowExpiry(t *testing.T) {
	t.Parallel()
	const s = time.Second
	tests := []struct {
		desc    string
		start   time.Duration
		d       time.Duration
		buckets int
		steps   []windowStep
	}{
		{
			desc: "an event expires exactly at the window edge",
			d:    10 * s, buckets: 10,
			steps: []windowStep{
				{at: 0, add: 1, want: 1},
				{at: 10*s - 1, want: 1},
				{at: 10 * s, want: 0},
			},
		},
		{
			desc: "a mid-slot event expires with its slot",
			d:    10 * s, buckets: 10,
			steps: []windowStep{
				{at: 500 * time.Millisecond, add: 2, want: 2},
				{at: 10*s - 1, want: 2},
				{at: 10 * s, want: 0},
			},
		},
		{
			desc: "each slot ages on its own",
			d:    10 * s, buckets: 10,
			steps: []windowStep{
				{at: 0 * s, add: 1, want: 1},
				{at: 1 * s, add: 1, want: 2},
				{at: 2 * s, add: 1, want: 3},
				{at: 3 * s, add: 1, want: 4},
				{at: 4 * s, add: 1, want: 5},
				{at: 5 * s, add: 1, want: 6},
				{at: 6 * s, add: 1, want: 7},
				{at: 7 * s, add: 1, want: 8},
				{at: 8 * s, add: 1, want: 9},
				{at: 9 * s, add: 1, want: 10},
				{at: 10 * s, want: 9},
				{at: 14*s + 500*time.Millisecond, want: 5},
				{at: 19*s - 1, want: 1},
				{at: 19 * s, want: 0},
			},
		},
		{
			desc: "slots skipped by a gap hold nothing",
			d:    10 * s, buckets: 10,
			steps: []windowStep{
				{at: 0, add: 4, want: 4},
				{at: 3 * s, add: 1, want: 5},
				{at: 9 * s, add: 2, want: 7},
				{at: 12 * s, add: 8, want: 11},
				{at: 13 * s, want: 10},
				{at: 19*s - 1, want: 10},
				{at: 19 * s, want: 8},
				{at: 22*s - 1, want: 8},
				{at: 22 * s, want: 0},
			},
		},
		{
			desc: "a long idle window starts empty",
			d:    10 * s, buckets: 10,
			steps: []windowStep{
				{at: 0, add: 3, want: 3},
				{at: 5 * s, add: 3, want: 6},
				{at: 1000 * time.Hour, want: 0},
				{at: 1000 * time.Hour, add: 2, want: 2},
			},
		},
		{
			desc:  "a clock far from zero",
			start: 1 << 62,
			d:     10 * s, buckets: 10,
			steps: []windowStep{
				{at: 1 << 62, add: 1, want: 1},
				{at: 1<<62 + 5*s, add: 1, want: 2},
				{at: 1<<62 + 10*s, want: 1},
				{at: 1<<62 + 15*s, want: 0},
			},
		},
		{
			desc:  "a clock below zero",
			start: -5*s - 500*time.Millisecond,
			d:     10 * s, buckets: 10,
			steps: []windowStep{
				{at: -5*s - 500*time.Millisecond, add: 1, want: 1}, // slot -6
				{at: -500 * time.Millisecond, add: 1, want: 2},     // slot -1
				{at: 4*s - 1, want: 2},
				{at: 4 * s, want: 1},
				{at: 9*s - 1, want: 1},
				{at: 9 * s, want: 0},
			},
		},
		{
			desc:  "slot stamps wrap around 2^32",
			start: (1<<32 - 3) * time.Millisecond,
			d:     10 * time.Millisecond, buckets: 10,
			steps: []windowStep{
				{at: (1<<32 - 3) * time.Millisecond, add: 1, want: 1},
				{at: (1<<32 - 1) * time.Millisecond, add: 1, want: 2},
				{at: (1<<32 + 2) * time.Millisecond, add: 1, want: 3},
				{at: (1<<32 + 7) * time.Millisecond, want: 2},
				{at: (1<<32 + 9) * time.Millisecond, want: 1},
				{at: (1<<32 + 12) * time.Millisecond, want: 0},
			},
		},
		{
			desc: "one bucket",
			d:    s, buckets: 1,
			steps: []windowStep{
				{at: 0, add: 1, want: 1},
				{at: s - 1, add: 1, want: 2},
				{at: s, want: 0},
			},
		},
		{
			desc: "zero length and buckets mean 10s in 10",
			steps: []windowStep{
				{at: 0, add: 1, want: 1},
				{at: 10*s - 1, want: 1},
				{at: 10 * s, want: 0},
			},
		},
		{
			desc: "adds of zero or less are ignored",
			d:    10 * s, buckets: 10,
			steps: []windowStep{
				{at: 0, add: 0, want: 0},
				{at: 0, add: -5, want: 0},
				{at: 0, add: 1, want: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(tt.start)
			w := NewWindow(tt.d, tt.buckets, clk.now)
			for i, st := range tt.steps {
				clk.set(st.at)
				w.Add(st.add)
				if got := w.Sum(); st.want >= 0 && got != st.want {
					t.Errorf("step %d (at %v): Sum() = %d, want %d", i, st.at, got, st.want)
				}
			}
		})
	}
}

func TestWindowSaturates(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(0)
	w := NewWindow(10*time.Second, 10, clk.now)
	w.Add(math.MaxInt64)
	w.Add(7)
	if got, want := w.Sum(), int64(math.MaxUint32); got != want {
		t.Fatalf("Sum() after overflowing adds = %d, want %d", got, want)
	}
	clk.advance(time.Second)
	w.Add(1) // the saturated slot must not carry into the stamp
	if got, want := w.Sum(), int64(math.MaxUint32)+1; got != want {
		t.Fatalf("Sum() a slot later = %d, want %d", got, want)
	}
}

// TestWindowLateCaller covers callers whose clock reading is older than the
// head: an add counts in the head's slot, a sum is taken at the head's slot.
func TestWindowLateCaller(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(0)
	w := NewWindow(10*time.Second, 10, clk.now)
	w.addAt(int64(5*time.Second), 2)
	w.addAt(int64(4*time.Second), 1) // read the clock before the first caller
	if got := w.sumAt(int64(4 * time.Second)); got != 3 {
		t.Errorf("sumAt(4s) = %d, want 3", got)
	}
	if got := w.sumAt(int64(14*time.Second) + 1); got != 3 {
		t.Errorf("sumAt(14s) = %d, want 3 (the late add counts in the 5s slot)", got)
	}
	if got := w.sumAt(int64(15 * time.Second)); got != 0 {
		t.Errorf("sumAt(15s) = %d, want 0", got)
	}
}

func TestWindowResized(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(0)
	w := NewWindow(10*time.Second, 10, clk.now)
	w.Add(3)
	clk.advance(8 * time.Second)
	w.Add(2)
	r := w.resized(20*time.Second, clk.now())
	if got := r.Sum(); got != 5 {
		t.Fatalf("resized Sum() = %d, want 5", got)
	}
	clk.advance(20*time.Second - 1)
	if got := r.Sum(); got != 5 {
		t.Errorf("Sum() just before the new window ends = %d, want 5", got)
	}
	clk.advance(1)
	if got := r.Sum(); got != 0 {
		t.Errorf("Sum() a new window later = %d, want 0", got)
	}
}

// TestWindowConcurrentAdd checks that concurrent adds are never lost, also
// while the clock crosses many slot boundaries: each crossing races adders
// against the copy of the finished slot into the ring.
func TestWindowConcurrentAdd(t *testing.T) {
	t.Parallel()
	const goroutines, adds = 8, 5000
	tests := []struct {
		desc string
		tick time.Duration // clock advance after each add
	}{
		{desc: "fixed clock"},
		{desc: "moving clock", tick: 5 * time.Microsecond}, // 200 slots of 1ms
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(0)
			w := NewWindow(time.Second, 1000, clk.now)
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range adds {
						w.Add(1)
						clk.advance(tt.tick)
					}
				})
			}
			wg.Wait()
			if got, want := w.Sum(), int64(goroutines*adds); got != want {
				t.Fatalf("Sum() = %d, want %d", got, want)
			}
		})
	}
}

// TestWindowConcurrentTryAdd checks that concurrent tryAddAt calls never
// grant more than the limit, also across slot boundaries.
func TestWindowConcurrentTryAdd(t *testing.T) {
	t.Parallel()
	const goroutines, tries, limit = 50, 400, 1000
	clk := newFakeClock(0)
	w := NewWindow(time.Second, 1000, clk.now) // 1ms slots
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for range goroutines {
		wg.Go(func() {
			n := 0
			for range tries {
				if w.tryAddAt(clk.now(), limit) {
					n++
				}
				clk.advance(10 * time.Microsecond) // 200ms in all
			}
			mu.Lock()
			granted += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if granted != limit {
		t.Fatalf("granted %d, want exactly %d", granted, limit)
	}
	if got := w.Sum(); got != limit {
		t.Fatalf("Sum() = %d, want %d", got, limit)
	}
}
