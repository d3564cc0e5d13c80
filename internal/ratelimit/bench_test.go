package ratelimit

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAllowLocal: one goroutine, one known key, the real clock.
func BenchmarkAllowLocal(b *testing.B) {
	l, err := New(Settings{RPS: 1e9, Burst: 1000})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(ctx, "10.1.2.3")
	}
}

// BenchmarkAllowLocalParallel: every core, 10k known keys.
func BenchmarkAllowLocalParallel(b *testing.B) {
	l, err := New(Settings{RPS: 1e9, Burst: 1000})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
		l.Allow(context.Background(), keys[i])
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(7919))
		for pb.Next() {
			l.Allow(context.Background(), keys[i%len(keys)])
			i++
		}
	})
}

// BenchmarkAllowLocalFlood: every request a new key, the table full (100k
// keys, each holding state), so every insert pays its share of eviction.
func BenchmarkAllowLocalFlood(b *testing.B) {
	l, err := New(Settings{RPS: 1e-3, Burst: 10})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	keys := make([]string, 1<<20)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	for i := range DefaultMaxKeys {
		l.Allow(ctx, keys[i])
	}
	b.ReportAllocs()
	i := DefaultMaxKeys
	for b.Loop() {
		l.Allow(ctx, keys[i%len(keys)])
		i++
	}
}

// BenchmarkAllowGlobal: one round trip to a loopback redis-server per
// request, from one goroutine (latency) and from many (throughput; the
// server shares the machine's cores with the benchmark).
func BenchmarkAllowGlobal(b *testing.B) {
	srv := startRedis(b)
	r := newRedis(b, RedisOptions{Addr: srv.addr, Timeout: time.Second})
	l := newGlobal(b, r, "bench", Settings{RPS: 1e6, Burst: 1000})
	ctx := context.Background()
	l.Allow(ctx, "10.1.2.3") // dial and load the script
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(ctx, "10.1.2.3")
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow(ctx, "10.1.2.3")
			}
		})
	})
	if st := l.Stats(); st.Fallbacks != 0 {
		b.Errorf("Fallbacks = %d, want 0: the numbers above include local decisions", st.Fallbacks)
	}
}

// BenchmarkKeyFunc: the header key, present and falling back.
func BenchmarkKeyFunc(b *testing.B) {
	kf, err := ParseKey("header:X-User-Id")
	if err != nil {
		b.Fatal(err)
	}
	with := httptest.NewRequest("GET", "/", nil)
	with.Header.Set("X-User-Id", "user-42")
	without := httptest.NewRequest("GET", "/", nil)
	b.Run("present", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			kf(with, "10.1.2.3", "r")
		}
	})
	b.Run("missing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			kf(without, "10.1.2.3", "r")
		}
	})
}
