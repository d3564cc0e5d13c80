package traffic

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func canarySettings(weight int) Settings {
	return Settings{StablePool: "v1", CanaryPool: "v2", CanaryWeight: weight}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Key
		wantErr bool
	}{
		{"", Key{}, false},
		{"client_ip", Key{Kind: KeyClientIP}, false},
		{"header:X-User", Key{Kind: KeyHeader, Name: "X-User"}, false},
		{"cookie:session", Key{Kind: KeyCookie, Name: "session"}, false},
		{"session", Key{}, true},
		{"header:", Key{}, true},
		{"query:x", Key{}, true},
	}
	for _, tt := range tests {
		got, err := ParseKey(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseKey(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("ParseKey(%q).String() = %q, want the input back", tt.in, got.String())
		}
	}
}

// TestSplitExact checks that the split without a key is exact: any 100
// consecutive requests hold exactly weight canary requests, so 10% of
// 10,000 requests is exactly 1,000.
func TestSplitExact(t *testing.T) {
	t.Parallel()
	for _, w := range []int{0, 1, 7, 10, 33, 50, 99, 100} {
		t.Run(strconv.Itoa(w), func(t *testing.T) {
			t.Parallel()
			sp := NewSplit(canarySettings(w), nil)
			const n = 10000
			canary := make([]int, n+1) // prefix sums
			for i := range n {
				d := sp.Decide(nil, "")
				if d.Variant == VariantCanary && d.Pool != "v2" || d.Variant == VariantStable && d.Pool != "v1" {
					t.Fatalf("Decide = %+v: pool does not match variant", d)
				}
				canary[i+1] = canary[i]
				if d.Variant == VariantCanary {
					canary[i+1]++
				}
			}
			if got, want := canary[n], w*n/100; got != want {
				t.Errorf("canary requests = %d of %d, want %d", got, n, want)
			}
			for i := 0; i+100 <= n; i++ {
				if got := canary[i+100] - canary[i]; got != w {
					t.Fatalf("requests %d-%d hold %d canary requests, want %d", i, i+99, got, w)
				}
			}
		})
	}
}

// TestSplitExactConcurrent checks exactness when many goroutines decide at
// once.
func TestSplitExactConcurrent(t *testing.T) {
	t.Parallel()
	sp := NewSplit(canarySettings(10), nil)
	const workers, each = 8, 1250
	var mu sync.Mutex
	canary := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := 0
			for range each {
				if sp.Decide(nil, "").Variant == VariantCanary {
					c++
				}
			}
			mu.Lock()
			canary += c
			mu.Unlock()
		})
	}
	wg.Wait()
	if want := workers * each / 10; canary != want {
		t.Errorf("canary requests = %d of %d, want %d", canary, workers*each, want)
	}
}

// stickyRequest returns a request carrying key k as its sticky key kind,
// and the clientIP to pass along.
func stickyRequest(t testing.TB, kind KeyKind, k string) (*http.Request, string) {
	switch kind {
	case KeyHeader:
		return request(t, "X-User", k), ""
	case KeyCookie:
		return request(t, "Cookie", "a=b; session="+k+"; c=d"), ""
	}
	return request(t), k
}

// TestStickyNeverFlips checks that a key always gets the same variant
// while the weight is unchanged, whatever the traffic in between.
func TestStickyNeverFlips(t *testing.T) {
	t.Parallel()
	keys := map[KeyKind]Key{
		KeyHeader:   {Kind: KeyHeader, Name: "x-user"}, // canonicalized by the split
		KeyCookie:   {Kind: KeyCookie, Name: "session"},
		KeyClientIP: {Kind: KeyClientIP},
	}
	for kind, key := range keys {
		t.Run(key.String(), func(t *testing.T) {
			t.Parallel()
			s := canarySettings(30)
			s.Sticky = key
			sp := NewSplit(s, nil)
			type keyed struct {
				r     *http.Request
				ip    string
				first string
			}
			reqs := make([]keyed, 1000)
			for i := range reqs {
				r, ip := stickyRequest(t, kind, fmt.Sprintf("10.0.%d.%d", i/256, i%256))
				reqs[i] = keyed{r: r, ip: ip, first: sp.Decide(r, ip).Variant}
			}
			for round := 1; round < 100; round++ {
				for i, k := range reqs {
					if got := sp.Decide(k.r, k.ip).Variant; got != k.first {
						t.Fatalf("round %d: key %d went to %s, first to %s", round, i, got, k.first)
					}
				}
				sp.Decide(nil, "") // keyless traffic must not disturb sticky keys
			}
		})
	}
}

