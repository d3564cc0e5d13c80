package upstream

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

// hashPool builds a consistent_hash pool keyed on header X-User.
func hashPool(t *testing.T, s *State, eps []EndpointConfig) *Pool {
	t.Helper()
	return mustBuild(t, s, PoolConfig{
		ID: "ch", Balancer: ConsistentHash, Endpoints: eps,
		HashKey: HashKey{Kind: HashHeader, Name: "X-User"},
	})
}

func userRequest(user string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	r.Header.Set("X-User", user)
	return r
}

func TestConsistentHashStable(t *testing.T) {
	t.Parallel()
	s := newTestState(t, nil)
	eps := weighted(1, 1, 1, 1, 1)
	p := hashPool(t, s, eps)
	reversed := slices.Clone(eps)
	slices.Reverse(reversed)
	p2 := hashPool(t, newTestState(t, nil), reversed)
	for i := range 200 {
		r := userRequest("user-" + strconv.Itoa(i))
		first := p.Pick(r, "", nil)
		for range 3 {
			if got := p.Pick(r, "", nil); got != first {
				t.Fatalf("Pick(user-%d) = %s, then %s; want the same endpoint", i, first.Address(), got.Address())
			}
		}
		// Another State (another proxy instance) with the endpoints in
		// another order maps the key to the same address.
		if got := p2.Pick(r, "", nil); got.Address() != first.Address() {
			t.Errorf("Pick(user-%d) on a reordered pool = %s, want %s", i, got.Address(), first.Address())
		}
	}
}

