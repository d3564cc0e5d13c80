package resilience

import (
	"math"
	"sync/atomic"
	"time"
)

const (
	// defaultWindow is the rolling window of SPEC section 7 ("successes in
	// the last 10 s") and the config default of circuit_breaker.window.
	defaultWindow = 10 * time.Second
	// defaultBuckets splits a window in ten: an outcome then stops counting
	// between 90% and 100% of the window after it happened.
	defaultBuckets = 10
)

// Window counts events over a rolling time window, lock-free. It is a ring
// of buckets, each covering one time slot of Window/buckets; an event counts
// until its slot leaves the window, so it stops counting between
// (buckets-1)/buckets of the window and the whole window after it happened,
// exactly at the start of the slot that is one window later than its own.
//
// The newest slot lives in one 64-bit word (the head) holding the slot's
// stamp and its count. Stamp and count change together in one CAS, which is
// what makes the counts exact: with a separate stamp and counter, an Add
// racing with the reset of a stale bucket can be wiped out. When time moves
// to a new slot, the first writer that notices copies the finished head into
// the ring before it swings the head, so a reader that sees the new head
// also sees the old one in the ring; ring entries are thus final once the
// head has moved past them, and a check made against the head word (see
// Budget.TryRetry) is exact.
//
// Stamps are the low 32 bits of the slot number; the full number of the
// newest slot, kept aside, settles the cases where a 32-bit difference is
// ambiguous, so slot numbers may wrap. Only a window left untouched for
// 2^32 slots (136 years of 1s slots, 50 days of 1ms ones) can take a stale
// slot for a live one, with odds of about buckets in 2^32. A count
// saturates at 2^32-1 events per slot.
//
// The zero Window is not usable; create one with NewWindow. All methods are
// safe for concurrent use, lock-free and allocation-free.
type Window struct {
	// head is stamp<<32 | count of the newest slot. Every Add CASes it.
	head atomic.Uint64
	// Every Add writes head; keep it off the cache line of the fields that
	// are only read.
	_ [56]byte
	// last is the full number of the newest slot, raised (never lowered)
	// before the head moves to a new slot, so last >= the head's slot.
	last atomic.Int64
	// ring holds retired slots, packed like head, at index slot mod n.
	ring  []atomic.Uint64
	n     int64 // len(ring)
	width int64 // nanoseconds per slot
	clock func() int64
}

// NewWindow returns a window of length d split into buckets slots. d <= 0
// means 10s; buckets <= 0 means 10. The slot width is d/buckets rounded
// down (at least 1ns), so the window covered is buckets times that. clock
// returns monotonic nanoseconds; nil means the real monotonic clock.
func NewWindow(d time.Duration, buckets int, clock func() int64) *Window {
	if clock == nil {
		clock = monotonic()
	}
	return newWindow(d, buckets, clock, clock(), 0)
}

// newWindow returns a window whose newest slot is the one of now and already
// holds seed events.
func newWindow(d time.Duration, buckets int, clock func() int64, now int64, seed uint32) *Window {
	if d <= 0 {
		d = defaultWindow
	}
	if buckets <= 0 {
		buckets = defaultBuckets
	}
	w := &Window{
		ring:  make([]atomic.Uint64, buckets),
		n:     int64(buckets),
		width: max(int64(d)/int64(buckets), 1),
		clock: clock,
	}
	s := w.slot(now)
	w.last.Store(s)
	w.head.Store(pack(s, seed))
	return w
}

// Add counts n events now. n <= 0 is ignored; n above 2^32-1 counts as
// 2^32-1.
func (w *Window) Add(n int64) {
	if n <= 0 {
		return
	}
	w.addAt(w.clock(), uint32(min(n, math.MaxUint32)))
}

// Sum returns the number of events in the window now.
func (w *Window) Sum() int64 { return w.sumAt(w.clock()) }

// addAt counts n events at time now. An event from a slot older than the
// head (a caller that read the clock just before another one moved the
// head) counts in the head's slot: a little late, never lost.
func (w *Window) addAt(now int64, n uint32) {
	s := w.slot(now)
	for {
		v := w.head.Load()
		h := w.headSlot(v, s)
		next := pack(h, satAdd(count(v), n))
		if s > h {
			w.retire(v, h, s)
			next = pack(s, n)
		}
		if w.head.CompareAndSwap(v, next) {
			return
		}
	}
}

