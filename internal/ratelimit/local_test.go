package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// step is one request of a scripted sequence: advance the clock, then ask.
type step struct {
	advance   time.Duration
	wantOK    bool
	wantRetry time.Duration
}

func TestLocalBurstThenRate(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	ok := step{wantOK: true}
	tests := []struct {
		name  string
		s     Settings
		steps []step
	}{
		{
			name: "burst 3 at 1/s",
			s:    Settings{RPS: 1, Burst: 3},
			steps: []step{ok, ok, ok,
				{wantRetry: time.Second},
				{advance: time.Second, wantOK: true},
				{wantRetry: time.Second},
				{advance: 500 * ms, wantRetry: 500 * ms},
				{advance: 499 * ms, wantRetry: ms},
				{advance: ms, wantOK: true},
			},
		},
		{
			name: "burst 1 at 10/s",
			s:    Settings{RPS: 10, Burst: 1},
			steps: []step{ok,
				{wantRetry: 100 * ms},
				{advance: 50 * ms, wantRetry: 50 * ms},
				{advance: 50 * ms, wantOK: true},
				{advance: 250 * ms, wantOK: true}, // idle refills to burst 1, not more
				{wantRetry: 100 * ms},
			},
		},
		{
			name:  "fractional rate, default burst 1",
			s:     Settings{RPS: 0.5},
			steps: []step{ok, {wantRetry: 2 * time.Second}, {advance: 2 * time.Second, wantOK: true}},
		},
		{
			name:  "default burst is rps rounded up",
			s:     Settings{RPS: 2.5},
			steps: []step{ok, ok, ok, {wantRetry: 400 * ms}},
		},
		{
			name: "a long idle refills to burst only",
			s:    Settings{RPS: 1, Burst: 2},
			steps: []step{ok, ok, {wantRetry: time.Second},
				{advance: time.Hour, wantOK: true}, ok, {wantRetry: time.Second}},
		},
		{
			name: "partial refill",
			s:    Settings{RPS: 4, Burst: 4},
			steps: []step{ok, ok, ok, ok, {wantRetry: 250 * ms},
				{advance: 600 * ms, wantOK: true}, ok, {wantRetry: 150 * ms}},
		},
		{
			name:  "denials do not push the wait out",
			s:     Settings{RPS: 1, Burst: 1},
			steps: []step{ok, {wantRetry: time.Second}, {wantRetry: time.Second}, {wantRetry: time.Second}, {advance: time.Second, wantOK: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, c := newLocal(t, tt.s)
			for i, st := range tt.steps {
				c.advance(st.advance)
				got, retry := l.Allow(context.Background(), "k")
				if got != st.wantOK || retry != st.wantRetry {
					t.Fatalf("step %d (+%v): Allow = %v, %v, want %v, %v", i, st.advance, got, retry, st.wantOK, st.wantRetry)
				}
			}
		})
	}
}

func TestNewSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s       Settings
		want    Settings
		wantErr error
	}{
		{s: Settings{RPS: 100, Burst: 20}, want: Settings{RPS: 100, Burst: 20, Scope: Local}},
		{s: Settings{RPS: 100}, want: Settings{RPS: 100, Burst: 100, Scope: Local}},
		{s: Settings{RPS: 0.1}, want: Settings{RPS: 0.1, Burst: 1, Scope: Local}},
		{s: Settings{RPS: 1, Scope: Local}, want: Settings{RPS: 1, Burst: 1, Scope: Local}},
		{s: Settings{RPS: 0}, wantErr: ErrSettings},
		{s: Settings{RPS: -1}, wantErr: ErrSettings},
		{s: Settings{RPS: math.NaN()}, wantErr: ErrSettings},
		{s: Settings{RPS: math.Inf(1)}, wantErr: ErrSettings},
		{s: Settings{RPS: 1, Burst: -1}, wantErr: ErrSettings},
		{s: Settings{RPS: 1, Scope: 7}, wantErr: ErrSettings},
		{s: Settings{RPS: 1e-12, Burst: 10}, wantErr: ErrSettings}, // burst spans > a century
		{s: Settings{RPS: 1, Scope: Global}, wantErr: ErrNoRedis},
	}
	for _, tt := range tests {
		l, err := New(tt.s)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("New(%+v) error = %v, want %v", tt.s, err, tt.wantErr)
			continue
		}
		if err == nil && l.Settings() != tt.want {
			t.Errorf("New(%+v).Settings() = %+v, want %+v", tt.s, l.Settings(), tt.want)
		}
	}
}