// TestStickyDistribution checks that sticky keys split close to the weight
// over many keys, and that raising the weight only moves keys to the
// canary.
func TestStickyDistribution(t *testing.T) {
	t.Parallel()
	const keys = 100000
	prev := make([]bool, keys)
	for _, w := range []int{1, 10, 25, 50, 90} {
		s := canarySettings(w)
		s.Sticky = Key{Kind: KeyClientIP}
		sp := NewSplit(s, nil)
		canary := 0
		for i := range keys {
			ip := "user-" + strconv.Itoa(i)
			c := sp.Decide(nil, ip).Variant == VariantCanary
			if prev[i] && !c {
				t.Fatalf("weight %d: key %q left the canary when the weight rose", w, ip)
			}
			prev[i] = c
			if c {
				canary++
			}
		}
		// Binomial standard deviation is at most 0.16 points here; 0.5
		// points is over three of them.
		if got := float64(canary) * 100 / keys; got < float64(w)-0.5 || got > float64(w)+0.5 {
			t.Errorf("weight %d: %.2f%% of keys on the canary, want within 0.5 points", w, got)
		}
	}
}

// TestStickyMissingKey checks that requests without their sticky key fall
// back to the exact counter split.
func TestStickyMissingKey(t *testing.T) {
	t.Parallel()
	s := canarySettings(20)
	s.Sticky = Key{Kind: KeyCookie, Name: "session"}
	sp := NewSplit(s, nil)
	r := request(t, "Cookie", "other=1; session=")
	canary := 0
	for range 1000 {
		if sp.Decide(r, "10.0.0.1").Variant == VariantCanary {
			canary++
		}
	}
	if canary != 200 {
		t.Errorf("canary requests without a key = %d of 1000, want 200", canary)
	}
}

