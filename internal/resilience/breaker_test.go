package resilience

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testSettings are small numbers that keep the tables readable.
var testSettings = BreakerSettings{
	ErrorThresholdPercent: 50,
	MinRequests:           10,
	OpenDuration:          5 * time.Second,
	Window:                10 * time.Second,
	HalfOpenRequests:      3,
}

func newTestBreaker(t *testing.T, s BreakerSettings) (*Breaker, *fakeClock) {
	t.Helper()
	clk := newFakeClock(time.Hour)
	return NewBreaker(s, clk.now), clk
}

// record sends ok successes then fail failures through b, each admitted.
func record(t *testing.T, b *Breaker, ok, fail int) {
	t.Helper()
	for i := range ok + fail {
		tk, admitted := b.Allow()
		if !admitted {
			t.Fatalf("Allow() = false on outcome %d, want true (state %v)", i, b.State())
		}
		b.Done(tk, i < ok)
	}
}

// trip opens b (closed, with testSettings) and checks that it did.
func trip(t *testing.T, b *Breaker) {
	t.Helper()
	record(t, b, 0, b.Settings().MinRequests)
	if got := b.State(); got != Open {
		t.Fatalf("State() after %d failures = %v, want open", b.Settings().MinRequests, got)
	}
}

// allowN calls Allow n times and returns the admitted tickets.
func allowN(b *Breaker, n int) []Ticket {
	var ts []Ticket
	for range n {
		if tk, ok := b.Allow(); ok {
			ts = append(ts, tk)
		}
	}
	return ts
}

func TestStateString(t *testing.T) {
	t.Parallel()
	for s, want := range map[State]string{Closed: "closed", Open: "open", HalfOpen: "half_open", 0: "unknown", 9: "unknown"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", s, got, want)
		}
	}
}

func TestBreakerSettingsDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		in   BreakerSettings
		want BreakerSettings
	}{
		{
			desc: "zero means the config defaults",
			want: BreakerSettings{ErrorThresholdPercent: 50, MinRequests: 20, OpenDuration: 30 * time.Second, Window: 10 * time.Second, HalfOpenRequests: 5},
		},
		{
			desc: "out of range is clamped or defaulted",
			in:   BreakerSettings{ErrorThresholdPercent: 250, MinRequests: -1, OpenDuration: -time.Second, Window: -1, HalfOpenRequests: 1 << 40},
			want: BreakerSettings{ErrorThresholdPercent: 100, MinRequests: 20, OpenDuration: 30 * time.Second, Window: 10 * time.Second, HalfOpenRequests: maxProbes},
		},
		{
			desc: "set values are kept",
			in:   testSettings,
			want: testSettings,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			b, _ := newTestBreaker(t, tt.in)
			if got := b.Settings(); got != tt.want {
				t.Errorf("Settings() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// outcomes is one step of a closed-breaker scenario: advance the clock,
// then record ok successes and fail failures.
type outcomes struct {
	advance  time.Duration
	ok, fail int
}

func TestBreakerTrips(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		threshold int
		steps     []outcomes
		want      State
	}{
		{desc: "stays closed below MinRequests at 100% errors", steps: []outcomes{{fail: 9}}, want: Closed},
		{desc: "trips at MinRequests", steps: []outcomes{{fail: 10}}, want: Open},
		{desc: "trips at exactly the threshold", steps: []outcomes{{ok: 5, fail: 5}}, want: Open},
		{desc: "stays closed just below the threshold", steps: []outcomes{{ok: 6, fail: 4}}, want: Closed},
		{desc: "stays closed below the threshold with many requests", steps: []outcomes{{ok: 600, fail: 599}}, want: Closed},
		{desc: "a success that reaches MinRequests trips", steps: []outcomes{{fail: 9}, {ok: 1}}, want: Open},
		{desc: "threshold 100 needs every outcome failed", threshold: 100, steps: []outcomes{{ok: 1, fail: 30}}, want: Closed},
		{desc: "threshold 100 trips on all failures", threshold: 100, steps: []outcomes{{fail: 10}}, want: Open},
		{desc: "threshold 1 trips on one failure in a hundred", threshold: 1, steps: []outcomes{{ok: 99, fail: 1}}, want: Open},
		{desc: "failures that left the window do not count", steps: []outcomes{{fail: 9}, {advance: 10 * time.Second, fail: 9}}, want: Closed},
		{desc: "failures still in the window count", steps: []outcomes{{fail: 9}, {advance: 10*time.Second - 1, fail: 1}}, want: Open},
		{desc: "old successes no longer hold off new failures", steps: []outcomes{{ok: 20}, {advance: 9 * time.Second, fail: 10}}, want: Closed},
		{desc: "old successes leave the window", steps: []outcomes{{ok: 20}, {advance: 9 * time.Second, fail: 10}, {advance: time.Second, fail: 1}}, want: Open},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			s := testSettings
			if tt.threshold != 0 {
				s.ErrorThresholdPercent = tt.threshold
			}
			b, clk := newTestBreaker(t, s)
			for _, st := range tt.steps {
				clk.advance(st.advance)
				if b.State() == Closed {
					record(t, b, st.ok, st.fail)
				}
			}
			if got := b.State(); got != tt.want {
				t.Errorf("State() = %v, want %v (stats %+v)", got, tt.want, b.Stats())
			}
		})
	}
}

func TestBreakerOpenRejectsUntilOpenDuration(t *testing.T) {
	t.Parallel()
	b, clk := newTestBreaker(t, testSettings)
	trip(t, b)
	for i := range 100 {
		if _, ok := b.Allow(); ok {
			t.Fatalf("Allow() #%d on an open breaker = true, want false", i)
		}
	}
	clk.advance(testSettings.OpenDuration - 1)
	if _, ok := b.Allow(); ok {
		t.Fatalf("Allow() 1ns before OpenDuration = true, want false")
	}
	if got := b.State(); got != Open {
		t.Fatalf("State() before OpenDuration = %v, want open", got)
	}
	clk.advance(1)
	if got := b.State(); got != Open {
		t.Fatalf("State() at OpenDuration before any Allow = %v, want open", got)
	}
	tk, ok := b.Allow()
	if !ok || !tk.probe {
		t.Fatalf("Allow() at OpenDuration = %+v, %v, want a probe ticket", tk, ok)
	}
	if got := b.State(); got != HalfOpen {
		t.Fatalf("State() after the first probe = %v, want half_open", got)
	}
}

func TestBreakerHalfOpenAdmitsExactlyHalfOpenRequests(t *testing.T) {
	t.Parallel()
	for _, probes := range []int{1, 3, 7} {
		s := testSettings
		s.HalfOpenRequests = probes
		b, clk := newTestBreaker(t, s)
		trip(t, b)
		clk.advance(s.OpenDuration)

		const callers = 50
		var admitted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range callers {
			wg.Go(func() {
				<-start
				if tk, ok := b.Allow(); ok {
					if !tk.probe {
						t.Errorf("half-open Allow() gave a non-probe ticket %+v", tk)
					}
					admitted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := admitted.Load(); got != int64(probes) {
			t.Errorf("HalfOpenRequests=%d: %d concurrent callers admitted %d, want %d", probes, callers, got, probes)
		}
		if got := len(allowN(b, 10)); got != 0 {
			t.Errorf("HalfOpenRequests=%d: Allow() with every slot taken admitted %d, want 0", probes, got)
		}
	}
}

func TestBreakerProbeOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		outcomes  []bool // of the 3 probes, in order
		want      State
		wantTrips uint64
	}{
		{desc: "all probes succeed: closed", outcomes: []bool{true, true, true}, want: Closed, wantTrips: 1},
		{desc: "last probe fails: open again", outcomes: []bool{true, true, false}, want: Open, wantTrips: 2},
		{desc: "first probe fails: open again, later successes ignored", outcomes: []bool{false, true, true}, want: Open, wantTrips: 2},
		{desc: "two successes are not enough", outcomes: []bool{true, true}, want: HalfOpen, wantTrips: 1},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			b, clk := newTestBreaker(t, testSettings)
			trip(t, b)
			firstOpen := b.Stats().OpenedAt
			clk.advance(testSettings.OpenDuration)
			probes := allowN(b, 3)
			if len(probes) != 3 {
				t.Fatalf("admitted %d probes, want 3", len(probes))
			}
			clk.advance(time.Second)
			for i, ok := range tt.outcomes {
				b.Done(probes[i], ok)
			}
			st := b.Stats()
			if st.State != tt.want || st.Trips != tt.wantTrips {
				t.Fatalf("Stats() = state %v trips %d, want %v %d", st.State, st.Trips, tt.want, tt.wantTrips)
			}
			switch tt.want {
			case Closed:
				if st.Requests != 0 || st.Failures != 0 {
					t.Errorf("closed after probes with Requests=%d Failures=%d, want a fresh window", st.Requests, st.Failures)
				}
				if got := len(allowN(b, 50)); got != 50 {
					t.Errorf("closed breaker admitted %d of 50, want 50", got)
				}
			case Open:
				if got := st.OpenedAt.Sub(firstOpen); got != testSettings.OpenDuration+time.Second {
					t.Errorf("OpenedAt moved by %v, want %v", got, testSettings.OpenDuration+time.Second)
				}
				if got := len(allowN(b, 10)); got != 0 {
					t.Errorf("re-opened breaker admitted %d, want 0", got)
				}
				clk.advance(testSettings.OpenDuration - 1)
				if got := len(allowN(b, 10)); got != 0 {
					t.Errorf("re-opened breaker admitted %d before a new OpenDuration, want 0", got)
				}
				clk.advance(1)
				if got := len(allowN(b, 10)); got != 3 {
					t.Errorf("after a new OpenDuration admitted %d, want 3 probes", got)
				}
			}
		})
	}
}

// TestBreakerStaleTickets checks that outcomes of requests admitted in an
// earlier generation change nothing: not the probe accounting, not the
// fresh window.
func TestBreakerStaleTickets(t *testing.T) {
	t.Parallel()
	s := testSettings
	s.HalfOpenRequests = 1
	b, clk := newTestBreaker(t, s)

	inflight := allowN(b, 5) // admitted while closed, finishing later
	trip(t, b)
	clk.advance(s.OpenDuration)
	probe := allowN(b, 1)
	if len(probe) != 1 {
		t.Fatal("no probe admitted after OpenDuration")
	}
	b.Done(inflight[0], true) // would close the breaker if taken for the probe
	b.Done(inflight[1], false)
	if got := b.State(); got != HalfOpen {
		t.Fatalf("State() after stale outcomes = %v, want half_open", got)
	}
	if got := len(allowN(b, 5)); got != 0 {
		t.Fatalf("stale outcomes freed %d probe slots, want 0", got)
	}

	// A probe of an earlier half-open period is stale too.
	b.Done(probe[0], false)
	clk.advance(s.OpenDuration)
	probe2 := allowN(b, 1)
	b.Done(probe[0], true)
	if got := b.State(); got != HalfOpen {
		t.Fatalf("State() after an old probe's success = %v, want half_open", got)
	}

	b.Done(probe2[0], true)
	if got := b.State(); got != Closed {
		t.Fatalf("State() after the probe's success = %v, want closed", got)
	}
	for _, tk := range inflight[2:] {
		b.Done(tk, false)
	}
	b.Done(Ticket{}, false)
	if st := b.Stats(); st.Requests != 0 || st.Failures != 0 {
		t.Fatalf("fresh window holds Requests=%d Failures=%d from stale tickets, want 0", st.Requests, st.Failures)
	}
}

func TestBreakerRelease(t *testing.T) {
	t.Parallel()
	s := testSettings
	s.HalfOpenRequests = 2
	b, clk := newTestBreaker(t, s)

	closedTicket, _ := b.Allow()
	b.Release(closedTicket)
	if st := b.Stats(); st.Requests != 0 {
		t.Fatalf("Release of a closed ticket recorded %d requests, want 0", st.Requests)
	}

	trip(t, b)
	clk.advance(s.OpenDuration)
	probes := allowN(b, 5)
	if len(probes) != 2 {
		t.Fatalf("admitted %d probes, want 2", len(probes))
	}
	b.Release(probes[0])
	b.Release(closedTicket) // stale: must not free a slot
	again := allowN(b, 5)
	if len(again) != 1 {
		t.Fatalf("after one Release admitted %d, want 1", len(again))
	}
	b.Done(probes[1], true)
	if got := b.State(); got != HalfOpen {
		t.Fatalf("State() after 1 of 2 probe successes = %v, want half_open", got)
	}
	b.Done(again[0], true)
	if got := b.State(); got != Closed {
		t.Fatalf("State() after 2 probe successes = %v, want closed", got)
	}
}

func TestBreakerUpdate(t *testing.T) {
	t.Parallel()
	t.Run("lower MinRequests keeps the window", func(t *testing.T) {
		t.Parallel()
		b, _ := newTestBreaker(t, testSettings)
		record(t, b, 0, 5)
		s := testSettings
		s.MinRequests = 6
		b.Update(s)
		if st := b.Stats(); st.State != Closed || st.Requests != 5 || st.Failures != 5 {
			t.Fatalf("Stats() after Update = %+v, want closed with 5/5", st)
		}
		record(t, b, 0, 1)
		if got := b.State(); got != Open {
			t.Fatalf("State() = %v, want open at the new MinRequests", got)
		}
	})
	t.Run("higher threshold applies to the next outcome", func(t *testing.T) {
		t.Parallel()
		b, _ := newTestBreaker(t, testSettings)
		record(t, b, 5, 4)
		s := testSettings
		s.ErrorThresholdPercent = 60
		b.Update(s)
		record(t, b, 0, 1) // 5/10 failed: 50% < 60%
		if got := b.State(); got != Closed {
			t.Fatalf("State() = %v, want closed under the raised threshold", got)
		}
	})
	t.Run("open stays open and takes the new OpenDuration", func(t *testing.T) {
		t.Parallel()
		b, clk := newTestBreaker(t, testSettings)
		trip(t, b)
		s := testSettings
		s.OpenDuration = time.Second
		s.MinRequests = 1000
		b.Update(s)
		if st := b.Stats(); st.State != Open || st.Trips != 1 {
			t.Fatalf("Stats() after Update = %+v, want open with 1 trip", st)
		}
		clk.advance(time.Second)
		if _, ok := b.Allow(); !ok {
			t.Fatal("Allow() after the shortened OpenDuration = false, want true")
		}
	})
	t.Run("a new window length carries the outcomes over", func(t *testing.T) {
		t.Parallel()
		b, clk := newTestBreaker(t, testSettings)
		record(t, b, 0, 8)
		s := testSettings
		s.Window = 20 * time.Second
		b.Update(s)
		clk.advance(15 * time.Second) // past the old window, inside the new
		if st := b.Stats(); st.Requests != 8 {
			t.Fatalf("Requests after a window change = %d, want 8", st.Requests)
		}
		record(t, b, 0, 2)
		if got := b.State(); got != Open {
			t.Fatalf("State() = %v, want open", got)
		}
	})
	t.Run("lowering HalfOpenRequests below the successes closes", func(t *testing.T) {
		t.Parallel()
		b, clk := newTestBreaker(t, testSettings)
		trip(t, b)
		clk.advance(testSettings.OpenDuration)
		probes := allowN(b, 3)
		b.Done(probes[0], true)
		b.Done(probes[1], true)
		s := testSettings
		s.HalfOpenRequests = 2
		b.Update(s)
		if got := b.State(); got != Closed {
			t.Fatalf("State() = %v, want closed", got)
		}
		b.Done(probes[2], false) // stale now
		if got := b.State(); got != Closed {
			t.Fatalf("State() after a stale probe failure = %v, want closed", got)
		}
	})
	t.Run("raising HalfOpenRequests admits more probes", func(t *testing.T) {
		t.Parallel()
		b, clk := newTestBreaker(t, testSettings)
		trip(t, b)
		clk.advance(testSettings.OpenDuration)
		allowN(b, 3)
		s := testSettings
		s.HalfOpenRequests = 5
		b.Update(s)
		if got := len(allowN(b, 10)); got != 2 {
			t.Fatalf("admitted %d more probes, want 2", got)
		}
	})
}

func TestBreakerStats(t *testing.T) {
	t.Parallel()
	b, clk := newTestBreaker(t, testSettings)
	if st := b.Stats(); st != (BreakerStats{State: Closed}) {
		t.Fatalf("Stats() of a new breaker = %+v, want closed and zero", st)
	}
	record(t, b, 6, 3)
	st := b.Stats()
	if st.Requests != 9 || st.Failures != 3 || st.ErrorRate != 3.0/9 || !st.OpenedAt.IsZero() || st.Trips != 0 {
		t.Fatalf("Stats() = %+v, want 9 requests, 3 failures, rate 1/3, never opened", st)
	}
	clk.advance(2 * time.Second)
	record(t, b, 0, 3)
	st = b.Stats()
	wantOpened := b.wallBase.Add(time.Duration(clk.now() - b.monoBase))
	if st.State != Open || st.Trips != 1 || !st.OpenedAt.Equal(wantOpened) {
		t.Fatalf("Stats() = %+v, want open, 1 trip, opened at %v", st, wantOpened)
	}
	if st.Requests != 12 || st.Failures != 6 || st.ErrorRate != 0.5 {
		t.Fatalf("Stats() while open = %+v, want the tripping window 12/6", st)
	}
}

func TestBreakerOnStateChange(t *testing.T) {
	t.Parallel()
	b, clk := newTestBreaker(t, testSettings)
	var got []change
	b.OnStateChange(func(from, to State) {
		got = append(got, change{from, to})
		_ = b.State() // calling back into the breaker must not deadlock
	})
	trip(t, b)
	clk.advance(testSettings.OpenDuration)
	p := allowN(b, 3)
	b.Done(p[0], false)
	clk.advance(testSettings.OpenDuration)
	p = allowN(b, 3)
	for _, tk := range p {
		b.Done(tk, true)
	}
	want := []change{
		{Closed, Open}, {Open, HalfOpen}, {HalfOpen, Open}, {Open, HalfOpen}, {HalfOpen, Closed},
	}
	if !slices.Equal(got, want) {
		t.Errorf("transitions = %v, want %v", got, want)
	}

	b.OnStateChange(nil)
	trip(t, b)
	if len(got) != len(want) {
		t.Errorf("callback called %d times after removal, want %d", len(got), len(want))
	}
}

// TestBreakerConcurrent hammers a breaker from many goroutines while the
// clock moves, for the race detector, and checks that the transitions
// reported form one chain and that the callback never runs concurrently.
func TestBreakerConcurrent(t *testing.T) {
	t.Parallel()
	s := testSettings
	s.ErrorThresholdPercent = 30
	s.OpenDuration = 50 * time.Millisecond
	s.Window = 100 * time.Millisecond
	b, clk := newTestBreaker(t, s)

	var mu sync.Mutex // only to read got after the run; never contended
	var got []change
	var inside atomic.Bool
	b.OnStateChange(func(from, to State) {
		if !inside.CompareAndSwap(false, true) {
			t.Error("OnStateChange callback ran concurrently with itself")
		}
		mu.Lock()
		got = append(got, change{from, to})
		mu.Unlock()
		inside.Store(false)
	})

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 42))
			for range 3000 {
				tk, ok := b.Allow()
				clk.advance(50 * time.Microsecond)
				if !ok {
					continue
				}
				switch n := r.IntN(100); {
				case n < 5:
					b.Release(tk)
				default:
					b.Done(tk, n < 60) // 40% failures, threshold 30%: trips often
				}
			}
		})
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("no transition reported")
	}
	prev := Closed
	for i, c := range got {
		if c.from != prev || c.from == c.to {
			t.Fatalf("transition %d is %v after %v: not a chain (%v)", i, c, prev, got)
		}
		prev = c.to
	}
	if !slices.Contains(got, change{Open, HalfOpen}) {
		t.Errorf("transitions %v never reach half_open: the test exercises too little", got)
	}
	if prev != b.State() {
		t.Errorf("last reported state %v, State() = %v", prev, b.State())
	}
	trips := uint64(0)
	for _, c := range got {
		if c.to == Open {
			trips++
		}
	}
	if st := b.Stats(); st.Trips != trips {
		t.Errorf("Trips = %d, transitions to open = %d", st.Trips, trips)
	}
}
