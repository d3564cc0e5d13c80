package upstream

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// picks returns the endpoint indexes of n picks from p.
func picks(p *Pool, n int) []int {
	index := make(map[*Endpoint]int)
	for i, e := range p.Endpoints() {
		index[e] = i
	}
	out := make([]int, n)
	for i := range out {
		out[i] = index[p.Pick(nil, "", nil)]
	}
	return out
}

// letters renders endpoint indexes as a, b, c... for readable sequences.
func letters(idx []int) string {
	var b strings.Builder
	for _, i := range idx {
		b.WriteByte(byte('a' + i))
	}
	return b.String()
}

func TestRoundRobinCycle(t *testing.T) {
	t.Parallel()
	s := newTestState(t, nil)
	p := mustBuild(t, s, PoolConfig{ID: "rr", Balancer: RoundRobin, Endpoints: weighted(5, 1, 1)})
	if got, want := letters(picks(p, 7)), "abcabca"; got != want {
		t.Errorf("round_robin picks = %q, want %q (weights ignored)", got, want)
	}
}

func TestSmoothWeightedRoundRobinSequence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		weights []int
		want    string
	}{
		{weights: []int{5, 1, 1}, want: "aabacaa" + "aabacaa"},
		{weights: []int{2, 1}, want: "aba" + "aba"},
		{weights: []int{1, 1, 1}, want: "abc" + "abc"},
		{weights: []int{100, 100}, want: "ab" + "ab"},
		{weights: []int{0, 3}, want: "babb" + "babb"}, // weight 0 reads as 1
		{weights: []int{4, 2, 1}, want: "abacaba" + "abacaba"},
	}
	for _, tt := range tests {
		s := newTestState(t, nil)
		p := mustBuild(t, s, PoolConfig{ID: "wrr", Balancer: WeightedRoundRobin, Endpoints: weighted(tt.weights...)})
		if got := letters(picks(p, len(tt.want))); got != tt.want {
			t.Errorf("weighted_round_robin%v picks = %q, want %q", tt.weights, got, tt.want)
		}
		// The locked fallback must produce the same sequence.
		reduced := reduceWeights(p.weights)
		locked := &lockedWeightedRoundRobin{weights: reduced, total: sum(reduced), cur: make([]int, len(reduced))}
		var got []int
		for range len(tt.want) {
			got = append(got, locked.pick(nil, "", -1))
		}
		if letters(got) != tt.want {
			t.Errorf("locked weighted_round_robin%v picks = %q, want %q", tt.weights, letters(got), tt.want)
		}
	}
}

func sum(ws []int) int {
	n := 0
	for _, w := range ws {
		n += w
	}
	return n
}

func TestWeightedRoundRobinProportions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		weights    []int
		wantLocked bool
	}{
		{name: "precomputed", weights: []int{5, 3, 2}},
		{name: "locked fallback", weights: []int{70001, 29999}, wantLocked: true},
	}
	for _, tt := range tests {
		s := newTestState(t, nil)
		p := mustBuild(t, s, PoolConfig{ID: "wrr", Balancer: WeightedRoundRobin, Endpoints: weighted(tt.weights...)})
		if _, locked := p.picker.(*lockedWeightedRoundRobin); locked != tt.wantLocked {
			t.Errorf("%s: picker %T, want locked %v", tt.name, p.picker, tt.wantLocked)
		}
		const n = 100000
		counts := make([]int, len(tt.weights))
		for _, i := range picks(p, n) {
			counts[i]++
		}
		total := sum(tt.weights)
		for i, w := range tt.weights {
			// Smooth WRR is exact over each period, so the error is at most
			// one period's rounding.
			want := n * w / total
			if math.Abs(float64(counts[i]-want)) > 1 {
				t.Errorf("%s: endpoint %d picked %d times of %d, want %d", tt.name, i, counts[i], n, want)
			}
		}
	}
}

func TestLeastRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		weights  []int
		inFlight []int
		// check gets the pick counts over 10000 picks.
		check func(counts []int) string
	}{
		{
			name: "single endpoint", weights: []int{1}, inFlight: []int{7},
			check: func(c []int) string { return expect(c[0] == 10000, "always the only endpoint") },
		},
		{
			name: "two endpoints prefers idle", weights: []int{1, 1}, inFlight: []int{3, 0},
			check: func(c []int) string { return expect(c[1] == 10000, "always the idle endpoint") },
		},
		{
			name: "busiest never picked", weights: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, inFlight: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
			check: func(c []int) string {
				// With distinct candidates, endpoint k wins only against the
				// 9-k busier ones: P(k) = 2(9-k)/90.
				for k := range c {
					want := 10000 * 2 * (9 - k) / 90
					if math.Abs(float64(c[k]-want)) > 0.15*float64(want)+30 {
						return "picks far from 2(9-k)/90"
					}
				}
				return expect(c[9] == 0, "the busiest endpoint never picked")
			},
		},
		{
			name: "idle pool shared by weight", weights: []int{3, 1}, inFlight: []int{0, 0},
			check: func(c []int) string { return expect(near(c[0], 7500, 0.03), "about 3/4 to the heavier endpoint") },
		},
		{
			name: "load per unit of weight", weights: []int{4, 1}, inFlight: []int{3, 1},
			check: func(c []int) string { return expect(c[0] == 10000, "always the endpoint with 3/4 < 1/1") },
		},
	}
	for _, tt := range tests {
		s := newTestState(t, nil)
		p := mustBuild(t, s, PoolConfig{ID: "lr", Balancer: LeastRequest, Endpoints: weighted(tt.weights...)})
		for i, n := range tt.inFlight {
			for range n {
				p.Endpoints()[i].Acquire()
			}
			if got := p.Endpoints()[i].InFlight(); got != int64(n) {
				t.Fatalf("%s: InFlight() = %d after %d Acquire, want %d", tt.name, got, n, n)
			}
		}
		counts := make([]int, len(tt.weights))
		for _, i := range picks(p, 10000) {
			counts[i]++
		}
		if msg := tt.check(counts); msg != "" {
			t.Errorf("%s: counts %v, want %s", tt.name, counts, msg)
		}
	}
}

// expect returns "" when ok, else what was expected.
func expect(ok bool, what string) string {
	if ok {
		return ""
	}
	return what
}

// near reports whether got is within tolerance (a fraction) of want.
func near(got, want int, tolerance float64) bool {
	return math.Abs(float64(got-want)) <= tolerance*float64(want)
}

func TestRandomProportions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		weights []int
	}{
		{weights: []int{1, 2, 3, 4}},
		{weights: []int{1, 1, 1}},
		{weights: []int{100, 1}},
	}
	for _, tt := range tests {
		s := newTestState(t, nil)
		p := mustBuild(t, s, PoolConfig{ID: "rnd", Balancer: Random, Endpoints: weighted(tt.weights...)})
		const n = 100000
		counts := make([]int, len(tt.weights))
		for _, i := range picks(p, n) {
			counts[i]++
		}
		total := sum(tt.weights)
		for i, w := range tt.weights {
			want := n * w / total
			// Five standard deviations of a binomial count.
			tol := 5*math.Sqrt(float64(want)) + 1
			if math.Abs(float64(counts[i]-want)) > tol {
				t.Errorf("random%v: endpoint %d picked %d times, want %d ± %.0f", tt.weights, i, counts[i], want, tol)
			}
		}
	}
}

func TestPickExclude(t *testing.T) {
	t.Parallel()
	balancers := []Balancer{RoundRobin, WeightedRoundRobin, LeastRequest, Random, ConsistentHash}
	tests := []struct {
		name    string
		weights []int
		exclude int // index into the pool, -1 for an endpoint of another pool
		// wantOnly: the exclude target is the only endpoint, so it is returned.
		wantOnly bool
	}{
		{name: "three endpoints", weights: []int{5, 1, 1}, exclude: 0},
		{name: "light excluded", weights: []int{5, 1, 1}, exclude: 2},
		{name: "two endpoints", weights: []int{1, 1}, exclude: 1},
		{name: "single endpoint", weights: []int{1}, exclude: 0, wantOnly: true},
		{name: "foreign endpoint", weights: []int{1, 1}, exclude: -1},
	}
	for _, b := range balancers {
		for _, tt := range tests {
			s := newTestState(t, nil)
			cfg := PoolConfig{ID: "p", Balancer: b, Endpoints: weighted(tt.weights...)}
			if b == ConsistentHash {
				cfg.HashKey = HashKey{Kind: HashClientIP}
			}
			p := mustBuild(t, s, cfg)
			var ex *Endpoint
			if tt.exclude >= 0 {
				ex = p.Endpoints()[tt.exclude]
			} else {
				other := mustBuild(t, s, PoolConfig{ID: "other", Endpoints: weighted(1)})
				ex = other.Endpoints()[0]
			}
			seen := make(map[*Endpoint]int)
			for i := range 1000 {
				got := p.Pick(nil, "10.0.0."+strconv.Itoa(i%256), ex)
				if got == nil {
					t.Fatalf("%v/%s: Pick = nil", b, tt.name)
				}
				seen[got]++
			}
			if tt.wantOnly {
				if seen[ex] != 1000 {
					t.Errorf("%v/%s: Pick(exclude the only endpoint) returned it %d/1000 times, want always", b, tt.name, seen[ex])
				}
				continue
			}
			if seen[ex] != 0 {
				t.Errorf("%v/%s: Pick returned the excluded endpoint %d/1000 times", b, tt.name, seen[ex])
			}
			wantSeen := len(tt.weights)
			if tt.exclude >= 0 {
				wantSeen--
			}
			if len(seen) != wantSeen {
				t.Errorf("%v/%s: Pick used %d endpoints, want %d", b, tt.name, len(seen), wantSeen)
			}
		}
	}
}