// TestCohortsBeforeSplit checks that a mapped cohort wins over the split
// (and over a brake), and that unknown cohorts fall through.
func TestCohortsBeforeSplit(t *testing.T) {
	t.Parallel()
	mappings := map[string]string{"beta": "v2", "stable": "v1", "gamma": "v3"}
	tests := []struct {
		desc   string
		cohort CohortSettings
		req    []string
		want   Decision
	}{
		{"header", CohortSettings{Header: "x-cohort"}, []string{"X-Cohort", "gamma"}, Decision{"v3", "cohort:gamma"}},
		{"header beta", CohortSettings{Header: "X-Cohort"}, []string{"X-Cohort", "beta"}, Decision{"v2", "cohort:beta"}},
		{"cookie", CohortSettings{Cookie: "cohort"}, []string{"Cookie", `cohort="gamma"`}, Decision{"v3", "cohort:gamma"}},
		{"header case matters", CohortSettings{Header: "X-Cohort"}, []string{"X-Cohort", "Gamma"}, Decision{"v1", "stable"}},
		{"unknown cohort", CohortSettings{Header: "X-Cohort"}, []string{"X-Cohort", "delta"}, Decision{"v1", "stable"}},
		{"no cohort", CohortSettings{Header: "X-Cohort"}, nil, Decision{"v1", "stable"}},
		{"neither header nor cookie", CohortSettings{}, []string{"Cookie", "=gamma", "X-Cohort", "gamma"}, Decision{"v1", "stable"}},
		{"header wins over cookie", CohortSettings{Header: "X-Cohort", Cookie: "cohort"},
			[]string{"Cookie", "cohort=gamma"}, Decision{"v1", "stable"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			c := tt.cohort
			c.Mappings = mappings
			// Weight 0: anything but stable comes from the cohort.
			sp := NewSplit(Settings{StablePool: "v1", CanaryPool: "v2", Cohort: &c}, nil)
			if got := sp.Decide(request(t, tt.req...), ""); got != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}

	c := &CohortSettings{Header: "X-Cohort", Mappings: mappings}
	sp := NewSplit(Settings{StablePool: "v1", CanaryPool: "v2", CanaryWeight: 100, Cohort: c}, nil)
	if got, want := sp.Decide(request(t, "X-Cohort", "stable"), ""), (Decision{"v1", "cohort:stable"}); got != want {
		t.Errorf("weight 100: Decide(stable cohort) = %+v, want %+v", got, want)
	}
	if got, want := sp.Decide(request(t), ""), (Decision{"v2", "canary"}); got != want {
		t.Errorf("weight 100: Decide(no cohort) = %+v, want %+v", got, want)
	}
	// The caller's map is copied.
	mappings["late"] = "v9"
	if got := sp.Decide(request(t, "X-Cohort", "late"), ""); got.Variant != VariantCanary {
		t.Errorf("Decide(cohort added to the caller's map later) = %+v, want the split", got)
	}
}

func TestZeroSettings(t *testing.T) {
	t.Parallel()
	sp := NewSplit(Settings{CanaryWeight: 50}, nil) // no canary pool: no canary
	for range 10 {
		if got := sp.Decide(request(t), ""); got != (Decision{Variant: VariantStable}) {
			t.Fatalf("Decide = %+v, want the route's pool, stable", got)
		}
	}
	st := sp.Stats()
	if st.ConfiguredWeight != 50 || st.EffectiveWeight != 0 || len(st.Variants) != 1 {
		t.Errorf("Stats = %+v, want configured 50, effective 0, stable only", st)
	}

	// A cookie key without a name is no key: the split stays exact.
	s := canarySettings(50)
	s.Sticky = Key{Kind: KeyCookie}
	sp = NewSplit(s, nil)
	r := request(t, "Cookie", "=same")
	canary := 0
	for range 100 {
		if sp.Decide(r, "").Variant == VariantCanary {
			canary++
		}
	}
	if canary != 50 {
		t.Errorf("sticky cookie without a name: %d of 100 on the canary, want 50", canary)
	}
}

func TestCookieValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cookies []string
		want    string
		wantOK  bool
	}{
		{[]string{"session=abc"}, "abc", true},
		{[]string{"a=1; session=abc; b=2"}, "abc", true},
		{[]string{"a=1;session=abc"}, "abc", true},
		{[]string{" session=abc "}, "abc", true},
		{[]string{"session = abc"}, " abc", true},
		{[]string{"session= a b "}, " a b", true},
		{[]string{`session="abc"`}, "abc", true},
		{[]string{"a=1", "session=abc"}, "abc", true}, // HTTP/2 splits cookies
		{[]string{"session=abc; session=def"}, "abc", true},
		{[]string{"sessions=abc; xsession=abc"}, "", false},
		{[]string{"Session=abc"}, "", false},
		{[]string{"session="}, "", false},
		{[]string{`session=""`}, "", false},
		{[]string{"session"}, "", false},
		{[]string{";;; session=a=b ;"}, "a=b", true},
		{nil, "", false},
	}
	for _, tt := range tests {
		h := http.Header{"Cookie": tt.cookies}
		got, ok := cookieValue(h, "session")
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("cookieValue(%q) = %q, %v; want %q, %v", tt.cookies, got, ok, tt.want, tt.wantOK)
		}
	}
}

// FuzzCookieValue checks that the allocation-free parser agrees with
// net/http whenever net/http accepts every pair of the line.
func FuzzCookieValue(f *testing.F) {
	f.Add("a=1; session=abc; b=2", "session")
	f.Add(`session="quoted"`, "session")
	f.Add(" x=y ;z=", "x")
	f.Fuzz(func(t *testing.T, line, name string) {
		got, ok := cookieValue(http.Header{"Cookie": {line}}, name)
		r := &http.Request{Header: http.Header{"Cookie": {line}}}
		pairs := 0
		for _, p := range strings.Split(line, ";") {
			if strings.Trim(p, " \t") == "" {
				continue
			}
			if !strings.Contains(p, "=") {
				return // a bare value: net/http takes it for a name, this parser skips it
			}
			pairs++
		}
		if len(r.Cookies()) != pairs {
			return // net/http dropped a malformed pair this parser may keep
		}
		c, err := r.Cookie(name)
		wantOK := err == nil && c.Value != ""
		if ok != wantOK || (ok && got != c.Value) {
			t.Errorf("cookieValue(%q, %q) = %q, %v; net/http says %v, %v", line, name, got, ok, c, err)
		}
	})
}
