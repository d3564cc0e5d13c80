package upstream

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// guardedConfigs are pools of four endpoints with passive health, one per
// balancer.
func guardedConfigs() []PoolConfig {
	passive := &PassiveHealth{ConsecutiveFailures: 1, EjectionDuration: time.Minute}
	var cfgs []PoolConfig
	for _, b := range []Balancer{RoundRobin, WeightedRoundRobin, LeastRequest, Random, ConsistentHash} {
		cfg := PoolConfig{ID: b.String(), Balancer: b, Endpoints: weighted(1, 2, 3, 4), Passive: passive}
		if b == ConsistentHash {
			cfg.HashKey = HashKey{Kind: HashClientIP}
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

// setDown marks endpoints by pattern: 'd' active-unhealthy, 'x' ejected
// (for a minute), '.' available.
func setDown(p *Pool, clock *fakeClock, pattern string) {
	now := clock.Now().UnixNano()
	for i, e := range p.Endpoints() {
		switch pattern[i] {
		case 'd':
			e.down.Store(true)
		case 'x':
			e.eject(now, now+int64(time.Minute))
		}
	}
}

func indexOf(p *Pool, e *Endpoint) int {
	for i, x := range p.Endpoints() {
		if x == e {
			return i
		}
	}
	return -1
}

func TestSelectSkipsUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		exclude int    // -1: none
		want    string // endpoints Select may return, as '+'; "" = trickle
	}{
		{pattern: "....", exclude: -1, want: "++++"},
		{pattern: "d.x.", exclude: -1, want: ".+.+"},
		{pattern: "xxx.", exclude: -1, want: "...+"},
		{pattern: "d...", exclude: 1, want: "..++"},
		{pattern: "dd.x", exclude: 2, want: "..+."}, // the excluded one is the only one left
		{pattern: "....", exclude: 0, want: ".+++"},
	}
	for _, cfg := range guardedConfigs() {
		for _, tt := range tests {
			name := cfg.ID + "/" + tt.pattern + "/" + strconv.Itoa(tt.exclude)
			clock := newFakeClock()
			s := newClockState(t, nil, clock)
			p := commitPool(t, s, cfg)
			setDown(p, clock, tt.pattern)
			var exclude *Endpoint
			if tt.exclude >= 0 {
				exclude = p.Endpoints()[tt.exclude]
			}
			seen := []byte("....")
			for i := range 400 {
				e, err := p.Select(nil, "192.0.2."+strconv.Itoa(i%200), exclude)
				if err != nil || e == nil {
					t.Fatalf("%s: Select = %v, %v; want an endpoint", name, e, err)
				}
				j := indexOf(p, e)
				if tt.want[j] != '+' {
					t.Fatalf("%s: Select returned endpoint %d, want one of %q", name, j, tt.want)
				}
				seen[j] = '+'
			}
			if cfg.Balancer != ConsistentHash && string(seen) != tt.want {
				// Every balancer but hashing spreads over all candidates.
				t.Errorf("%s: Select reached %q, want %q", name, seen, tt.want)
			}
			if got, want := p.HealthyCount(), countAvailable(tt.pattern); got != want {
				t.Errorf("%s: HealthyCount() = %d, want %d", name, got, want)
			}
		}
	}
}

func countAvailable(pattern string) int {
	n := 0
	for _, c := range pattern {
		if c == '.' {
			n++
		}
	}
	return n
}

// TestSelectRoundRobinNext: an unavailable round robin pick moves to the
// next endpoint in config order.
func TestSelectRoundRobinNext(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newClockState(t, nil, clock)
	p := commitPool(t, s, PoolConfig{Endpoints: weighted(1, 1, 1, 1), Passive: &PassiveHealth{ConsecutiveFailures: 1}})
	setDown(p, clock, ".d..")
	var got []int
	for range 8 {
		e, _ := p.Select(nil, "", nil)
		got = append(got, indexOf(p, e))
	}
	if letters(got) != "accdaccd" {
		t.Errorf("round_robin with b down selects %q, want %q", letters(got), "accdaccd")
	}
}

// TestSelectHashRing: a key whose endpoint is down goes where it would go
// if the endpoint were removed: the next owner on the ring (which Pick
// with exclude also walks to), and every other key stays put.
func TestSelectHashRing(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newClockState(t, nil, clock)
	cfg := PoolConfig{Balancer: ConsistentHash, HashKey: HashKey{Kind: HashHeader, Name: "X-User"},
		Endpoints: weighted(1, 1, 1, 1, 1), Passive: &PassiveHealth{ConsecutiveFailures: 1}}
	p := commitPool(t, s, cfg)
	setDown(p, clock, "..x..")
	down := p.Endpoints()[2]
	moved := 0
	for i := range 500 {
		r := userRequest("user-" + strconv.Itoa(i))
		home := p.Pick(r, "", nil)
		got, err := p.Select(r, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := home
		if home == down {
			want = p.Pick(r, "", down)
			moved++
		}
		if got != want {
			t.Fatalf("Select(user-%d) = %s, want %s (home %s)", i, got.Address(), want.Address(), home.Address())
		}
	}
	if moved == 0 {
		t.Fatal("no key hashed to the down endpoint; the test proves nothing")
	}
}

// TestSelectTrickle: with nothing available, one request per second per
// pool gets through, shared by every view of the pool.
func TestSelectTrickle(t *testing.T) {
	t.Parallel()
	for _, cfg := range guardedConfigs() {
		clock := newFakeClock()
		s := newClockState(t, nil, clock)
		p := commitPool(t, s, cfg)
		setDown(p, clock, "dxdx")
		other := mustBuild(t, s, cfg) // the next snapshot's view

		admitted := func(p *Pool, n int) int {
			var wg sync.WaitGroup
			var ok atomic.Int64
			for range 4 {
				wg.Go(func() {
					for range n {
						e, err := p.Select(nil, "192.0.2.1", nil)
						switch {
						case err == nil && e != nil:
							ok.Add(1)
						case !errors.Is(err, ErrNoHealthyUpstream) || e != nil:
							t.Errorf("%s: Select = %v, %v; want nil, ErrNoHealthyUpstream", cfg.ID, e, err)
						}
					}
				})
			}
			wg.Wait()
			return int(ok.Load())
		}
		steps := []struct {
			advance time.Duration
			view    *Pool
			want    int
		}{
			{view: p, want: 1},
			{advance: 999 * time.Millisecond, view: other, want: 0},
			{advance: time.Millisecond, view: other, want: 1},
			{advance: 500 * time.Millisecond, view: p, want: 0},
			{advance: 10 * time.Second, view: p, want: 1},
		}
		for i, st := range steps {
			clock.Advance(st.advance)
			if got := admitted(st.view, 50); got != st.want {
				t.Errorf("%s: step %d: %d of 200 requests admitted, want %d", cfg.ID, i, got, st.want)
			}
		}
		if p.HealthyCount() != 0 {
			t.Errorf("%s: HealthyCount() = %d, want 0", cfg.ID, p.HealthyCount())
		}
		// Once an ejection ends the pool serves normally.
		clock.Advance(time.Minute)
		if got := admitted(p, 10); got != 40 {
			t.Errorf("%s: after the ejections ended %d of 40 admitted, want 40", cfg.ID, got)
		}
	}
}

// TestSelectWithoutHealth: a pool without health settings ignores endpoint
// health, exactly like Pick.
func TestSelectWithoutHealth(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newClockState(t, nil, clock)
	p := commitPool(t, s, PoolConfig{Endpoints: weighted(1, 1, 1)})
	setDown(p, clock, "dx.")
	var got []int
	for range 6 {
		e, err := p.Select(nil, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, indexOf(p, e))
	}
	if letters(got) != "abcabc" {
		t.Errorf("Select without health settings = %q, want %q (as Pick)", letters(got), "abcabc")
	}
	if p.HealthyCount() != 3 {
		t.Errorf("HealthyCount() = %d, want 3", p.HealthyCount())
	}
	var zero Pool
	if e, err := zero.Select(nil, "", nil); e != nil || !errors.Is(err, ErrNoHealthyUpstream) {
		t.Errorf("zero Pool Select = %v, %v; want nil, ErrNoHealthyUpstream", e, err)
	}
}

// TestSelectAllocs: selection and reporting allocate nothing, healthy or
// not.
func TestSelectAllocs(t *testing.T) {
	r := userRequest("user-1")
	for _, cfg := range guardedConfigs() {
		for _, pattern := range []string{"....", "x.d.", "xxdd"} {
			clock := newFakeClock()
			s := newClockState(t, nil, clock)
			p := commitPool(t, s, cfg)
			setDown(p, clock, pattern)
			ex := p.Endpoints()[1]
			allocs := testing.AllocsPerRun(1000, func() {
				_, _ = p.Select(r, "192.0.2.7", ex)
				ex.Report(true, time.Millisecond)
			})
			if allocs != 0 {
				t.Errorf("%s with %q: Select+Report allocates %v times, want 0", cfg.ID, pattern, allocs)
			}
		}
	}
}
