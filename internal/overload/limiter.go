package overload

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// defaultQueueTimeout is the config default of queue_timeout.
	defaultQueueTimeout = time.Second
	// maxLimit is the largest limit: in-flight and queued counts share
	// one 64-bit word, 32 bits each. MaxConcurrent <= 0 means this.
	maxLimit = math.MaxInt32
)

// ErrOverloaded is the error of a request shed because the limit was
// reached and the queue was full, or because it waited QueueTimeout in the
// queue. Acquire returns it as an *Error, which carries the Retry-After to
// send; match it with errors.Is.
var ErrOverloaded = errors.New("overloaded")

// Error is a shed request's error: errors.Is(err, ErrOverloaded) holds.
// Acquire returns shared values: read them, never modify them.
type Error struct {
	// RetryAfter is the Retry-After to send with the 503: QueueTimeout
	// rounded up to whole seconds, at least 1s. A client that waits that
	// long finds a queue that has turned over at least once, and the
	// header counts in whole seconds (RFC 9110 section 10.2.3).
	RetryAfter time.Duration
	// Timeout is true when the request waited QueueTimeout in the queue,
	// false when it found the queue full.
	Timeout bool
}

// Error describes the shed: "overloaded: queue full" or "overloaded:
// queue timeout".
func (e *Error) Error() string {
	if e.Timeout {
		return "overloaded: queue timeout"
	}
	return "overloaded: queue full"
}

// Is reports whether target is ErrOverloaded.
func (e *Error) Is(target error) bool { return target == ErrOverloaded }

// Settings are the knobs of a Limiter (SPEC section 3,
// overload_protection). The zero Settings admits everything.
type Settings struct {
	// MaxConcurrent is the most requests in flight at once; <= 0 means no
	// limit (and no adaptive limit). At most 2^31-1.
	MaxConcurrent int
	// QueueSize is how many requests may wait for a slot; <= 0 means none:
	// a request over the limit is shed at once.
	QueueSize int
	// QueueTimeout is the longest a request waits in the queue. Zero
	// means 1s.
	QueueTimeout time.Duration
	// Adaptive lets the limit follow latency between a small minimum and
	// MaxConcurrent; see Limiter.
	Adaptive bool
}

// config is a Settings in force with what the request path derives from
// it.
type config struct {
	Settings
	full, timeout *Error
}

func newConfig(s Settings) *config {
	if s.MaxConcurrent <= 0 || s.MaxConcurrent > maxLimit {
		s.MaxConcurrent = 0
		s.Adaptive = false // nothing to adapt under
	}
	s.QueueSize = min(max(s.QueueSize, 0), maxLimit)
	if s.QueueTimeout <= 0 {
		s.QueueTimeout = defaultQueueTimeout
	}
	ra := max((s.QueueTimeout+time.Second-1)/time.Second*time.Second, time.Second)
	return &config{Settings: s, full: &Error{RetryAfter: ra}, timeout: &Error{RetryAfter: ra, Timeout: true}}
}

// limit returns the static limit of c.
func (c *config) limit() int64 {
	if c.MaxConcurrent == 0 {
		return maxLimit
	}
	return int64(c.MaxConcurrent)
}

// Token is an admitted request's slot; give it back with Release exactly
// once. The zero Token holds no slot: Release ignores it. Tokens are small
// values, copied freely.
type Token struct {
	l *Limiter
}

// Limiter admits at most Limit() requests at once and queues up to
// QueueSize more, first come first served, each for at most QueueTimeout.
//
// The in-flight and queued counts live in one 64-bit word, changed by CAS.
// That is what keeps the queue strictly FIFO without a lock on the fast
// path: a newcomer may take a free slot only when the word says nobody is
// queued, and a Release that finds someone queued hands its slot over
// instead of freeing it, so a newcomer can never overtake a waiter. The
// queue itself is a list under a mutex, taken only by requests that must
// wait and by releases that hand over.
//
// Adaptive limit: the limit starts at MaxConcurrent, and every Release
// contributes its latency to a sample window that closes after at least
// 10 samples and 100ms (a busy window up to 16 samples later). At each
// close, under a mutex taken with TryLock (a release never waits for it):
//
//	short    = mean latency of the window's undropped samples
//	long     = exponential average of short over about 600 windows
//	           (the plain mean over the first 10), decayed by 5% when it
//	           is more than twice short, so that it forgets a bad period
//	           faster
//	gradient = clamp(1.5 * long / short, 0.5, 1); 0.5 if any sample of
//	           the window was dropped
//	new      = limit * gradient + max(4, sqrt(limit)), the queue
//	           allowance that lets the limit probe upwards
//	limit    = 0.8 * limit + 0.2 * new, within [min(4, MaxConcurrent),
//	           MaxConcurrent], never growing while at most half of it
//	           was in use during the window
//
// These are Gradient2's defaults (tolerance 1.5, smoothing 0.2, long
// window 600, the 0.95 decay), with a sqrt queue allowance (Gradient's)
// so that a limit in the thousands recovers in seconds, not minutes, and
// drops treated as AIMD's backoff: with smoothing, a window with drops
// lowers the limit by about 10%.
//
// The zero Limiter is not usable; create one with New. All methods are
// safe for concurrent use.
type Limiter struct {
	// state is queued<<32 | inflight. Every Acquire and Release CASes it:
	// keep it off the line of the read-mostly fields.
	state atomic.Uint64
	_     [56]byte

	limit atomic.Int64
	cfg   atomic.Pointer[config]
	clock func() int64

	// mu guards the queue and the free list, and serialises Update.
	mu         sync.Mutex
	head, tail *waiter
	free       *waiter // recycled waiters, linked by next

	// Every adaptive Release writes adapt's counters: keep them off the
	// line of limit and cfg, which every Acquire reads.
	_     [64]byte
	adapt adaptive
}

