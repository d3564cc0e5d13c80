package overload

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind, a
// waiter stuck in a queue among them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// long is a queue timeout no test waits for.
const long = time.Minute

// mustAcquire acquires a slot that must be free.
func mustAcquire(t testing.TB, l *Limiter) Token {
	t.Helper()
	tk, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire = %v, want a slot", err)
	}
	return tk
}

// queue starts an Acquire in a goroutine and waits until it is queued;
// the result arrives on the returned channel.
func queue(t *testing.T, l *Limiter, ctx context.Context) <-chan result {
	t.Helper()
	want := l.Queued() + 1
	ch := make(chan result, 1)
	go func() {
		tk, err := l.Acquire(ctx)
		ch <- result{tk, err}
	}()
	eventually(t, func() bool { return l.Queued() == want }, "Queued() = %d, want %d", l.Queued, want)
	return ch
}

type result struct {
	tk  Token
	err error
}

func eventually(t *testing.T, cond func() bool, format string, get func() int, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf(format, get(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func checkCounts(t *testing.T, l *Limiter, inFlight, queued int) {
	t.Helper()
	if l.InFlight() != inFlight || l.Queued() != queued {
		t.Fatalf("InFlight, Queued = %d, %d; want %d, %d", l.InFlight(), l.Queued(), inFlight, queued)
	}
}

func TestShedWhenFull(t *testing.T) {
	t.Parallel()
	l := New(Settings{MaxConcurrent: 3}, nil)
	var held []Token
	for range 3 {
		held = append(held, mustAcquire(t, l))
	}
	start := time.Now()
	tk, err := l.Acquire(context.Background())
	var oe *Error
	if !errors.Is(err, ErrOverloaded) || !errors.As(err, &oe) || oe.Timeout || tk != (Token{}) {
		t.Fatalf("Acquire over the limit without a queue = %v, %v; want a queue-full *Error", tk, err)
	}
	if oe.RetryAfter != time.Second || err.Error() != "overloaded: queue full" {
		t.Errorf("error = %q, RetryAfter %v; want %q, 1s", err, oe.RetryAfter, "overloaded: queue full")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("shedding took %v, want at once", d)
	}
	for _, tk := range held {
		tk.Release(0, false)
	}
	checkCounts(t, l, 0, 0)
	Token{}.Release(time.Second, true) // the zero Token holds nothing
	checkCounts(t, l, 0, 0)
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		timeout, want time.Duration
	}{
		{0, time.Second},
		{250 * time.Millisecond, time.Second},
		{time.Second, time.Second},
		{1500 * time.Millisecond, 2 * time.Second},
		{3 * time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		c := newConfig(Settings{MaxConcurrent: 1, QueueTimeout: tt.timeout})
		if c.full.RetryAfter != tt.want || c.timeout.RetryAfter != tt.want {
			t.Errorf("QueueTimeout %v: RetryAfter = %v, %v; want %v", tt.timeout, c.full.RetryAfter, c.timeout.RetryAfter, tt.want)
		}
	}
}

// TestMaxConcurrency checks that many goroutines never have more than the
// limit in flight, and that the queue lets every one of them through.
func TestMaxConcurrency(t *testing.T) {
	t.Parallel()
	const limit, workers, each = 5, 50, 100
	l := New(Settings{MaxConcurrent: limit, QueueSize: workers, QueueTimeout: long}, nil)
	var cur, peak atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				tk, err := l.Acquire(context.Background())
				if err != nil {
					t.Errorf("Acquire = %v, want a slot (the queue holds every worker)", err)
					return
				}
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(20 * time.Microsecond) // hold it: let the others pile up
				cur.Add(-1)
				tk.Release(time.Millisecond, false)
			}
		})
	}
	wg.Wait()
	if got := peak.Load(); got != limit {
		t.Errorf("most in flight = %d, want exactly %d", got, limit)
	}
	checkCounts(t, l, 0, 0)
}

