package upstream

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Ring sizing: ringPointsPerWeight virtual nodes per unit of (GCD-reduced)
// weight, scaled down proportionally when the ring would exceed
// maxRingPoints (1 MiB of points).
const (
	ringPointsPerWeight = 100
	maxRingPoints       = 1 << 16
)

// consistentHash is a ketama-style hash ring. Every endpoint owns about
// ringPointsPerWeight points per unit of weight, placed by hashing its
// address, so the ring depends only on the endpoints' own addresses and
// weights: removing one endpoint of N moves only the keys it owned, about
// 1/N of them, and every other key keeps its endpoint. A pick hashes the key
// (header value, cookie value or client IP; FNV-1a with a murmur3 finaliser,
// unseeded so every proxy instance and every restart maps a key alike) and
// binary-searches the ring, O(len(key) + log points), without allocating.
// A request without the key falls back to a weighted random pick. An
// excluded endpoint is skipped by walking the ring to the next point owned
// by another endpoint, so retries of one key also agree.
type consistentHash struct {
	key HashKey
	// hashes is sorted; owners[i] owns the point at hashes[i].
	hashes   []uint64
	owners   []int32
	fallback random
}

func newConsistentHash(key HashKey, addresses []string, weights []int, src randSource) *consistentHash {
	reduced := reduceWeights(weights)
	total := 0
	for _, w := range reduced {
		total += w
	}
	perWeight := func(w int) int { return w * ringPointsPerWeight }
	if total*ringPointsPerWeight > maxRingPoints {
		perWeight = func(w int) int { return max(1, w*maxRingPoints/total) }
	}
	type point struct {
		hash  uint64
		owner int32
	}
	var points []point
	var buf []byte
	for i, addr := range addresses {
		for j := range perWeight(reduced[i]) {
			buf = strconv.AppendInt(append(append(buf[:0], addr...), '#'), int64(j), 10)
			points = append(points, point{hash: hash(buf), owner: int32(i)})
		}
	}
	// Ties between points of different endpoints are broken by address, not
	// config order, so reordering the config does not move keys.
	slices.SortFunc(points, func(a, b point) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return strings.Compare(addresses[a.owner], addresses[b.owner])
	})
	ch := &consistentHash{
		key:      key,
		hashes:   make([]uint64, len(points)),
		owners:   make([]int32, len(points)),
		fallback: random{weights: newWeightTable(weights), src: src},
	}
	for i, p := range points {
		ch.hashes[i], ch.owners[i] = p.hash, p.owner
	}
	return ch
}

func (ch *consistentHash) pick(r *http.Request, clientIP string, ex int) int {
	k := ch.keyOf(r, clientIP)
	if k == "" {
		return ch.fallback.pick(r, clientIP, ex)
	}
	i := ch.search(hash(k))
	// Terminates: ex >= 0 only with two or more endpoints, each owning at
	// least one point.
	for int(ch.owners[i]) == ex {
		i++
		if i == len(ch.owners) {
			i = 0
		}
	}
	return int(ch.owners[i])
}

// search returns the index of the first point at or after h, wrapping
// around to 0 past the last.
func (ch *consistentHash) search(h uint64) int {
	lo, hi := 0, len(ch.hashes)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ch.hashes[mid] < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(ch.hashes) {
		return 0
	}
	return lo
}

// keyOf extracts the hash key from the request, "" when absent.
func (ch *consistentHash) keyOf(r *http.Request, clientIP string) string {
	switch ch.key.Kind {
	case HashClientIP:
		return clientIP
	case HashHeader:
		if r == nil {
			return ""
		}
		// Direct map access with the name canonicalised at parse time:
		// Header.Get would canonicalise per request.
		if v := r.Header[ch.key.Name]; len(v) > 0 {
			return v[0]
		}
	case HashCookie:
		if r == nil {
			return ""
		}
		return cookieValue(r.Header["Cookie"], ch.key.Name)
	}
	return ""
}

// cookieValue returns the value of the first cookie called name in the
// Cookie header lines, or "". Unlike http.Request.Cookie it parses in place
// and allocates nothing; it is lenient about malformed pairs, which simply
// do not match.
func cookieValue(lines []string, name string) string {
	for _, line := range lines {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(pair, "=")
			if !ok || strings.TrimSpace(k) != name {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// hash is 64-bit FNV-1a followed by murmur3's fmix64 finaliser: FNV alone
// spreads short, similar keys ("user-1", "user-2") poorly over the ring.
func hash[T ~string | ~[]byte](s T) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
