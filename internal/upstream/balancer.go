package upstream

import (
	"math/bits"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
)

// picker is one balancing algorithm over a fixed endpoint list. pick returns
// an index into that list. ex is the index to avoid, or -1; Pool.Pick only
// passes ex >= 0 when there are at least two endpoints, and pick must then
// never return it. Implementations are safe for concurrent use and must not
// allocate.
type picker interface {
	pick(r *http.Request, clientIP string, ex int) int
}

// randSource yields uniformly distributed 64-bit values. Implementations are
// safe for concurrent use. It exists so tests can make the random balancers
// deterministic.
type randSource interface {
	Uint64() uint64
}

// runtimeRand draws from math/rand/v2's top-level generator: a per-thread
// ChaCha8 state in the runtime, lock-free, so concurrent Picks never contend
// the way a shared seeded generator behind a mutex would.
type runtimeRand struct{}

// Uint64 returns a random value.
func (runtimeRand) Uint64() uint64 { return rand.Uint64() }

// uniform returns a value in [0, n) for n > 0 by Lemire's multiply-shift,
// which needs no division; the bias is below n/2^64.
func uniform(src randSource, n uint64) uint64 {
	hi, _ := bits.Mul64(src.Uint64(), n)
	return hi
}

// weightTable draws endpoint indexes in proportion to their weights, with up
// to two indexes left out (the excluded endpoint and, for power of two
// choices, the first candidate). A draw costs one random number and a binary
// search, O(log n), and allocates nothing. Immutable after construction.
type weightTable struct {
	// cum[i] is the sum of the weights of endpoints 0..i.
	cum []uint64
	// equal is the common weight when all are equal (a draw is then a
	// division instead of a search), else 0.
	equal uint64
}

func newWeightTable(weights []int) weightTable {
	wt := weightTable{cum: make([]uint64, len(weights)), equal: uint64(weights[0])}
	var sum uint64
	for i, w := range weights {
		sum += uint64(w)
		wt.cum[i] = sum
		if uint64(w) != wt.equal {
			wt.equal = 0
		}
	}
	return wt
}

func (wt *weightTable) weight(i int) uint64 {
	if i == 0 {
		return wt.cum[0]
	}
	return wt.cum[i] - wt.cum[i-1]
}

// draw returns a random index other than skipA and skipB (either may be -1)
// with probability proportional to its weight. At least one index must be
// left.
func (wt *weightTable) draw(src randSource, skipA, skipB int) int {
	total := wt.cum[len(wt.cum)-1]
	if skipA < 0 && skipB < 0 {
		return wt.find(uniform(src, total))
	}
	if skipA > skipB {
		skipA, skipB = skipB, skipA
	}
	for _, s := range [2]int{skipA, skipB} {
		if s >= 0 {
			total -= wt.weight(s)
		}
	}
	x := uniform(src, total)
	// x is a position on the line of weights with the skipped intervals cut
	// out; put them back in ascending order to get the real position.
	for _, s := range [2]int{skipA, skipB} {
		if s >= 0 && x >= wt.cum[s]-wt.weight(s) {
			x += wt.weight(s)
		}
	}
	return wt.find(x)
}

