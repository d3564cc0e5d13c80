package router

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// frozen is a read-only hash table from strings to V, built once by freeze
// and never changed, so any number of goroutines may read it at once. The
// zero value is empty.
//
// It replaces Go maps on the routing path, where lookups were 40% of a
// 10,000-route match (BenchmarkMatch10000): a table that never grows can
// use open addressing at a load factor of at most one half, an inlined
// multiply hash and one comparison of the full hash before the key. Because
// nothing is ever inserted after freeze, the longest probe sequence is
// fixed when the snapshot is compiled: request keys chosen to collide can
// land on a long cluster but cannot make one, so the table needs no
// per-process random seed to resist hash flooding.
type frozen[V any] struct {
	slots []slot[V] // a power of two long; hash 0 marks an empty slot
	n     int       // entries
}

type slot[V any] struct {
	hash uint64
	key  string
	val  V
}

// freeze builds a frozen table holding the entries of m.
func freeze[V any](m map[string]V) frozen[V] {
	if len(m) == 0 {
		return frozen[V]{}
	}
	size := 2
	for size < 2*len(m) {
		size *= 2
	}
	f := frozen[V]{slots: make([]slot[V], size), n: len(m)}
	mask := uint64(size - 1)
	for k, v := range m {
		h := strHash(k)
		i := h & mask
		for f.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		f.slots[i] = slot[V]{hash: h, key: k, val: v}
	}
	return f
}

// get returns the value of key, or the zero V.
func (f *frozen[V]) get(key string) V {
	if f.n > 0 {
		h := strHash(key)
		mask := uint64(len(f.slots) - 1)
		for i := h & mask; ; i = (i + 1) & mask {
			s := &f.slots[i]
			if s.hash == h && keyEqual(s.key, key) {
				return s.val
			}
			if s.hash == 0 {
				break
			}
		}
	}
	var zero V
	return zero
}

// keyEqual is a == b, with keys of eight to sixteen bytes (most host names
// and path keys) compared as two overlapping words in place instead of
// through a call to the runtime's memequal.
func keyEqual(a, b string) bool {
	n := len(a)
	if n != len(b) {
		return false
	}
	if n < 8 || n > 16 {
		return a == b
	}
	pa := unsafe.Slice(unsafe.StringData(a), n)
	pb := unsafe.Slice(unsafe.StringData(b), n)
	return le64(pa, 0) == le64(pb, 0) && le64(pa, n-8) == le64(pb, n-8)
}

// len returns the number of entries.
func (f *frozen[V]) len() int { return f.n }

// all calls fn for every entry, in no particular order.
func (f *frozen[V]) all(fn func(key string, val V)) {
	for i := range f.slots {
		if s := &f.slots[i]; s.hash != 0 {
			fn(s.key, s.val)
		}
	}
}

// strHash hashes s with multiply-and-fold rounds over sixteen bytes at a
// time (in the manner of wyhash), never returning 0. Keys of up to sixteen
// bytes, the usual host names and paths, take one multiplication.
func strHash(s string) uint64 {
	const k0, k1, k2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
	n := len(s)
	b := unsafe.Slice(unsafe.StringData(s), n)
	h := uint64(n) * k0
	switch {
	case n > 16:
		for len(b) > 16 {
			h = mix(le64(b, 0)^k1, le64(b, 8)^h)
			b = b[16:]
		}
		// The last sixteen bytes, overlapping the previous round.
		b = unsafe.Slice(unsafe.StringData(s), n)
		h = mix(le64(b, n-16)^k2, le64(b, n-8)^h)
	case n > 8:
		h = mix(le64(b, 0)^k2, le64(b, n-8)^h)
	case n >= 4:
		lo := uint64(binary.LittleEndian.Uint32(b))
		hi := uint64(binary.LittleEndian.Uint32(b[n-4:]))
		h = mix((hi<<32|lo)^k2, h^k1)
	case n > 0:
		h = mix((uint64(b[0])<<16|uint64(b[n>>1])<<8|uint64(b[n-1]))^k2, h^k1)
	}
	return h | 1
}

func le64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

// mix multiplies a by b and folds the 128-bit product.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