const queuedUnit = 1 << 32

func inflightOf(v uint64) int64 { return int64(uint32(v)) }
func queuedOf(v uint64) int64   { return int64(v >> 32) }

// waiter is a queued Acquire. ready receives once when the waiter is
// granted a slot; granted is set under mu at the same time, so a waiter
// that gives up can tell whether it already has the slot.
type waiter struct {
	prev, next *waiter
	ready      chan struct{} // capacity 1
	timer      *time.Timer
	granted    bool
}

// New returns a limiter with settings s and nothing in flight. clock
// returns monotonic nanoseconds and drives the adaptive limit's sample
// windows; nil means the real monotonic clock. Queue timeouts are real
// timers. It starts no goroutine.
func New(s Settings, clock func() int64) *Limiter {
	if clock == nil {
		start := time.Now()
		clock = func() int64 { return int64(time.Since(start)) }
	}
	c := newConfig(s)
	l := &Limiter{clock: clock}
	l.cfg.Store(c)
	l.limit.Store(c.limit())
	l.adapt.reset(float64(c.limit()), clock())
	return l
}

// Acquire asks for a slot. It returns at once with a Token when fewer than
// Limit() requests are in flight and nobody is queued. Otherwise it
// queues, behind everyone already queued, until a slot is handed to it, or
// returns an *Error (ErrOverloaded) when the queue is full or after
// QueueTimeout, or ctx.Err() when ctx is done first: the client went away,
// which is not overload. A request that gets no Token holds no slot.
func (l *Limiter) Acquire(ctx context.Context) (Token, error) {
	for {
		v := l.state.Load()
		if queuedOf(v) != 0 || inflightOf(v) >= l.limit.Load() {
			return l.acquireSlow(ctx)
		}
		if l.state.CompareAndSwap(v, v+1) {
			return Token{l: l}, nil
		}
	}
}

func (l *Limiter) acquireSlow(ctx context.Context) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, err // gone already: not worth a place in the queue
	}
	c := l.cfg.Load()
	l.mu.Lock()
	for {
		v := l.state.Load()
		if queuedOf(v) == 0 && inflightOf(v) < l.limit.Load() {
			if l.state.CompareAndSwap(v, v+1) {
				l.mu.Unlock()
				return Token{l: l}, nil
			}
			continue
		}
		if queuedOf(v) >= int64(c.QueueSize) {
			l.mu.Unlock()
			return Token{}, c.full
		}
		if l.state.CompareAndSwap(v, v+queuedUnit) {
			break
		}
	}
	w := l.newWaiterLocked()
	// A slot may have been freed between the checks and the enqueue (a
	// Release that saw nobody queued): hand it out now, perhaps to w.
	l.dispatchLocked()
	l.mu.Unlock()
	return l.wait(ctx, w, c)
}

// wait blocks queued waiter w until it is granted a slot, c's timeout
// passes or ctx is done.
func (l *Limiter) wait(ctx context.Context, w *waiter, c *config) (Token, error) {
	if w.timer == nil {
		w.timer = time.NewTimer(c.QueueTimeout)
	} else {
		w.timer.Reset(c.QueueTimeout)
	}
	var err error
	select {
	case <-w.ready:
		w.timer.Stop()
		l.recycle(w)
		return Token{l: l}, nil
	case <-w.timer.C:
	case <-ctx.Done():
		w.timer.Stop()
		err = ctx.Err()
	}
	if l.dequeue(w) {
		l.recycle(w)
		if err == nil {
			return Token{}, c.timeout
		}
		return Token{}, err
	}
	// Granted while giving up: the slot is ours. A waiter that timed out
	// keeps it, it waited for it; one whose client left passes it on.
	<-w.ready
	l.recycle(w)
	if err == nil {
		return Token{l: l}, nil
	}
	l.release()
	return Token{}, err
}

// Release gives the slot back, handing it to the oldest waiter if any.
// latency (from admission to the response, or to the error) and dropped
// (the upstream shed or timed out the request: a sign of overload, not
// just any failure) feed the adaptive limit; without Adaptive they are
// ignored.
func (t Token) Release(latency time.Duration, dropped bool) {
	l := t.l
	if l == nil {
		return
	}
	if l.cfg.Load().Adaptive {
		l.sample(latency, dropped)
	}
	l.release()
}