// find returns the index whose weight interval contains position x.
func (wt *weightTable) find(x uint64) int {
	if wt.equal != 0 {
		return int(x / wt.equal)
	}
	lo, hi := 0, len(wt.cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if wt.cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// roundRobin cycles through the endpoints in config order, ignoring
// weights. One atomic add per pick, O(1). An excluded endpoint is stepped
// over to its successor.
type roundRobin struct {
	n    uint64
	next atomic.Uint64
}

func (rr *roundRobin) pick(_ *http.Request, _ string, ex int) int {
	i := int((rr.next.Add(1) - 1) % rr.n)
	if i == ex {
		i = (i + 1) % int(rr.n)
	}
	return i
}

// Limits of the precomputed smooth weighted round robin sequence: at most
// maxWRRSequence entries (256 KiB of int32), and at most maxWRRBuildSteps
// units of work to compute it (a few tens of milliseconds at build).
const (
	maxWRRSequence   = 1 << 16
	maxWRRBuildSteps = 1 << 24
)

// smoothSequence runs nginx's smooth weighted round robin over one full
// period (the sum of the weights) and returns the indexes it picks. Each
// step adds every endpoint's weight to its current value, picks the largest
// (first on ties) and subtracts the total from it; after one period every
// current value is back to zero, so the sequence repeats exactly. For
// weights 5,1,1 it is a,a,b,a,c,a,a: heavy endpoints are spread out rather
// than sent bursts.
func smoothSequence(weights []int) []int32 {
	total := 0
	for _, w := range weights {
		total += w
	}
	cur := make([]int, len(weights))
	seq := make([]int32, total)
	for k := range seq {
		seq[k] = int32(smoothStep(weights, cur, total))
	}
	return seq
}

// smoothStep is one step of smooth weighted round robin over cur.
func smoothStep(weights, cur []int, total int) int {
	best := -1
	for i, w := range weights {
		cur[i] += w
		if best < 0 || cur[i] > cur[best] {
			best = i
		}
	}
	cur[best] -= total
	return best
}

// weightedRoundRobin serves nginx's smooth weighted round robin from a
// sequence precomputed at build (weights reduced by their GCD): one atomic
// add and one slice index per pick, O(1), lock-free. An excluded endpoint
// is replaced by a weighted random draw among the others, O(log n).
type weightedRoundRobin struct {
	seq     []int32
	next    atomic.Uint64
	weights weightTable
	src     randSource
}

func (w *weightedRoundRobin) pick(_ *http.Request, _ string, ex int) int {
	i := int(w.seq[(w.next.Add(1)-1)%uint64(len(w.seq))])
	if i == ex {
		return w.weights.draw(w.src, ex, -1)
	}
	return i
}

// lockedWeightedRoundRobin is smooth weighted round robin computed step by
// step under a mutex: O(n) per pick. It is the fallback for pools whose
// reduced weights are too large to precompute the sequence.
type lockedWeightedRoundRobin struct {
	weights []int
	total   int
	table   weightTable
	src     randSource

	// mu guards cur, the smooth round robin state.
	mu  sync.Mutex
	cur []int
}

func (w *lockedWeightedRoundRobin) pick(_ *http.Request, _ string, ex int) int {
	w.mu.Lock()
	i := smoothStep(w.weights, w.cur, w.total)
	w.mu.Unlock()
	if i == ex {
		return w.table.draw(w.src, ex, -1)
	}
	return i
}

// newWeightedRoundRobin picks the precomputed form when it fits the limits.
// weights must already be reduced by their GCD.
func newWeightedRoundRobin(weights []int, src randSource) picker {
	total := 0
	for _, w := range weights {
		total += w
	}
	table := newWeightTable(weights)
	if total <= maxWRRSequence && total*len(weights) <= maxWRRBuildSteps {
		return &weightedRoundRobin{seq: smoothSequence(weights), weights: table, src: src}
	}
	return &lockedWeightedRoundRobin{
		weights: weights, total: total, table: table, src: src,
		cur: make([]int, len(weights)),
	}
}

// leastRequest is power of two choices (Envoy's least_request): draw two
// distinct candidates at random in proportion to their weights and take the
// one with fewer requests in flight per unit of weight; a tie goes to the
// first draw, so an idle pool is shared in proportion to weight. Two random
// numbers, two binary searches and two atomic loads per pick, O(log n). An
// excluded endpoint is never a candidate; with a single candidate left it is
// picked.
type leastRequest struct {
	endpoints []*Endpoint
	weights   weightTable
	src       randSource
}

func (lr *leastRequest) pick(_ *http.Request, _ string, ex int) int {
	n := len(lr.endpoints)
	if ex >= 0 {
		n--
	}
	a := lr.weights.draw(lr.src, ex, -1)
	if n < 2 {
		return a
	}
	b := lr.weights.draw(lr.src, ex, a)
	// inFlight(b)/weight(b) < inFlight(a)/weight(a), without division.
	la := lr.endpoints[a].InFlight() * int64(lr.weights.weight(b))
	lb := lr.endpoints[b].InFlight() * int64(lr.weights.weight(a))
	if lb < la {
		return b
	}
	return a
}

// random picks an endpoint at random in proportion to its weight: one
// random number and a binary search over cumulative weights, O(log n).
type random struct {
	weights weightTable
	src     randSource
}

func (rp *random) pick(_ *http.Request, _ string, ex int) int {
	return rp.weights.draw(rp.src, ex, -1)
}

// gcd returns the greatest common divisor of positive a and b.
func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// reduceWeights divides weights by their GCD, so 100,100 balances like
// 1,1 with a sequence or ring a hundred times smaller.
func reduceWeights(weights []int) []int {
	g := 0
	for _, w := range weights {
		g = gcd(w, g)
	}
	out := make([]int, len(weights))
	for i, w := range weights {
		out[i] = w / g
	}
	return out
}