func TestScopeString(t *testing.T) {
	t.Parallel()
	for s, want := range map[Scope]string{0: "local", Local: "local", Global: "global", 9: "Scope(9)"} {
		if got := s.String(); got != want {
			t.Errorf("Scope(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestLocalIndependentKeys(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t, Settings{RPS: 1, Burst: 2})
	ctx := context.Background()
	for _, k := range []string{"a", "a"} {
		if ok, _ := l.Allow(ctx, k); !ok {
			t.Fatalf("Allow(%q) denied within burst", k)
		}
	}
	if ok, _ := l.Allow(ctx, "a"); ok {
		t.Fatal(`Allow("a") admitted past burst`)
	}
	// Other keys, the empty one and a long one included, keep full buckets.
	long := strings.Repeat("x", 10_000)
	for _, k := range []string{"b", "", long, long + "y", "\x00a"} {
		for i := range 2 {
			if ok, _ := l.Allow(ctx, k); !ok {
				t.Errorf("Allow(%.10q) #%d denied after key a was exhausted", k, i+1)
			}
		}
		if ok, _ := l.Allow(ctx, k); ok {
			t.Errorf("Allow(%.10q) #3 admitted past burst", k)
		}
	}
	if got := l.Stats().Keys; got != 6 {
		t.Errorf("Stats().Keys = %d, want 6", got)
	}
}

// TestLocalLongKeysBounded: a long key costs a digest, not its length.
func TestLocalLongKeysBounded(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t, Settings{RPS: 1, Burst: 1})
	l.Allow(context.Background(), strings.Repeat("k", 1<<16))
	for i := range l.table.shards {
		for k := range l.table.shards[i].m {
			if len(k) > maxKeyBytes {
				t.Errorf("table holds a %d-byte key, want <= %d", len(k), maxKeyBytes)
			}
		}
	}
}

// TestLocalConcurrentOneKey: racing requests on one key admit exactly the
// allowance, burst on a frozen clock and then one per interval.
func TestLocalConcurrentOneKey(t *testing.T) {
	t.Parallel()
	const burst, goroutines, tries = 100, 8, 500
	l, c := newLocal(t, Settings{RPS: 10, Burst: burst})
	hammer := func() int64 {
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range tries {
					if ok, _ := l.Allow(context.Background(), "hot"); ok {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return admitted.Load()
	}
	if got := hammer(); got != burst {
		t.Fatalf("frozen clock: admitted %d of %d, want exactly %d", got, goroutines*tries, burst)
	}
	c.advance(time.Second) // 10 tokens at 10/s
	if got := hammer(); got != 10 {
		t.Fatalf("after 1s at 10/s: admitted %d, want exactly 10", got)
	}
}

// TestLocalAllocs: the hot path allocates nothing for a known key.
func TestLocalAllocs(t *testing.T) {
	l, c := newLocal(t, Settings{RPS: 1e6, Burst: 10})
	ctx := context.Background()
	l.Allow(ctx, "10.1.2.3")
	got := testing.AllocsPerRun(1000, func() {
		c.advance(time.Microsecond)
		l.Allow(ctx, "10.1.2.3")
	})
	if got != 0 {
		t.Errorf("Allow on a known key: %v allocs, want 0", got)
	}
}

// TestLocalMemoryBound floods a limiter with 1M distinct keys (250k under
// -race, where 1M takes 20s): the table never holds more than its cap. On
// a frozen clock every key holds state, so room comes from early
// evictions; when buckets refill between keys, every eviction is exact.
func TestLocalMemoryBound(t *testing.T) {
	t.Parallel()
	const maxKeys = 10_000
	keys := 1_000_000
	if raceDetector {
		keys /= 4
	}
	tests := []struct {
		name      string
		step      time.Duration // clock advance per request
		wantEarly bool
	}{
		{name: "frozen clock", step: 0, wantEarly: true},
		// 1000/s, burst 1: a bucket is full again 1ms after its one
		// request, long before 10k newer keys arrive.
		{name: "buckets refill", step: time.Microsecond, wantEarly: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, c := newLocal(t, Settings{RPS: 1000, Burst: 1}, WithMaxKeys(maxKeys))
			ctx := context.Background()
			buf := make([]byte, 0, 16)
			for i := range keys {
				c.advance(tt.step)
				buf = strconv.AppendInt(buf[:0], int64(i), 10)
				if ok, _ := l.Allow(ctx, string(buf)); !ok {
					t.Fatalf("key %d: first request denied", i)
				}
				if i%50_000 == 0 {
					if n := l.Stats().Keys; n > maxKeys {
						t.Fatalf("after %d keys: %d tracked, want <= %d", i+1, n, maxKeys)
					}
				}
			}
			st := l.Stats()
			if st.Keys > maxKeys {
				t.Errorf("Stats().Keys = %d, want <= %d", st.Keys, maxKeys)
			}
			// A flood of stateful keys keeps every shard at least 7/8 full.
			if low := len(l.table.shards) * (l.table.perShard * 7 / 8); tt.wantEarly && st.Keys < low {
				t.Errorf("Stats().Keys = %d, want >= %d: evicted more than needed", st.Keys, low)
			}
			if got := uint64(st.Keys) + st.Evicted + st.EvictedEarly; got != uint64(keys) {
				t.Errorf("tracked %d + evicted %d + early %d = %d, want %d", st.Keys, st.Evicted, st.EvictedEarly, got, keys)
			}
			if (st.EvictedEarly > 0) != tt.wantEarly {
				t.Errorf("EvictedEarly = %d, want early evictions: %v", st.EvictedEarly, tt.wantEarly)
			}
		})
	}
}

// event is one admitted request (evicted false) or one early eviction of
// a key, in the order they happened.
type event struct {
	at      int64
	evicted bool
}

// TestLocalEvictionProperty drives random traffic over more keys than the
// table holds and checks GCRA's bound for every key and every window of
// its admitted requests: n requests admitted from t1 to tn satisfy
// n <= (e+1)*Burst + floor((tn-t1)/T), where e counts the key's early
// evictions in between (e is 0 when every eviction was exact). So eviction
// is exact when buckets are full, and an early one hands back at most one
// burst.
func TestLocalEvictionProperty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		maxKeys   int
		keys      int
		hot       int // keys 0..hot-1 get most requests
		maxStep   time.Duration
		wantEarly bool
	}{
		// Fewer keys hold state at once than fit: only exact evictions.
		{name: "exact", maxKeys: 64, keys: 2000, hot: 4, maxStep: 20 * time.Millisecond, wantEarly: false},
		// Far more active keys than fit: early evictions of hot keys too.
		{name: "flood", maxKeys: 16, keys: 400, hot: 4, maxStep: time.Millisecond, wantEarly: true},
	}
	for _, tt := range tests {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("%s/seed%d", tt.name, seed), func(t *testing.T) {
				t.Parallel()
				s := Settings{RPS: 20, Burst: 3}
				const interval = int64(time.Second / 20)
				l, c := newLocal(t, s, WithMaxKeys(tt.maxKeys))
				history := map[string][]event{}
				l.table.onEvict = func(k string, early bool) {
					if early {
						history[k] = append(history[k], event{at: c.now(), evicted: true})
					}
				}
				rng := rand.New(rand.NewPCG(seed, 42))
				for range 30_000 {
					c.advance(time.Duration(rng.Int64N(int64(tt.maxStep))))
					k := rng.IntN(tt.keys)
					if rng.IntN(2) == 0 {
						k = rng.IntN(tt.hot)
					}
					key := strconv.Itoa(k)
					if ok, _ := l.Allow(context.Background(), key); ok {
						history[key] = append(history[key], event{at: c.now()})
					}
				}
				st := l.Stats()
				if (st.EvictedEarly > 0) != tt.wantEarly {
					t.Fatalf("EvictedEarly = %d, want early evictions: %v", st.EvictedEarly, tt.wantEarly)
				}
				if !tt.wantEarly && st.Evicted == 0 {
					t.Fatal("no exact eviction happened; the test does not exercise eviction")
				}
				for key, evs := range history {
					checkWindows(t, key, evs, s.Burst, interval)
				}
			})
		}
	}
}

