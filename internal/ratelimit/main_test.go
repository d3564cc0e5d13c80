package ratelimit

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind. It
// also silences go-redis's process-wide logger, which would print a line
// for every refused dial the outage tests provoke on purpose.
func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// fakeClock is a hand-driven monotonic clock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// newLocal builds a Local limiter on a fake clock.
func newLocal(t testing.TB, s Settings, opts ...Option) (*Limiter, *fakeClock) {
	t.Helper()
	c := &fakeClock{}
	l, err := New(s, append([]Option{WithClock(c.now)}, opts...)...)
	if err != nil {
		t.Fatalf("New(%+v) = %v", s, err)
	}
	return l, c
}