// TestFIFO checks that waiters get slots strictly in arrival order.
func TestFIFO(t *testing.T) {
	t.Parallel()
	l := New(Settings{MaxConcurrent: 1, QueueSize: 20, QueueTimeout: long}, nil)
	holder := mustAcquire(t, l)
	const n = 10
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tk, err := l.Acquire(context.Background())
			if err != nil {
				t.Errorf("waiter %d: Acquire = %v", i, err)
				return
			}
			order <- i // before releasing: the next one cannot have a slot yet
			tk.Release(0, false)
		})
		eventually(t, func() bool { return l.Queued() == i+1 }, "Queued() = %d, want %d", l.Queued, i+1)
	}
	holder.Release(0, false)
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Fatalf("waiter %d got a slot in position %d, want FIFO", got, want)
		}
		want++
	}
	checkCounts(t, l, 0, 0)
}

// TestReleaseHandsToOldest checks that a release gives its slot to the
// oldest waiter before any newcomer can take it.
func TestReleaseHandsToOldest(t *testing.T) {
	t.Parallel()
	l := New(Settings{MaxConcurrent: 1, QueueSize: 5, QueueTimeout: long}, nil)
	holder := mustAcquire(t, l)
	first := queue(t, l, context.Background())
	second := queue(t, l, context.Background())
	holder.Release(0, false)
	// The slot changed hands inside Release: still one in flight.
	checkCounts(t, l, 1, 1)
	r := <-first
	if r.err != nil {
		t.Fatalf("oldest waiter: Acquire = %v", r.err)
	}
	select {
	case r2 := <-second:
		t.Fatalf("second waiter got %v before the first released", r2)
	default:
	}
	r.tk.Release(0, false)
	r = <-second
	if r.err != nil {
		t.Fatalf("second waiter: Acquire = %v", r.err)
	}
	r.tk.Release(0, false)
	checkCounts(t, l, 0, 0)
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	l := New(Settings{MaxConcurrent: 1, QueueSize: 2, QueueTimeout: long}, nil)
	holder := mustAcquire(t, l)
	a, b := queue(t, l, context.Background()), queue(t, l, context.Background())
	_, err := l.Acquire(context.Background())
	var oe *Error
	if !errors.As(err, &oe) || oe.Timeout {
		t.Fatalf("Acquire with a full queue = %v, want a queue-full *Error", err)
	}
	checkCounts(t, l, 1, 2)
	holder.Release(0, false)
	(<-a).tk.Release(0, false)
	(<-b).tk.Release(0, false)
	checkCounts(t, l, 0, 0)
}

func TestQueueTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 30 * time.Millisecond
	l := New(Settings{MaxConcurrent: 1, QueueSize: 1, QueueTimeout: timeout}, nil)
	holder := mustAcquire(t, l)
	start := time.Now()
	_, err := l.Acquire(context.Background())
	var oe *Error
	if !errors.Is(err, ErrOverloaded) || !errors.As(err, &oe) || !oe.Timeout || oe.RetryAfter != time.Second {
		t.Fatalf("Acquire = %v, want a queue-timeout *Error with RetryAfter 1s", err)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("timed out after %v, want at least %v", d, timeout)
	}
	checkCounts(t, l, 1, 0)
	holder.Release(0, false)
	checkCounts(t, l, 0, 0)
	// The recycled waiter and its timer work again.
	holder = mustAcquire(t, l)
	if _, err := l.Acquire(context.Background()); !errors.Is(err, ErrOverloaded) {
		t.Errorf("second wait: Acquire = %v, want ErrOverloaded", err)
	}
	holder.Release(0, false)
}

