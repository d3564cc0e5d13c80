package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis defaults.
const (
	DefaultPrefix        = "keel:rl:"
	DefaultTimeout       = 5 * time.Millisecond
	DefaultProbeInterval = time.Second
)

// probeTimeout bounds the background probe's reconnect and script load,
// which may need a new connection and so more than one round trip.
const probeTimeout = 500 * time.Millisecond

// gcra is the script every global Allow runs: GCRA on one key, with the
// time from the server (so proxies with skewed clocks agree) and every
// value in integer microseconds (epoch µs stay exact in Lua's doubles).
// The TAT is written with %d because the default number format would drop
// digits, and it expires once the bucket is full again, when it carries no
// state. Checked against Redis 7.0 (components.md section 5).
//
// KEYS[1] bucket; ARGV[1] emission interval µs (>= 1); ARGV[2] burst (>= 1).
// Returns {1, 0} when admitted, {0, retry_after_us} when not.
const gcra = `
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0}
`

// RedisOptions configure a Redis. Zero fields get the defaults named on
// each.
type RedisOptions struct {
	// Addr is the server's host:port (the config's redis.address).
	// Required.
	Addr string
	// Prefix starts every key the limiters write. Empty means
	// DefaultPrefix, "keel:rl:".
	Prefix string
	// Timeout bounds each request's call, connection wait included. When
	// it passes, the request is decided locally and Redis is marked
	// unhealthy. Zero means DefaultTimeout, 5ms.
	Timeout time.Duration
	// ProbeInterval is how often Run checks an unhealthy Redis. Zero
	// means DefaultProbeInterval, 1s.
	ProbeInterval time.Duration
	// PoolSize caps concurrent calls (one connection each). A request
	// that finds every connection busy for Timeout falls back like any
	// other slow call. Zero means go-redis's default, 10 per CPU.
	PoolSize int
	// OnHealthChange, when set, is called on every change of Healthy,
	// with the error that made Redis unhealthy (nil on recovery). It runs
	// on the request or probe goroutine that saw the change, so it must
	// be quick; use it to log.
	OnHealthChange func(healthy bool, err error)
}

// Redis is the shared counter store of Global limiters: one per Redis
// server, shared by every Limiter built WithRedis. It owns its client
// connections, tracks whether the server answers in time, and while it
// does not, tells limiters to decide locally. Build it with NewRedis; the
// zero value is not usable.
//
// NewRedis starts nothing. The caller owns the background probe: it must
// run Run in a goroutine for as long as the limiters are in use, because
// only Run makes an unhealthy Redis healthy again. Close releases the
// connections and stops Run. All methods are safe for concurrent use.
type Redis struct {
	client        *redis.Client
	script        *redis.Script
	prefix        string
	timeout       time.Duration
	probeInterval time.Duration
	onChange      func(bool, error)

	healthy atomic.Bool
	down    chan struct{} // wakes Run when healthy turns false; capacity 1
	running atomic.Bool
	closed  chan struct{}
	close   sync.Once

	errors, fallbacks, outages, probes atomic.Uint64
}

// RedisStats are a Redis's counters for metrics, counted since NewRedis.
type RedisStats struct {
	// Errors counts failed or timed-out calls of requests (not probes).
	Errors uint64
	// Fallbacks counts requests decided locally, because Redis was
	// unhealthy or their own call failed.
	Fallbacks uint64
	// Outages counts changes from healthy to unhealthy.
	Outages uint64
	// Probes counts Run's checks of an unhealthy Redis.
	Probes uint64
}

var errRunTwice = errors.New("ratelimit: Redis.Run called twice")

