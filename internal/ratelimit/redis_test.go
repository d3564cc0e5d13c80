package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// newRedis builds a Redis for addr, closed at cleanup.
func newRedis(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	r, err := NewRedis(o)
	if err != nil {
		t.Fatalf("NewRedis(%+v) = %v", o, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// runRedis runs r.Run until the test ends.
func runRedis(t testing.TB, r *Redis) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

func newGlobal(t testing.TB, r *Redis, name string, s Settings) *Limiter {
	t.Helper()
	s.Scope = Global
	l, err := New(s, WithRedis(r, name))
	if err != nil {
		t.Fatalf("New(%+v) = %v", s, err)
	}
	return l
}

// rawClient is a plain client to look at what the limiters wrote.
func rawClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// generous is a call timeout that a loaded CI machine under -race never
// reaches against a healthy loopback Redis; tests that expect no fallback
// use it, so they check the limit and not the machine's speed.
const generous = 2 * time.Second

// TestGlobalSharedLimit: two proxies (two Redis clients, two limiters with
// the same name) hammering one key together admit exactly the burst.
func TestGlobalSharedLimit(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	const burst, goroutines, tries = 25, 4, 100
	s := Settings{RPS: 0.001, Burst: burst} // one token per 1000s: no refill during the test
	proxies := []*Limiter{
		newGlobal(t, newRedis(t, RedisOptions{Addr: srv.addr, Timeout: generous}), "policy-a", s),
		newGlobal(t, newRedis(t, RedisOptions{Addr: srv.addr, Timeout: generous}), "policy-a", s),
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range goroutines {
		l := proxies[i%len(proxies)]
		wg.Go(func() {
			for range tries {
				ok, retry := l.Allow(context.Background(), "client-1")
				if ok {
					admitted.Add(1)
				} else if retry <= 0 || retry > 1000*time.Second {
					t.Errorf("denied with retry-after %v, want in (0, 1000s]", retry)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != burst {
		t.Errorf("two proxies admitted %d of %d together, want exactly %d", got, goroutines*tries, burst)
	}
	for i, l := range proxies {
		if st := l.Stats(); st.Fallbacks != 0 || st.Keys != 0 {
			t.Errorf("proxy %d: Stats() = %+v, want no fallback and no local key", i, st)
		}
	}
}

// TestGlobalRate: the shared limit refills at the configured rate.
func TestGlobalRate(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	const rps, burst = 50, 10
	s := Settings{RPS: rps, Burst: burst}
	a := newGlobal(t, newRedis(t, RedisOptions{Addr: srv.addr, Timeout: generous}), "p", s)
	b := newGlobal(t, newRedis(t, RedisOptions{Addr: srv.addr, Timeout: generous}), "p", s)
	var admitted atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for _, l := range []*Limiter{a, b} {
		wg.Go(func() {
			for time.Since(start) < time.Second {
				if ok, _ := l.Allow(context.Background(), "k"); ok {
					admitted.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	// The first request may come a little after start and the last a
	// little before the end: allow two tokens of slack each way.
	want := burst + rps*elapsed
	if got := float64(admitted.Load()); got < want-rps*0.05-2 || got > want+2 {
		t.Errorf("admitted %v in %.2fs at %d/s burst %d, want about %.0f", got, elapsed, rps, burst, want)
	}
}

// TestGlobalRetryAfterAndKeys checks the denied wait, that names and keys
// separate buckets, and the keys the script leaves: prefixed, with a TTL.
func TestGlobalRetryAfterAndKeys(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	r := newRedis(t, RedisOptions{Addr: srv.addr, Timeout: generous, Prefix: "test:"})
	ctx := context.Background()
	s := Settings{RPS: 5, Burst: 1}
	l := newGlobal(t, r, "pol", s)
	other := newGlobal(t, r, "other", s)
	if ok, _ := l.Allow(ctx, "k"); !ok {
		t.Fatal("first request denied")
	}
	ok, retry := l.Allow(ctx, "k")
	if ok || retry <= 150*time.Millisecond || retry > 200*time.Millisecond {
		t.Errorf("second request: Allow = %v, %v, want false, about 200ms", ok, retry)
	}
	for _, c := range []struct {
		l   *Limiter
		key string
	}{{l, "k2"}, {other, "k"}} {
		if ok, _ := c.l.Allow(ctx, c.key); !ok {
			t.Errorf("Allow(%q) on a fresh bucket denied", c.key)
		}
	}
	raw := rawClient(t, srv.addr)
	for _, key := range []string{"test:pol:k", "test:pol:k2", "test:other:k"} {
		ttl, err := raw.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > 200*time.Millisecond {
			t.Errorf("PTTL(%q) = %v, %v, want in (0, 200ms]", key, ttl, err)
		}
	}
	time.Sleep(retry)
	if ok, _ := l.Allow(ctx, "k"); !ok {
		t.Error("request after retry-after denied")
	}
}

// TestGlobalScriptFlushed: after SCRIPT FLUSH (as after a Redis restart)
// the next call loads the script again and is not a fallback.
func TestGlobalScriptFlushed(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	l := newGlobal(t, newRedis(t, RedisOptions{Addr: srv.addr, Timeout: generous}), "p", Settings{RPS: 0.001, Burst: 2})
	ctx := context.Background()
	l.Allow(ctx, "k")
	if err := rawClient(t, srv.addr).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.Allow(ctx, "k"); !ok {
		t.Error("second of burst 2 denied after SCRIPT FLUSH")
	}
	if ok, _ := l.Allow(ctx, "k"); ok {
		t.Error("third of burst 2 admitted: the count was lost")
	}
	if st := l.Stats(); st.Fallbacks != 0 {
		t.Errorf("Fallbacks = %d, want 0", st.Fallbacks)
	}
}

// TestGlobalOutage stops Redis mid-test. The first request after the stop
// fails fast and falls back; from then on Redis is skipped (no call, no
// error, no latency) and the local table enforces the limit on its own.
// When Redis is back, Run's probe restores global counting.
func TestGlobalOutage(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	const probeEvery = 100 * time.Millisecond
	var changes []bool
	var mu sync.Mutex
	r := newRedis(t, RedisOptions{Addr: srv.addr, Timeout: 50 * time.Millisecond, ProbeInterval: probeEvery,
		OnHealthChange: func(healthy bool, err error) {
			mu.Lock()
			changes = append(changes, healthy)
			mu.Unlock()
			if !healthy && err == nil {
				t.Error("OnHealthChange(false, nil): want the error")
			}
		}})
	runRedis(t, r)
	const burst = 5
	l := newGlobal(t, r, "p", Settings{RPS: 0.001, Burst: burst})
	ctx := context.Background()
	if ok, _ := l.Allow(ctx, "k"); !ok || !r.Healthy() {
		t.Fatalf("before the outage: Allow = %v, Healthy = %v, want true, true", ok, r.Healthy())
	}

	srv.stop()
	start := time.Now()
	ok, _ := l.Allow(ctx, "k")
	if d := time.Since(start); d > 50*time.Millisecond+200*time.Millisecond {
		t.Errorf("first request after the stop took %v, want about the 50ms timeout at most", d)
	}
	if !ok {
		t.Error("first request after the stop denied: want a fresh local bucket")
	}
	if r.Healthy() {
		t.Fatal("Healthy() = true after a failed call")
	}
	errs := r.Stats().Errors
	// Fully local now: exactly the rest of a fresh burst, without touching
	// Redis (no new error) and without waiting.
	admitted := 1
	start = time.Now()
	for range 1000 {
		if ok, _ := l.Allow(ctx, "k"); ok {
			admitted++
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("1000 requests during the outage took %v, want no Redis wait", d)
	}
	if admitted != burst {
		t.Errorf("during the outage: admitted %d, want the local burst %d", admitted, burst)
	}
	if st := r.Stats(); st.Errors != errs || st.Outages != 1 {
		t.Errorf("during the outage: Stats() = %+v, want Errors %d (no call) and 1 outage", st, errs)
	}
	if got := l.Stats().Fallbacks; got != 1001 {
		t.Errorf("Fallbacks = %d, want 1001", got)
	}

	// Probes come at most once per interval.
	outage := time.Now()
	time.Sleep(5 * probeEvery)
	if got, limit := r.Stats().Probes, uint64(time.Since(outage)/probeEvery)+1; got == 0 || got > limit {
		t.Errorf("Probes = %d during %v, want 1..%d", got, time.Since(outage), limit)
	}
	if r.Healthy() {
		t.Fatal("Healthy() = true while Redis is down")
	}

	srv.restart() // empty: no state, no script cache
	waitFor(t, 3*time.Second, "healthy after restart", r.Healthy)
	before := l.Stats().Fallbacks
	for i := range burst {
		if ok, _ := l.Allow(ctx, "k"); !ok {
			t.Fatalf("after recovery: request %d of a fresh global burst denied", i+1)
		}
	}
	if ok, _ := l.Allow(ctx, "k"); ok {
		t.Error("after recovery: admitted past the global burst")
	}
	if got := l.Stats().Fallbacks; got != before {
		t.Errorf("after recovery: Fallbacks went %d -> %d, want global decisions", before, got)
	}
	n, err := rawClient(t, srv.addr).Exists(ctx, DefaultPrefix+"p:k").Result()
	if err != nil || n != 1 {
		t.Errorf("after recovery: EXISTS = %v, %v, want the bucket in Redis", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || changes[0] || !changes[1] {
		t.Errorf("OnHealthChange calls = %v, want [false true]", changes)
	}
}

// TestGlobalSlowRedis pauses Redis (SIGSTOP): the connection stays open
// and nothing answers. The request falls back within its timeout, later
// ones skip Redis, and after SIGCONT the probe restores it.
func TestGlobalSlowRedis(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	const timeout = 30 * time.Millisecond
	r := newRedis(t, RedisOptions{Addr: srv.addr, Timeout: timeout, ProbeInterval: 50 * time.Millisecond})
	runRedis(t, r)
	l := newGlobal(t, r, "p", Settings{RPS: 100, Burst: 100})
	ctx := context.Background()
	// Warm the connection so the stall hits a live one, not a dial.
	waitFor(t, 3*time.Second, "a global decision", func() bool {
		before := l.Stats().Fallbacks
		l.Allow(ctx, "k")
		return l.Stats().Fallbacks == before
	})

	srv.signal(syscall.SIGSTOP)
	paused := true
	defer func() {
		if paused {
			srv.signal(syscall.SIGCONT)
		}
	}()
	start := time.Now()
	ok, _ := l.Allow(ctx, "k")
	if d := time.Since(start); d < timeout || d > timeout+200*time.Millisecond {
		t.Errorf("request against a stalled Redis took %v, want about the %v timeout", d, timeout)
	}
	if !ok || r.Healthy() || l.Stats().Fallbacks == 0 {
		t.Fatalf("after the stall: Allow = %v, Healthy = %v, Stats = %+v; want a local admit and unhealthy", ok, r.Healthy(), l.Stats())
	}
	start = time.Now()
	for range 50 {
		l.Allow(ctx, "k")
	}
	if d := time.Since(start); d > timeout {
		t.Errorf("50 requests while unhealthy took %v, want no Redis wait", d)
	}

	srv.signal(syscall.SIGCONT)
	paused = false
	waitFor(t, 3*time.Second, "healthy after SIGCONT", r.Healthy)
	before := l.Stats().Fallbacks
	l.Allow(ctx, "k")
	if got := l.Stats().Fallbacks; got != before {
		t.Errorf("after SIGCONT: Fallbacks %d -> %d, want a global decision", before, got)
	}
}

// TestGlobalCallerGone: a request whose own context is done falls back
// without blaming Redis.
func TestGlobalCallerGone(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	r := newRedis(t, RedisOptions{Addr: srv.addr, Timeout: generous})
	l := newGlobal(t, r, "p", Settings{RPS: 1, Burst: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, _ := l.Allow(ctx, "k"); !ok {
		t.Error("Allow with a done context denied a fresh key")
	}
	if !r.Healthy() || r.Stats().Errors != 0 || l.Stats().Fallbacks != 1 {
		t.Errorf("Healthy = %v, Redis %+v, Limiter %+v; want healthy, no error, one fallback", r.Healthy(), r.Stats(), l.Stats())
	}
}

// TestGlobalRedisDownAtStart: nothing listens; the first call fails at
// once (no dial retries) and the limiter works locally.
func TestGlobalRedisDownAtStart(t *testing.T) {
	t.Parallel()
	r := newRedis(t, RedisOptions{Addr: "127.0.0.1:" + itoa(freePort(t))})
	l := newGlobal(t, r, "p", Settings{RPS: 1, Burst: 2})
	start := time.Now()
	got := []bool{}
	for range 3 {
		ok, _ := l.Allow(context.Background(), "k")
		got = append(got, ok)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("3 requests with Redis down took %v, want fast failure", d)
	}
	if got[0] != true || got[1] != true || got[2] != false {
		t.Errorf("admits = %v, want [true true false] from the local bucket", got)
	}
	if r.Healthy() || r.Stats().Errors != 1 {
		t.Errorf("Healthy = %v, Stats = %+v, want unhealthy after one error", r.Healthy(), r.Stats())
	}
}

func TestRedisLifecycle(t *testing.T) {
	t.Parallel()
	if _, err := NewRedis(RedisOptions{}); err == nil {
		t.Error("NewRedis without an address: want an error")
	}
	r := newRedis(t, RedisOptions{Addr: "127.0.0.1:1"})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	waitFor(t, time.Second, "Run started", r.running.Load)
	if err := r.Run(context.Background()); !errors.Is(err, errRunTwice) {
		t.Errorf("second Run = %v, want %v", err, errRunTwice)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Close = %v, want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	// Closed: limiters still answer, locally.
	l := newGlobal(t, r, "p", Settings{RPS: 1, Burst: 1})
	if ok, _ := l.Allow(context.Background(), "k"); !ok || r.Healthy() {
		t.Errorf("after Close: Allow = %v, Healthy = %v, want a local admit, unhealthy", ok, r.Healthy())
	}
}

// TestNewRedisStartsNothing: constructors start no goroutine (the caller
// owns Run). Not parallel: goleak compares with the goroutines before.
func TestNewRedisStartsNothing(t *testing.T) {
	before := goleak.IgnoreCurrent()
	r, err := NewRedis(RedisOptions{Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Settings{RPS: 1, Scope: Global}, WithRedis(r, "p")); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