// TestCancel checks that a waiter whose client leaves gets ctx's error and
// leaves no slot and no queue place behind.
func TestCancel(t *testing.T) {
	t.Parallel()
	l := New(Settings{MaxConcurrent: 1, QueueSize: 2, QueueTimeout: long}, nil)
	holder := mustAcquire(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	ch := queue(t, l, ctx)
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) || r.tk != (Token{}) {
		t.Fatalf("cancelled Acquire = %v, %v; want context.Canceled, no token", r.tk, r.err)
	}
	checkCounts(t, l, 1, 0)
	holder.Release(0, false)
	checkCounts(t, l, 0, 0)
	mustAcquire(t, l).Release(0, false)

	// A done context does not queue.
	holder = mustAcquire(t, l)
	if _, err := l.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a done context = %v, want context.Canceled", err)
	}
	checkCounts(t, l, 1, 0)
	holder.Release(0, false)
}

// TestChurn races grants with timeouts and cancellations and checks that
// every slot and queue place comes back.
func TestChurn(t *testing.T) {
	t.Parallel()
	l := New(Settings{MaxConcurrent: 3, QueueSize: 8, QueueTimeout: 2 * time.Millisecond}, nil)
	var admitted, shed, cancelled atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 300 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(3000))*time.Microsecond)
				tk, err := l.Acquire(ctx)
				switch {
				case err == nil:
					admitted.Add(1)
					if rng.IntN(2) == 0 {
						time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
					}
					tk.Release(time.Millisecond, false)
				case errors.Is(err, ErrOverloaded):
					shed.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					cancelled.Add(1)
				default:
					t.Errorf("Acquire = %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	checkCounts(t, l, 0, 0)
	if admitted.Load() == 0 {
		t.Error("nothing admitted")
	}
	t.Logf("admitted %d, shed %d, cancelled %d", admitted.Load(), shed.Load(), cancelled.Load())
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	l := New(Settings{MaxConcurrent: 1, QueueSize: 5, QueueTimeout: long}, nil)
	holder := mustAcquire(t, l)
	var waiting []<-chan result
	for range 3 {
		waiting = append(waiting, queue(t, l, context.Background()))
	}
	// A higher limit admits the oldest waiters at once.
	l.Update(Settings{MaxConcurrent: 3, QueueSize: 5, QueueTimeout: long})
	checkCounts(t, l, 3, 1)
	a, b := <-waiting[0], <-waiting[1]
	if a.err != nil || b.err != nil {
		t.Fatalf("admitted waiters: %v, %v", a.err, b.err)
	}
	// A lower limit is reached as requests finish: no hand-over above it.
	l.Update(Settings{MaxConcurrent: 1, QueueSize: 5, QueueTimeout: long})
	if l.Limit() != 1 {
		t.Fatalf("Limit() = %d, want 1", l.Limit())
	}
	holder.Release(0, false)
	checkCounts(t, l, 2, 1)
	a.tk.Release(0, false)
	checkCounts(t, l, 1, 1)
	b.tk.Release(0, false) // now at the limit: hand over
	checkCounts(t, l, 1, 0)
	c := <-waiting[2]
	if c.err != nil {
		t.Fatalf("last waiter: %v", c.err)
	}
	// A smaller queue turns newcomers away.
	l.Update(Settings{MaxConcurrent: 1})
	if _, err := l.Acquire(context.Background()); !errors.Is(err, ErrOverloaded) {
		t.Errorf("Acquire with no queue = %v, want ErrOverloaded", err)
	}
	c.tk.Release(0, false)
	checkCounts(t, l, 0, 0)
	if s := l.Settings(); s.QueueTimeout != time.Second || s.MaxConcurrent != 1 {
		t.Errorf("Settings() = %+v, want defaults applied", s)
	}
}

func TestUnlimited(t *testing.T) {
	t.Parallel()
	l := New(Settings{Adaptive: true}, nil)
	if l.Limit() != maxLimit || l.Settings().Adaptive {
		t.Fatalf("Limit() = %d, Adaptive %v; want %d, false", l.Limit(), l.Settings().Adaptive, maxLimit)
	}
	var held []Token
	for range 1000 {
		held = append(held, mustAcquire(t, l))
	}
	for _, tk := range held {
		tk.Release(time.Second, true)
	}
	checkCounts(t, l, 0, 0)
}