// NewRedis returns a Redis for o, initially healthy. It makes no
// connection and starts no goroutine: the first request dials.
func NewRedis(o RedisOptions) (*Redis, error) {
	if o.Addr == "" {
		return nil, errors.New("ratelimit: redis address is empty")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	// go-redis's defaults are wrong for a hot path that must fail fast
	// (components.md section 5): without ContextTimeoutEnabled the call
	// ignores our deadline, and with retries a refused connection costs
	// 1.7s. The socket timeouts only bound the probe; requests are bounded
	// by their context. Identity and maintenance notifications would send
	// commands Redis 7.0 rejects on every new connection.
	client := redis.NewClient(&redis.Options{
		Addr:                     o.Addr,
		ContextTimeoutEnabled:    true,
		MaxRetries:               -1,
		DialerRetries:            1,
		DialTimeout:              max(probeTimeout, o.Timeout),
		ReadTimeout:              max(probeTimeout, o.Timeout),
		WriteTimeout:             max(probeTimeout, o.Timeout),
		PoolTimeout:              max(probeTimeout, o.Timeout),
		PoolSize:                 o.PoolSize,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	r := &Redis{
		client:        client,
		script:        redis.NewScript(gcra),
		prefix:        o.Prefix,
		timeout:       o.Timeout,
		probeInterval: o.ProbeInterval,
		onChange:      o.OnHealthChange,
		down:          make(chan struct{}, 1),
		closed:        make(chan struct{}),
	}
	r.healthy.Store(true)
	return r, nil
}

// Healthy reports whether requests currently go to Redis. It is false from
// a failed or slow call until Run's next successful probe.
func (r *Redis) Healthy() bool { return r.healthy.Load() }

// Stats returns the counters.
func (r *Redis) Stats() RedisStats {
	return RedisStats{
		Errors:    r.errors.Load(),
		Fallbacks: r.fallbacks.Load(),
		Outages:   r.outages.Load(),
		Probes:    r.probes.Load(),
	}
}

// take runs the script for one request. A non-nil error means the caller
// must decide locally: Redis is unhealthy, or the call failed.
func (r *Redis) take(ctx context.Context, key string, args []any) (bool, time.Duration, error) {
	if !r.healthy.Load() {
		r.fallbacks.Add(1)
		return false, 0, errUnhealthy
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	res, err := r.script.Run(cctx, r.client, []string{key}, args...).Int64Slice()
	cancel()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("ratelimit: script returned %d values, want 2", len(res))
	}
	if err != nil {
		r.fallbacks.Add(1)
		// A request that ended (client gone, overall timeout) says
		// nothing about Redis.
		if ctx.Err() == nil {
			r.errors.Add(1)
			r.markDown(err)
		}
		return false, 0, err
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

var errUnhealthy = errors.New("ratelimit: redis unhealthy")

// markDown makes Redis unhealthy and wakes Run to probe it.
func (r *Redis) markDown(err error) {
	if !r.healthy.CompareAndSwap(true, false) {
		return
	}
	r.outages.Add(1)
	select {
	case r.down <- struct{}{}:
	default: // Run has a wake-up pending already
	}
	if r.onChange != nil {
		r.onChange(false, err)
	}
}

// Run probes Redis while it is unhealthy, at most once per ProbeInterval,
// and makes it healthy again once it answers: the script loads (so the
// first request after an outage needs one round trip, even when Redis
// restarted with an empty script cache) and a PING returns within Timeout
// (so a Redis that is up but too slow stays out of the request path). It
// sleeps while Redis is healthy. It returns nil when ctx is done or Close
// is called. Call it once, in a goroutine the caller owns; a second
// concurrent call returns an error at once.
func (r *Redis) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errRunTwice
	}
	defer r.running.Store(false)
	timer := time.NewTimer(r.probeInterval)
	defer timer.Stop()
	for {
		if r.healthy.Load() {
			select {
			case <-r.down:
			case <-ctx.Done():
				return nil
			case <-r.closed:
				return nil
			}
			continue
		}
		timer.Reset(r.probeInterval)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil
		case <-r.closed:
			return nil
		}
		r.probes.Add(1)
		if r.probe(ctx) == nil && r.healthy.CompareAndSwap(false, true) && r.onChange != nil {
			r.onChange(true, nil)
		}
	}
}

// probe checks that Redis is usable again.
func (r *Redis) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := r.script.Load(pctx, r.client).Err(); err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.client.Ping(qctx).Err()
}

// Close closes the connections and makes Run return. Limiters using r
// keep working on their local tables. Close is idempotent.
func (r *Redis) Close() error {
	var err error
	r.close.Do(func() {
		close(r.closed)
		r.healthy.Store(false)
		err = r.client.Close()
	})
	return err
}
