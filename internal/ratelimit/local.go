package ratelimit

import (
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// maxShards bounds the number of shards of a table. 64 spreads lock
// traffic far beyond what the cores can contend for, while keeping each
// shard big enough for its eviction batches to amortise.
const maxShards = 64

// minPerShard is the smallest shard worth splitting a table for.
const minPerShard = 256

// dead is the TAT of a bucket that has been removed from its shard. A
// request holding a pointer to such a bucket looks its key up again
// instead of spending tokens nobody will see.
const dead = math.MinInt64

// bucket is one key's GCRA state.
type bucket struct {
	// tat is the theoretical arrival time in clock nanoseconds: the
	// bucket is full from tat on, and (tat-now)/interval tokens short of
	// full before. It only grows, until it becomes dead.
	tat atomic.Int64
}

// table is the local bucket store of one Limiter: shards of
// map[key]*bucket. The map is read under a read lock; the bucket is then
// updated lock-free, so a shard's write lock is only taken to insert a key.
type table struct {
	interval  int64 // ns per token
	tolerance int64 // burst * interval
	seed      maphash.Seed
	mask      uint64
	perShard  int // cap on keys per shard
	shards    []shard

	evicted, evictedEarly atomic.Uint64
	// onEvict, when set (tests only), is called for every evicted key
	// with the shard's write lock held.
	onEvict func(key string, early bool)
	// afterLookup, when set (tests only), is called between a key's
	// lookup and its take, where an eviction may slip in.
	afterLookup func(key string)
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*bucket // guarded by mu; values are never nil
	// scratch is reused by evict; guarded by mu.
	scratch []held
	// Keep shards on separate cache lines, so that locking one does not
	// slow its neighbour.
	_ [64 - (unsafe.Sizeof(sync.RWMutex{})+8+24)%64]byte
}

func newTable(interval int64, burst, maxKeys int) *table {
	if maxKeys < 1 {
		maxKeys = DefaultMaxKeys
	}
	// As many shards as keep at least minPerShard keys each: a shard
	// fills up on its own, so small shards would evict early while the
	// table as a whole still has room.
	n := 1
	for n*2 <= maxShards && maxKeys/(n*2) >= minPerShard {
		n *= 2
	}
	t := &table{
		interval:  interval,
		tolerance: interval * int64(burst),
		seed:      maphash.MakeSeed(),
		mask:      uint64(n - 1),
		perShard:  maxKeys / n,
		shards:    make([]shard, n),
	}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*bucket)
	}
	return t
}

// allow takes a token from key's bucket at time now.
func (t *table) allow(key string, now int64) (bool, time.Duration) {
	s := &t.shards[maphash.String(t.seed, key)&t.mask]
	for {
		s.mu.RLock()
		b := s.m[key]
		s.mu.RUnlock()
		if t.afterLookup != nil {
			t.afterLookup(key)
		}
		if b == nil {
			b = t.insert(s, key, now)
		}
		if ok, wait, live := t.take(b, now); live {
			return ok, wait
		}
		// Evicted between lookup and take: the key is gone from the
		// map, so the next round finds or inserts its new bucket.
	}
}

// take applies GCRA to b. live is false when b was evicted; the caller
// must then look the key up again.
func (t *table) take(b *bucket, now int64) (ok bool, wait time.Duration, live bool) {
	for {
		tat := b.tat.Load()
		if tat == dead {
			return false, 0, false
		}
		next := max(tat, now) + t.interval
		if allowAt := next - t.tolerance; now < allowAt {
			return false, time.Duration(allowAt - now), true
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true, 0, true
		}
	}
}

// insert returns key's bucket, adding a full one when the key is absent,
// after making room if the shard is at its cap.
func (t *table) insert(s *shard, key string, now int64) *bucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.m[key]; b != nil {
		return b // another request inserted it first
	}
	if len(s.m) >= t.perShard {
		t.evict(s, now)
	}
	b := &bucket{}
	b.tat.Store(now) // full: max(now, now) + T - B*T <= now
	// Clone: the caller's key may share memory with a large request
	// header, which the table must not keep alive.
	s.m[strings.Clone(key)] = b
	return b
}

// evict frees at least an eighth of s (one key at least), so that its
// O(len) scan is paid once per perShard/8 inserts. It first drops buckets
// that are full again: that is exact, since a missing key gets a full
// bucket. If that is not enough, every remaining key holds state, and it
// drops the buckets closest to full, which hold the least: each of those
// keys may then get back up to Burst tokens early. The caller holds s.mu
// for writing.
func (t *table) evict(s *shard, now int64) {
	s.scratch = s.scratch[:0]
	for k, b := range s.m {
		// CAS, not Store: a request may have just taken a token from
		// b, and then it is no longer full.
		if tat := b.tat.Load(); tat <= now && b.tat.CompareAndSwap(tat, dead) {
			t.remove(s, k, false)
		} else {
			s.scratch = append(s.scratch, held{tat: tat, key: k, b: b})
		}
	}
	need := max(t.perShard/8, 1) - (t.perShard - len(s.m))
	if need > 0 {
		selectSmallest(s.scratch, need)
		// Requests may have taken tokens since the scan, so these are the
		// buckets closest to full as of the scan; any of them still loses
		// at most Burst tokens.
		for _, h := range s.scratch[:need] {
			h.b.tat.Store(dead)
			t.remove(s, h.key, true)
		}
	}
	clear(s.scratch) // keep no evicted key or bucket alive
}

// held is a bucket that still holds state, as evict saw it.
type held struct {
	tat int64
	key string
	b   *bucket
}

// selectSmallest reorders h so that h[:k] holds k elements with the
// smallest TATs, in expected linear time (Hoare's quickselect); 0 < k <=
// len(h). A full sort would cost log n times more, on every eviction of a
// flood.
func selectSmallest(h []held, k int) {
	lo, hi := 0, len(h)-1
	for lo < hi {
		p := h[lo+(hi-lo)/2].tat
		i, j := lo, hi
		for i <= j {
			for h[i].tat < p {
				i++
			}
			for h[j].tat > p {
				j--
			}
			if i <= j {
				h[i], h[j] = h[j], h[i]
				i++
				j--
			}
		}
		// Now h[lo:j+1] <= p <= h[i:hi+1], and anything between equals p.
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}

// remove deletes k from s and counts it. The caller holds s.mu for
// writing and has marked the bucket dead.
func (t *table) remove(s *shard, k string, early bool) {
	delete(s.m, k)
	if early {
		t.evictedEarly.Add(1)
	} else {
		t.evicted.Add(1)
	}
	if t.onEvict != nil {
		t.onEvict(k, early)
	}
}

// len returns the number of tracked keys.
func (t *table) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