// checkWindows checks the GCRA bound on every window of evs.
func checkWindows(t *testing.T, key string, evs []event, burst int, interval int64) {
	t.Helper()
	for i := range evs {
		if evs[i].evicted {
			continue
		}
		n, e := 0, 0
		for j := i; j < len(evs); j++ {
			if evs[j].evicted {
				e++
				continue
			}
			n++
			limit := (e+1)*burst + int((evs[j].at-evs[i].at)/interval)
			if n > limit {
				t.Fatalf("key %s: %d admitted in [%d, %d] with %d early evictions, want <= %d",
					key, n, evs[i].at, evs[j].at, e, limit)
			}
		}
	}
}

// TestLocalEvictionRace: concurrent requests on a frozen clock while keys
// are being evicted admit per key no more than one burst per life of its
// bucket, so a request racing an eviction never spends tokens of a bucket
// that is no longer in the table. Burst 1 keeps the bound tight.
func TestLocalEvictionRace(t *testing.T) {
	t.Parallel()
	const burst, keys, goroutines, tries = 1, 16, 8, 4000
	l, _ := newLocal(t, Settings{RPS: 1, Burst: burst}, WithMaxKeys(8))
	var mu sync.Mutex
	lives := make([]int, keys) // buckets each key had: 1 + early evictions
	for i := range lives {
		lives[i] = 1
	}
	l.table.onEvict = func(k string, early bool) {
		i, _ := strconv.Atoi(k)
		mu.Lock()
		lives[i]++
		mu.Unlock()
	}
	admitted := make([]atomic.Int64, keys)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range tries {
				k := rng.IntN(keys)
				if ok, _ := l.Allow(context.Background(), strconv.Itoa(k)); ok {
					admitted[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		if got, limit := admitted[k].Load(), int64(lives[k]*burst); got > limit {
			t.Errorf("key %d: admitted %d over %d bucket lives, want <= %d", k, got, lives[k], limit)
		}
	}
	if l.Stats().EvictedEarly == 0 {
		t.Error("no early eviction happened; the test does not exercise the race")
	}
}

// TestLocalEvictedWhileInFlight replays the race deterministically: a
// request has found key a's bucket when another request evicts it. The
// first must not spend the evicted bucket's last token and then get a
// fresh bucket too; it must land in a's new bucket.
func TestLocalEvictedWhileInFlight(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t, Settings{RPS: 1, Burst: 2}, WithMaxKeys(1))
	ctx := context.Background()
	if ok, _ := l.Allow(ctx, "a"); !ok {
		t.Fatal("first request denied")
	}
	// a has one token left. Evict it between lookup and take.
	fired := false
	l.table.afterLookup = func(k string) {
		if k == "a" && !fired {
			fired = true
			l.Allow(ctx, "b") // the table holds one key: b evicts a
		}
	}
	var got []bool
	for range 3 {
		ok, _ := l.Allow(ctx, "a")
		got = append(got, ok)
	}
	// The in-flight request starts a's second bucket (2 tokens): one more
	// admit, then none. Spending the old bucket's token would admit three.
	if want := []bool{true, true, false}; !slices.Equal(got, want) {
		t.Errorf("requests on a after its eviction = %v, want %v", got, want)
	}
	if st := l.Stats(); st.EvictedEarly != 2 { // a by b, then b by a
		t.Errorf("EvictedEarly = %d, want 2", st.EvictedEarly)
	}
}

// TestSelectSmallest compares quickselect with a sort on random inputs,
// many ties included (a frozen clock makes every TAT equal).
func TestSelectSmallest(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + rng.IntN(200)
		spread := int64(1 + rng.IntN(10))
		if rng.IntN(3) == 0 {
			spread = 1000_000
		}
		h := make([]held, n)
		for i := range h {
			h[i].tat = rng.Int64N(spread)
		}
		k := 1 + rng.IntN(n)
		sorted := make([]int64, n)
		for i := range h {
			sorted[i] = h[i].tat
		}
		slices.Sort(sorted)
		selectSmallest(h, k)
		got := make([]int64, k)
		for i := range got {
			got[i] = h[i].tat
		}
		slices.Sort(got)
		if !slices.Equal(got, sorted[:k]) {
			t.Fatalf("selectSmallest(n=%d, k=%d) kept %v, want %v", n, k, got, sorted[:k])
		}
	}
}
