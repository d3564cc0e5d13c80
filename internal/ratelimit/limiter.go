package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Scope says where a limit is counted. The zero value means Local.
type Scope int

// Scopes.
const (
	// Local counts on this proxy alone.
	Local Scope = iota + 1
	// Global counts across every proxy sharing one Redis.
	Global
)

// String returns "local" or "global", the config's spelling.
func (s Scope) String() string {
	switch s {
	case 0, Local:
		return "local"
	case Global:
		return "global"
	}
	return fmt.Sprintf("Scope(%d)", int(s))
}

// Settings is one rate limit, as in a policy's rate_limit block.
type Settings struct {
	// RPS is the refill rate in requests per second, > 0; fractions are
	// allowed (0.5 is one request every 2s). Required.
	RPS float64
	// Burst is the bucket size: how many requests an idle key may send at
	// once. Zero means RPS rounded up, at least 1 (the config's default).
	Burst int
	// Scope is Local or Global; zero means Local. Global needs WithRedis.
	Scope Scope
}

// DefaultMaxKeys is how many keys a Limiter tracks when WithMaxKeys is not
// given.
const DefaultMaxKeys = 100_000

// maxKeyBytes bounds the memory a single key can pin. A header:NAME key
// can be as long as the header (tens of KiB): capping the number of keys
// alone would not bound the bytes.
const maxKeyBytes = 256

// Errors New returns, for callers that want to tell them apart.
var (
	// ErrSettings reports settings that cannot make a limiter.
	ErrSettings = errors.New("invalid rate limit settings")
	// ErrNoRedis reports a Global scope without WithRedis.
	ErrNoRedis = errors.New("global rate limit needs a Redis")
)

// Option changes how New builds a Limiter.
type Option func(*options)

type options struct {
	now     func() int64
	maxKeys int
	redis   *Redis
	name    string
}

// WithClock makes the Limiter read time from now, which must return
// monotonic nanoseconds (any origin) and never go backwards; it is called
// once per Allow, concurrently. The default is the process's monotonic
// clock. For tests.
func WithClock(now func() int64) Option { return func(o *options) { o.now = now } }

// WithMaxKeys caps the number of keys the Limiter's local table tracks;
// n < 1 means DefaultMaxKeys. The cap is split evenly over up to 64
// shards of at least 256 keys, so the effective cap is n rounded down to a
// multiple of the shard count (never above n).
func WithMaxKeys(n int) Option { return func(o *options) { o.maxKeys = n } }

// WithRedis makes a Global limiter count in r, under the Redis keys
// "<prefix><name>:<key>". name must be unique among the limiters sharing r
// and stable across restarts and config applies (a policy id, or policy id
// and route id when each route gets its own limit), so every proxy of the
// fleet counts the same limit in the same keys. A Local limiter ignores
// this option.
func WithRedis(r *Redis, name string) Option {
	return func(o *options) { o.redis, o.name = r, name }
}

// Limiter decides whether a request may pass under one rate limit, keeping
// a bucket per key. Build it with New; the zero value is not usable. All
// methods are safe for concurrent use. A Limiter holds no goroutine and
// needs no Close; a Global one uses a Redis owned by the caller.
type Limiter struct {
	settings Settings
	now      func() int64
	table    *table

	// Global scope only.
	redis     *Redis
	keyPrefix string // "<prefix><name>:"
	args      []any  // script arguments, built once: interval µs, burst
	fallbacks atomic.Uint64
}

// Stats are a Limiter's counters for metrics. Keys is a gauge; the rest
// count since New.
type Stats struct {
	// Keys is the number of keys in the local table now.
	Keys int
	// Evicted counts keys dropped from the local table with a full bucket,
	// which loses nothing.
	Evicted uint64
	// EvictedEarly counts keys dropped while still holding state, under a
	// flood of distinct keys; each may have got up to Burst extra requests.
	EvictedEarly uint64
	// Fallbacks counts Global decisions made by the local table because
	// Redis was unhealthy, failed or was too slow.
	Fallbacks uint64
}