// release frees one slot or hands it over.
func (l *Limiter) release() {
	for {
		v := l.state.Load()
		if queuedOf(v) > 0 && inflightOf(v) <= l.limit.Load() {
			l.mu.Lock()
			l.handOffLocked()
			l.mu.Unlock()
			return
		}
		if l.state.CompareAndSwap(v, v-1) {
			return
		}
	}
}

// handOffLocked passes the caller's slot to the oldest waiter, or frees it
// when nobody waits or the limit has dropped below the in-flight count.
// l.mu must be held.
func (l *Limiter) handOffLocked() {
	for {
		v := l.state.Load()
		if queuedOf(v) == 0 || inflightOf(v) > l.limit.Load() {
			if l.state.CompareAndSwap(v, v-1) {
				return
			}
			continue
		}
		// The slot changes hands: one fewer queued, as many in flight.
		if l.state.CompareAndSwap(v, v-queuedUnit) {
			l.grantLocked()
			return
		}
	}
}

// dispatchLocked admits waiters, oldest first, while slots are free (after
// the limit rose, or a slot freed during an enqueue). l.mu must be held.
func (l *Limiter) dispatchLocked() {
	for l.head != nil {
		v := l.state.Load()
		if inflightOf(v) >= l.limit.Load() {
			return
		}
		if l.state.CompareAndSwap(v, v+1-queuedUnit) {
			l.grantLocked()
		}
	}
}

// grantLocked removes the oldest waiter from the queue and wakes it with a
// slot already counted for it. l.mu must be held; the queue must not be
// empty (the queued count says so).
func (l *Limiter) grantLocked() {
	w := l.head
	l.unlinkLocked(w)
	w.granted = true
	w.ready <- struct{}{}
}

// dequeue takes w, which gives up, out of the queue, and reports whether
// it was still there; false means it was granted a slot meanwhile.
func (l *Limiter) dequeue(w *waiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted {
		return false
	}
	l.unlinkLocked(w)
	// Nobody else waits for this: waiters only exist while every slot is
	// taken, so the ones behind w gain nothing from its leaving.
	l.state.Add(^uint64(queuedUnit - 1)) // minus one queued
	return true
}

// newWaiterLocked appends a waiter, recycled if possible, to the queue.
// l.mu must be held.
func (l *Limiter) newWaiterLocked() *waiter {
	w := l.free
	if w != nil {
		l.free = w.next
		*w = waiter{ready: w.ready, timer: w.timer}
	} else {
		w = &waiter{ready: make(chan struct{}, 1)}
	}
	w.prev = l.tail
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	return w
}

func (l *Limiter) unlinkLocked(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
}

// recycle keeps w, out of the queue with its ready channel drained and
// its timer stopped or fired and drained, for a later wait. Nothing else
// refers to it any more. The free list holds at most as many waiters as
// were ever queued at once, which QueueSize bounds.
func (l *Limiter) recycle(w *waiter) {
	l.mu.Lock()
	w.next = l.free
	l.free = w
	l.mu.Unlock()
}

// Update applies new settings, for a config apply. Requests in flight and
// queued keep their places: a lower limit is reached as they finish, a
// higher one admits waiters at once; a smaller QueueSize turns newcomers
// away until the queue is short enough; a new QueueTimeout applies to
// requests queued from now on. Turning Adaptive on starts the adaptive
// limit at the current limit; turning it off restores MaxConcurrent.
func (l *Limiter) Update(s Settings) {
	c := newConfig(s)
	l.mu.Lock()
	defer l.mu.Unlock()
	// adapt.mu too, so that a window closing now sees either the old
	// settings and limit or the new ones.
	l.adapt.mu.Lock()
	old := l.cfg.Swap(c)
	lim := c.limit()
	if c.Adaptive {
		lim = min(l.limit.Load(), lim)
		if !old.Adaptive {
			l.adapt.reset(float64(lim), l.clock())
		}
		l.adapt.estimate = min(l.adapt.estimate, float64(lim))
	}
	l.limit.Store(lim)
	l.adapt.mu.Unlock()
	l.dispatchLocked()
}

// Limit returns the current limit: MaxConcurrent (2^31-1 for none), or
// the adaptive limit.
func (l *Limiter) Limit() int { return int(l.limit.Load()) }

// InFlight returns the number of requests holding a slot.
func (l *Limiter) InFlight() int { return int(inflightOf(l.state.Load())) }

// Queued returns the number of requests waiting for a slot.
func (l *Limiter) Queued() int { return int(queuedOf(l.state.Load())) }

// Settings returns the settings in force, defaults applied (QueueTimeout
// set; MaxConcurrent 0 and Adaptive false for no limit).
func (l *Limiter) Settings() Settings { return l.cfg.Load().Settings }