func TestWeightTableDraw(t *testing.T) {
	t.Parallel()
	wt := newWeightTable([]int{1, 2, 3, 4})
	tests := []struct {
		skipA, skipB int
		want         []float64 // expected shares
	}{
		{skipA: -1, skipB: -1, want: []float64{.1, .2, .3, .4}},
		{skipA: 3, skipB: -1, want: []float64{1. / 6, 2. / 6, 3. / 6, 0}},
		{skipA: 0, skipB: 2, want: []float64{0, 2. / 6, 0, 4. / 6}},
		{skipA: 2, skipB: 0, want: []float64{0, 2. / 6, 0, 4. / 6}},
		{skipA: 1, skipB: 3, want: []float64{.25, 0, .75, 0}},
	}
	for _, tt := range tests {
		src := &pcgSource{pcg: rand.NewPCG(3, 4)}
		const n = 60000
		counts := make([]int, 4)
		for range n {
			counts[wt.draw(src, tt.skipA, tt.skipB)]++
		}
		for i, share := range tt.want {
			want := int(share * n)
			if math.Abs(float64(counts[i]-want)) > 5*math.Sqrt(float64(want))+1 {
				t.Errorf("draw(skip %d, %d): index %d drawn %d times, want about %d", tt.skipA, tt.skipB, i, counts[i], want)
			}
		}
	}
}

// TestPickConcurrent runs every balancer from several goroutines, for the
// race detector.
func TestPickConcurrent(t *testing.T) {
	t.Parallel()
	s := newTestState(t, nil)
	pools := []*Pool{
		mustBuild(t, s, PoolConfig{ID: "rr", Balancer: RoundRobin, Endpoints: weighted(1, 1, 1)}),
		mustBuild(t, s, PoolConfig{ID: "wrr", Balancer: WeightedRoundRobin, Endpoints: weighted(5, 1, 1)}),
		mustBuild(t, s, PoolConfig{ID: "lwrr", Balancer: WeightedRoundRobin, Endpoints: weighted(70001, 1)}),
		mustBuild(t, s, PoolConfig{ID: "lr", Balancer: LeastRequest, Endpoints: weighted(1, 2, 3)}),
		mustBuild(t, s, PoolConfig{ID: "rnd", Balancer: Random, Endpoints: weighted(1, 2, 3)}),
		mustBuild(t, s, PoolConfig{ID: "ch", Balancer: ConsistentHash, HashKey: HashKey{Kind: HashClientIP}, Endpoints: weighted(1, 2, 3)}),
	}
	var wg sync.WaitGroup
	for _, p := range pools {
		for range 4 {
			wg.Go(func() {
				for i := range 2000 {
					e := p.Pick(nil, strconv.Itoa(i%1000), nil)
					e.Acquire()
					if p.Pick(nil, strconv.Itoa(i%1000), e) == e {
						t.Errorf("%s: Pick returned the excluded endpoint", p.ID())
					}
					e.Release()
				}
			})
		}
	}
	wg.Wait()
	for _, p := range pools {
		for _, e := range p.Endpoints() {
			if e.InFlight() != 0 {
				t.Errorf("%s: InFlight() = %d after balanced Acquire/Release, want 0", p.ID(), e.InFlight())
			}
		}
	}
}