// tryAddAt counts one event at time now if fewer than limit events are in
// the window, and reports whether it did. The check and the count are one
// CAS on the head, so concurrent callers never exceed limit together.
func (w *Window) tryAddAt(now, limit int64) bool {
	s := w.slot(now)
	for {
		v := w.head.Load()
		h := w.headSlot(v, s)
		if s > h {
			w.retire(v, h, s)
			w.head.CompareAndSwap(v, pack(s, 0))
			continue
		}
		// The head is the newest slot (a late caller uses its slot): the
		// window is the head plus the final ring entries before it.
		c := count(v)
		if int64(c)+w.ringSum(h, h) >= limit || c == math.MaxUint32 {
			return false
		}
		if w.head.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// sumAt returns the number of events in the window at time now (or at the
// head's slot, when another caller has already moved it past now).
func (w *Window) sumAt(now int64) int64 {
	s := w.slot(now)
	v := w.head.Load() // before the ring: see retire
	h := w.headSlot(v, s)
	ref := max(s, h)
	if ref-h >= w.n {
		return 0 // the head, and the ring behind it, left the window
	}
	return int64(count(v)) + w.ringSum(h, ref)
}

// ringSum adds the ring entries older than slot h (the head's) that are
// inside the window ending at slot ref >= h. Entries stamped h itself are
// skipped: they are copies of the head being retired right now.
func (w *Window) ringSum(h, ref int64) int64 {
	var sum int64
	skew := ref - h
	for i := range w.ring {
		e := w.ring[i].Load()
		c := count(e)
		if c == 0 {
			continue
		}
		// Ring entries are never newer than the head, so the unsigned
		// 32-bit difference is their exact age.
		age := int64(uint32(h) - stamp(e))
		if age > 0 && skew+age < w.n {
			sum += int64(c)
		}
	}
	return sum
}

// retire prepares moving the head from slot h (word v) to slot s > h: it
// raises last to s, then copies the head's count into the ring if slot h
// stays inside the window. All of it happens before the CAS that moves the
// head, so whoever sees the new head finds the old one in the ring. If the
// CAS then fails, the caller retires again from the newer head; writing
// the larger count for the same slot keeps the final one.
func (w *Window) retire(v uint64, h, s int64) {
	w.raise(s)
	c := count(v)
	if c == 0 || s-h >= w.n {
		return // nothing to keep: empty, or already out of the window
	}
	l := uint32(w.last.Load())
	e := &w.ring[mod(h, w.n)]
	st := uint32(h)
	for {
		old := e.Load()
		if oc := count(old); oc != 0 {
			es := stamp(old)
			if es == st && oc >= c {
				return
			}
			// A newer slot that is still in the window owns the entry:
			// this caller read the head long ago and its copy is stale.
			// Judging liveness against last rather than by the sign of
			// st-es keeps an entry idle for 2^31 slots from looking new.
			if es != st && int32(st-es) < 0 && int64(l-es) < w.n {
				return
			}
		}
		if e.CompareAndSwap(old, packStamp(st, c)) {
			return
		}
	}
}

// raise makes last at least s.
func (w *Window) raise(s int64) {
	for {
		l := w.last.Load()
		if l >= s || w.last.CompareAndSwap(l, s) {
			return
		}
	}
}

// headSlot returns the full slot number of the head word v, for a caller
// whose own slot is s. The common case, the head is at s, needs no other
// load. Otherwise last (never below the head's slot, and never far above it)
// gives the high bits.
func (w *Window) headSlot(v uint64, s int64) int64 {
	hs := stamp(v)
	if uint32(s) == hs {
		return s
	}
	l := w.last.Load()
	return l - int64(uint32(l)-hs)
}

// slot returns the number of the slot holding time now (floor division, so
// a clock starting below zero works too).
func (w *Window) slot(now int64) int64 {
	s := now / w.width
	if now < 0 && s*w.width != now {
		s--
	}
	return s
}

func pack(slot int64, c uint32) uint64 { return packStamp(uint32(slot), c) }

func packStamp(st, c uint32) uint64 { return uint64(st)<<32 | uint64(c) }

func stamp(v uint64) uint32 { return uint32(v >> 32) }

func count(v uint64) uint32 { return uint32(v) }

func satAdd(a, b uint32) uint32 {
	if a > math.MaxUint32-b {
		return math.MaxUint32
	}
	return a + b
}

func mod(a, n int64) int64 {
	if m := a % n; m >= 0 {
		return m
	}
	return a%n + n
}

// resized returns a window of length d whose newest slot already counts
// every event of w in its window at time now, so that changing the window
// length on a config apply does not forget recent history. Events added to
// w while it is being replaced may be lost.
func (w *Window) resized(d time.Duration, now int64) *Window {
	return newWindow(d, int(w.n), w.clock, now, uint32(min(w.sumAt(now), math.MaxUint32)))
}