func TestConsistentHashMinimalRemap(t *testing.T) {
	t.Parallel()
	const n, keys, removed = 10, 20000, 3
	s := newTestState(t, nil)
	all := weighted(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	before := hashPool(t, s, all)
	after := hashPool(t, s, slices.Delete(slices.Clone(all), removed, removed+1))
	gone := before.Endpoints()[removed]
	moved := 0
	for i := range keys {
		r := userRequest("user-" + strconv.Itoa(i))
		was, is := before.Pick(r, "", nil), after.Pick(r, "", nil)
		if was == gone {
			moved++
			continue
		}
		if is != was {
			t.Fatalf("key user-%d moved from %s to %s although its endpoint stayed", i, was.Address(), is.Address())
		}
	}
	if share := float64(moved) / keys; math.Abs(share-1.0/n) > 0.04 {
		t.Errorf("removing 1 of %d endpoints moved %.3f of the keys, want about %.3f", n, share, 1.0/n)
	}
}

func TestConsistentHashWeights(t *testing.T) {
	t.Parallel()
	s := newTestState(t, nil)
	p := hashPool(t, s, weighted(1, 3))
	const keys = 20000
	heavy := 0
	for i := range keys {
		if p.Pick(userRequest("u"+strconv.Itoa(i)), "", nil) == p.Endpoints()[1] {
			heavy++
		}
	}
	if share := float64(heavy) / keys; math.Abs(share-0.75) > 0.05 {
		t.Errorf("weight 3 of 4 got %.3f of the keys, want about 0.75", share)
	}
}

func TestConsistentHashKeySources(t *testing.T) {
	t.Parallel()
	eps := weighted(1, 1, 1, 1, 1, 1, 1, 1)
	s := newTestState(t, nil)
	// A header name given in lower case still matches.
	byHeader := mustBuild(t, s, PoolConfig{ID: "h", Balancer: ConsistentHash, Endpoints: eps, HashKey: HashKey{Kind: HashHeader, Name: "x-user"}})
	byCookie := mustBuild(t, s, PoolConfig{ID: "c", Balancer: ConsistentHash, Endpoints: eps, HashKey: HashKey{Kind: HashCookie, Name: "sid"}})
	byIP := mustBuild(t, s, PoolConfig{ID: "i", Balancer: ConsistentHash, Endpoints: eps, HashKey: HashKey{Kind: HashClientIP}})
	for i := range 100 {
		key := "k" + strconv.Itoa(i)
		want := byIP.Pick(nil, key, nil).Address()
		r := userRequest(key)
		r.Header.Add("Cookie", "theme=dark; sid="+key+"; x=1")
		// The same key string lands on the same address whatever its source.
		if got := byHeader.Pick(r, "", nil).Address(); got != want {
			t.Errorf("header key %q -> %s, want %s", key, got, want)
		}
		if got := byCookie.Pick(r, "", nil).Address(); got != want {
			t.Errorf("cookie key %q -> %s, want %s", key, got, want)
		}
	}
	// Without the key the pick is random, so it spreads over the pool.
	seen := make(map[*Endpoint]bool)
	empty := userRequest("")
	empty.Header.Del("X-User")
	for range 200 {
		seen[byHeader.Pick(empty, "", nil)] = true
		seen[byCookie.Pick(empty, "", nil)] = true
		seen[byIP.Pick(nil, "", nil)] = true
	}
	if len(seen) < 3*len(eps)/2 {
		t.Errorf("keyless picks used %d endpoints of 3 pools of %d, want them spread", len(seen), len(eps))
	}
}

func TestConsistentHashExcludeIsStable(t *testing.T) {
	t.Parallel()
	s := newTestState(t, nil)
	p := hashPool(t, s, weighted(1, 1, 1, 1))
	for i := range 50 {
		r := userRequest("u" + strconv.Itoa(i))
		first := p.Pick(r, "", nil)
		alt := p.Pick(r, "", first)
		if alt == first {
			t.Fatalf("Pick(u%d, exclude %s) returned it", i, first.Address())
		}
		if again := p.Pick(r, "", first); again != alt {
			t.Errorf("Pick(u%d, exclude %s) = %s then %s, want the same fallback", i, first.Address(), alt.Address(), again.Address())
		}
	}
}

func TestCookieValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lines []string
		name  string
		want  string
	}{
		{lines: []string{"sid=abc"}, name: "sid", want: "abc"},
		{lines: []string{"a=1; sid=abc; b=2"}, name: "sid", want: "abc"},
		{lines: []string{"a=1;sid=abc"}, name: "sid", want: "abc"},
		{lines: []string{`sid="quoted"`}, name: "sid", want: "quoted"},
		{lines: []string{"a=1", "sid=second-line"}, name: "sid", want: "second-line"},
		{lines: []string{"SID=upper"}, name: "sid", want: ""},
		{lines: []string{"xsid=1; sidx=2"}, name: "sid", want: ""},
		{lines: []string{"sid"}, name: "sid", want: ""},
		{lines: nil, name: "sid", want: ""},
	}
	for _, tt := range tests {
		if got := cookieValue(tt.lines, tt.name); got != tt.want {
			t.Errorf("cookieValue(%q, %q) = %q, want %q", tt.lines, tt.name, got, tt.want)
		}
	}
}

func TestRingSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		weights    []int
		wantPoints int
	}{
		{weights: []int{1, 1, 1}, wantPoints: 300},
		{weights: []int{100, 100, 100}, wantPoints: 300}, // reduced by the GCD
		{weights: []int{1, 2}, wantPoints: 300},
		{weights: []int{1000, 1}, wantPoints: 65535}, // scaled: 1000*65536/1001 + 65536/1001
	}
	for _, tt := range tests {
		addrs := make([]string, len(tt.weights))
		for i := range addrs {
			addrs[i] = "127.0.0.1:" + strconv.Itoa(1000+i)
		}
		ch := newConsistentHash(HashKey{Kind: HashClientIP}, addrs, tt.weights, runtimeRand{})
		if got := len(ch.hashes); got != tt.wantPoints {
			t.Errorf("ring for weights %v has %d points, want %d", tt.weights, got, tt.wantPoints)
		}
		if !slices.IsSorted(ch.hashes) {
			t.Errorf("ring for weights %v is not sorted", tt.weights)
		}
	}
}
