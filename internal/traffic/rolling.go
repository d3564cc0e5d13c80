package traffic

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	// slots splits a window in ten, like resilience.Window: an outcome
	// stops counting between 90% and 100% of the window after it happened.
	slots = 10
	// Latency buckets are log-linear in the manner of HdrHistogram: four
	// per power of two of a unit of 2^unitShift ns (32.8µs), so a bucket is
	// at most 25% wide and an interpolated p95 is within about 12% of the
	// exact one. 80 buckets reach 60s; slower outcomes share the last.
	unitShift   = 15
	subBits     = 2
	histBuckets = 80
)

// rolling measures one variant over a rolling window: outcomes, failures,
// outcomes slower than the brake's latency threshold, and a latency
// histogram, each per time slot.
//
// Every counter is a 64-bit word holding the low 32 bits of its slot number
// and a count, changed by CAS, so a counter carries the slot it belongs to:
// reusing a ring entry for a newer slot is the same CAS that starts the new
// count, and no reset can race with an add (the trouble with a separate
// stamp per slot). A word that belongs to a slot out of the window simply
// does not count when read. Counts saturate at 2^32-1 per slot. Like
// resilience.Window, only a word left untouched for about 2^32 slots (50
// days of 1ms slots, 13 years of 100ms ones) can be taken for a live one.
//
// rolling could be built from resilience.Window (one per counter), but the
// histogram needs 80 counters and reading them for a p95 would then cost
// 80 head loads and ring scans plus 80 padded structs per variant; one
// ring of packed words is a tenth of the memory.
type rolling struct {
	width int64 // nanoseconds per slot
	ring  [slots]slotCounts
}

type slotCounts struct {
	requests, failures, slow atomic.Uint64
	hist                     [histBuckets]atomic.Uint64
}

// counts is a point-in-time sum over the window.
type counts struct {
	requests, failures, slow int64
}

func newRolling(window time.Duration) *rolling {
	return &rolling{width: max(int64(window)/slots, 1)}
}

// slot returns the number of the slot holding time now (floor division, so
// a clock below zero works too).
func (r *rolling) slot(now int64) int64 {
	s := now / r.width
	if now < 0 && s*r.width != now {
		s--
	}
	return s
}

// record counts one outcome at time now.
func (r *rolling) record(now int64, failed, slow bool, latency time.Duration) {
	s := r.slot(now)
	st := uint32(s)
	c := &r.ring[mod(s, slots)]
	// requests first: a reader loads failures before requests, so it never
	// sees a failure without its request.
	add(&c.requests, st)
	if failed {
		add(&c.failures, st)
	}
	if slow {
		add(&c.slow, st)
	}
	add(&c.hist[bucketOf(latency)], st)
}

// add counts one event of slot st in word w. A word of an older slot is
// taken over by the new one; a word already of a slightly newer slot (a
// caller that read the clock just before another one moved on) gets the
// event: a little late, never lost.
func add(w *atomic.Uint64, st uint32) {
	for {
		v := w.Load()
		next := uint64(st)<<32 | 1
		if ws := uint32(v >> 32); ws == st || (int32(ws-st) > 0 && int32(ws-st) < slots) {
			if uint32(v) == math.MaxUint32 {
				return
			}
			next = v + 1
		}
		if w.CompareAndSwap(v, next) {
			return
		}
	}
}

// live returns the count of word v if its slot is in the window ending at
// slot st (or slightly newer: a writer whose clock read came after ours).
func live(v uint64, st uint32) int64 {
	age := int32(st - uint32(v>>32))
	if age <= -slots || age >= slots {
		return 0
	}
	return int64(uint32(v))
}

// sum returns the window's counts at time now.
func (r *rolling) sum(now int64) counts {
	st := uint32(r.slot(now))
	var c counts
	for i := range r.ring {
		e := &r.ring[i]
		c.slow += live(e.slow.Load(), st)
		c.failures += live(e.failures.Load(), st)
		c.requests += live(e.requests.Load(), st)
	}
	// Words are read one by one: never report more failures than requests.
	c.failures = min(c.failures, c.requests)
	c.slow = min(c.slow, c.requests)
	return c
}

// p95 returns the window's 95th percentile latency at time now, by linear
// interpolation in the histogram bucket holding the nearest-rank p95, and
// that bucket's upper bound; zeros when the window is empty.
func (r *rolling) p95(now int64) (est, upper time.Duration) {
	st := uint32(r.slot(now))
	var h [histBuckets]int64
	var total int64
	for i := range r.ring {
		for b := range h {
			n := live(r.ring[i].hist[b].Load(), st)
			h[b] += n
			total += n
		}
	}
	if total == 0 {
		return 0, 0
	}
	rank := (95*total + 99) / 100 // nearest rank: ceil(0.95 total)
	var cum int64
	for b, n := range h {
		if n == 0 || cum+n < rank {
			cum += n
			continue
		}
		lo, hi := bucketBounds(b)
		frac := float64(rank-cum) / float64(n)
		return lo + time.Duration(frac*float64(hi-lo)), hi
	}
	return 0, 0 // unreachable: rank <= total
}

// bucketOf returns the histogram bucket of latency d.
func bucketOf(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	u := uint64(d) >> unitShift
	if u < 1<<subBits {
		return int(u)
	}
	e := bits.Len64(u) - 1 // >= subBits
	b := (e-subBits+1)<<subBits + int(u>>(e-subBits)&(1<<subBits-1))
	return min(b, histBuckets-1)
}

// bucketBounds returns the latencies bucket b covers, [lo, hi).
func bucketBounds(b int) (lo, hi time.Duration) {
	if b < 1<<subBits {
		return time.Duration(b) << unitShift, time.Duration(b+1) << unitShift
	}
	e := b>>subBits + subBits - 1
	sub := b & (1<<subBits - 1)
	shift := e - subBits + unitShift
	return time.Duration(1<<subBits+sub) << shift, time.Duration(1<<subBits+sub+1) << shift
}

func mod(a, n int64) int64 {
	if m := a % n; m >= 0 {
		return m
	}
	return a%n + n
}