// New returns a Limiter for s. It fails with ErrSettings when RPS is not a
// positive finite number, Burst is negative, the scope is unknown, or the
// rate is so low that Burst intervals overflow the clock; and with
// ErrNoRedis for a Global scope without WithRedis. New starts nothing.
func New(s Settings, opts ...Option) (*Limiter, error) {
	o := options{maxKeys: DefaultMaxKeys}
	for _, opt := range opts {
		opt(&o)
	}
	s, err := normalize(s)
	if err != nil {
		return nil, err
	}
	// 1e9/rps nanoseconds, rounded; at least 1ns (a rate above 1e9/s is
	// as good as unlimited). Checked before the conversion, which would
	// overflow for tiny rates.
	if math.Round(1e9/s.RPS)*float64(s.Burst+1) >= 1<<62 {
		return nil, fmt.Errorf("%w: %g requests per second with burst %d spans more than a century", ErrSettings, s.RPS, s.Burst)
	}
	interval := max(int64(math.Round(1e9/s.RPS)), 1)
	now := o.now
	if now == nil {
		now = monotonic()
	}
	l := &Limiter{
		settings: s,
		now:      now,
		table:    newTable(interval, s.Burst, o.maxKeys),
	}
	if s.Scope != Global {
		return l, nil
	}
	if o.redis == nil {
		return nil, ErrNoRedis
	}
	// The script works in integer microseconds so that epoch times stay
	// exact in Lua's doubles (components.md pitfall 14).
	intervalUS := max(int64(math.Round(1e6/s.RPS)), 1)
	if float64(intervalUS)*float64(s.Burst+1) >= 1<<52 {
		// Epoch µs (~2^51) plus this must stay exact in a double.
		return nil, fmt.Errorf("%w: %g requests per second with burst %d is too slow for Redis", ErrSettings, s.RPS, s.Burst)
	}
	l.redis = o.redis
	l.keyPrefix = o.redis.prefix + o.name + ":"
	l.args = []any{intervalUS, s.Burst}
	return l, nil
}

// normalize checks s and fills its defaults.
func normalize(s Settings) (Settings, error) {
	if !(s.RPS > 0) || math.IsInf(s.RPS, 1) {
		return s, fmt.Errorf("%w: requests per second %v, want > 0", ErrSettings, s.RPS)
	}
	if s.Burst < 0 {
		return s, fmt.Errorf("%w: burst %d, want >= 0", ErrSettings, s.Burst)
	}
	if s.Burst == 0 {
		s.Burst = int(min(math.Ceil(s.RPS), math.MaxInt32))
	}
	switch s.Scope {
	case 0:
		s.Scope = Local
	case Local, Global:
	default:
		return s, fmt.Errorf("%w: unknown scope %d", ErrSettings, int(s.Scope))
	}
	return s, nil
}

// Settings returns the limiter's settings with defaults filled in.
func (l *Limiter) Settings() Settings { return l.settings }

// Allow takes one token from key's bucket. When it returns false,
// retryAfter (> 0) is the time until a token is back; the caller rounds it
// up to whole seconds for Retry-After. Every key, "" included, is a bucket
// of its own (see KeyFunc for how requests map to keys).
//
// A Local limiter never blocks and never allocates for a key it already
// tracks. A Global one makes one Redis round trip bounded by the Redis's
// Timeout, or none while Redis is unhealthy; whenever Redis does not
// answer, the local table decides. ctx is the request's: when it is done
// Redis is not blamed for the failed call.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration) {
	if len(key) > maxKeyBytes {
		key = digest(key)
	}
	if l.redis == nil {
		return l.table.allow(key, l.now())
	}
	ok, retryAfter, err := l.redis.take(ctx, l.keyPrefix+key, l.args)
	if err == nil {
		return ok, retryAfter
	}
	l.fallbacks.Add(1)
	return l.table.allow(key, l.now())
}

// Stats returns the limiter's counters. It takes each shard's lock
// briefly, so call it from a metrics scrape, not per request.
func (l *Limiter) Stats() Stats {
	return Stats{
		Keys:         l.table.len(),
		Evicted:      l.table.evicted.Load(),
		EvictedEarly: l.table.evictedEarly.Load(),
		Fallbacks:    l.fallbacks.Load(),
	}
}

// digest stands for a key too long to keep. The NUL prefix keeps it apart
// from every header value (HTTP forbids control characters in them).
func digest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "\x00sha256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// monotonic returns a clock reading the monotonic nanoseconds elapsed
// since the call.
func monotonic() func() int64 {
	start := time.Now()
	return func() int64 { return int64(time.Since(start)) }
}
