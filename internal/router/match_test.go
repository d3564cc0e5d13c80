package router

import (
	"net/http"
	"strings"
	"testing"
)

// req is one request of a table test and the outcome it wants. A zero
// wantStatus means Matched.
type req struct {
	desc                      string
	host, method, path, query string
	header                    http.Header
	wantID                    string // winner when Matched
	wantStatus                Status
	wantAllow                 string
	wantPrefix                string
}

// checkRequests compiles rules and checks every request against Match,
// and against the obviously correct reference (see checkAgainstReference).
func checkRequests(t *testing.T, rules []Rule[string], reqs []req) {
	t.Helper()
	tb, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	for _, r := range reqs {
		t.Run(r.desc, func(t *testing.T) {
			method := r.method
			if method == "" {
				method = http.MethodGet
			}
			want := r.wantStatus
			if want == 0 {
				want = Matched
			}
			got := tb.Match(r.host, method, r.path, r.query, r.header)
			if got.Status != want || gotID(got) != r.wantID || got.Allow != r.wantAllow || got.MatchedPrefix != r.wantPrefix {
				t.Errorf("Match(%q, %q, %q, %q) = %s %q allow %q prefix %q, want %s %q allow %q prefix %q",
					r.host, method, r.path, r.query, got.Status, gotID(got), got.Allow, got.MatchedPrefix,
					want, r.wantID, r.wantAllow, r.wantPrefix)
			}
			checkAgainstReference(t, tb, r.host, method, r.path, r.query, r.header)
		})
	}
}

func gotID[V any](res Result[V]) string {
	if res.Rule == nil {
		return ""
	}
	return res.Rule.ID
}

// checkAgainstReference checks Match against evaluate, which judges every
// rule on its own and sorts by precedence: the winner must be the first
// rule that matches fully, and without one the status must be
// MethodNotAllowed exactly when some rule failed only on the method.
func checkAgainstReference[V any](t *testing.T, tb *Table[V], host, method, path, query string, h http.Header) {
	t.Helper()
	got := tb.Match(host, method, path, query, h)
	r := request{host: hostname(host), method: method, path: Normalize(path), query: query, header: h}
	want, methodMiss := -1, false
	for _, ev := range tb.evaluate(&r) {
		if ev.verdict == verdictMatch {
			want = ev.id
			break
		}
		methodMiss = methodMiss || ev.verdict == verdictMethod
	}
	switch {
	case want >= 0:
		if got.Status != Matched || got.Rule != &tb.rules[want] {
			t.Errorf("Match(%q, %q, %q, %q) = %s rule %q, reference wants rule %d %q",
				host, method, path, query, got.Status, gotID(got), want, tb.rules[want].ID)
		}
	case methodMiss:
		if got.Status != MethodNotAllowed || got.Allow == "" {
			t.Errorf("Match(%q, %q, %q, %q) = %s allow %q, reference wants %s",
				host, method, path, query, got.Status, got.Allow, MethodNotAllowed)
		}
	default:
		if got.Status != NotFound {
			t.Errorf("Match(%q, %q, %q, %q) = %s %q, reference wants %s",
				host, method, path, query, got.Status, gotID(got), NotFound)
		}
	}
}

func TestMatchHosts(t *testing.T) {
	t.Parallel()
	rules := []Rule[string]{
		{ID: "none", PathPrefix: "/"},
		{ID: "regex-org", Host: `.*\.example\.org`, PathPrefix: "/"},
		{ID: "regex-any", Host: `[a-z0-9.-]+`, PathPrefix: "/"},
		{ID: "wild", Host: "*.example.com", PathPrefix: "/"},
		{ID: "wild-deeper", Host: "*.b.example.com", PathPrefix: "/"},
		{ID: "exact", Host: "api.example.com", PathPrefix: "/"},
		{ID: "exact-b", Host: "b.example.com", PathPrefix: "/"},
		{ID: "v6", Host: "[::1]", PathPrefix: "/"},
		{ID: "v4", Host: "127.0.0.1", PathPrefix: "/"},
	}
	checkRequests(t, rules, []req{
		{desc: "exact beats wildcard", host: "api.example.com", path: "/", wantID: "exact", wantPrefix: "/"},
		{desc: "port ignored", host: "api.example.com:8443", path: "/", wantID: "exact", wantPrefix: "/"},
		{desc: "case ignored", host: "API.Example.COM", path: "/", wantID: "exact", wantPrefix: "/"},
		{desc: "case and port", host: "API.EXAMPLE.com:80", path: "/x", wantID: "exact", wantPrefix: "/"},
		{desc: "trailing dot ignored", host: "api.example.com.", path: "/", wantID: "exact", wantPrefix: "/"},
		{desc: "wildcard one label", host: "a.example.com", path: "/", wantID: "wild", wantPrefix: "/"},
		{desc: "wildcard two labels", host: "x.y.example.com", path: "/", wantID: "wild", wantPrefix: "/"},
		{desc: "wildcard longest suffix", host: "a.b.example.com", path: "/", wantID: "wild-deeper", wantPrefix: "/"},
		{desc: "exact beats deeper wildcard", host: "b.example.com", path: "/", wantID: "exact-b", wantPrefix: "/"},
		{desc: "wildcard not apex, regex next", host: "example.com", path: "/", wantID: "regex-any", wantPrefix: "/"},
		{desc: "wildcard beats regex", host: "www.example.com", path: "/", wantID: "wild", wantPrefix: "/"},
		{desc: "regex case-insensitive", host: "WWW.Example.ORG:8080", path: "/", wantID: "regex-org", wantPrefix: "/"},
		{desc: "regex config order", host: "x.example.org", path: "/", wantID: "regex-org", wantPrefix: "/"},
		{desc: "regex anchored", host: "x.example.org-evil.net", path: "/", wantID: "regex-any", wantPrefix: "/"},
		{desc: "no host last", host: "under_score.net", path: "/", wantID: "none", wantPrefix: "/"},
		{desc: "empty host", host: "", path: "/", wantID: "none", wantPrefix: "/"},
		{desc: "ipv6 with port", host: "[::1]:8080", path: "/", wantID: "v6", wantPrefix: "/"},
		{desc: "ipv6 without port", host: "[::1]", path: "/", wantID: "v6", wantPrefix: "/"},
		{desc: "ipv4 with port", host: "127.0.0.1:9000", path: "/", wantID: "v4", wantPrefix: "/"},
	})
}

func TestMatchHostFallThrough(t *testing.T) {
	t.Parallel()
	rules := []Rule[string]{
		{ID: "exact-api", Host: "api.example.com", PathPrefix: "/api"},
		{ID: "exact-get", Host: "api.example.com", Path: "/only-get", Methods: []string{"GET"}},
		{ID: "wild-admin", Host: "*.example.com", PathPrefix: "/admin"},
		{ID: "regex-status", Host: `api\..*`, Path: "/status"},
		{ID: "catch-all", Host: "*"},
	}
	checkRequests(t, rules, []req{
		{desc: "exact group wins", host: "api.example.com", path: "/api/x", wantID: "exact-api", wantPrefix: "/api"},
		{desc: "exact group misses, wildcard", host: "api.example.com", path: "/admin/users", wantID: "wild-admin", wantPrefix: "/admin"},
		{desc: "wildcard misses, regex", host: "api.example.com", path: "/status", wantID: "regex-status"},
		{desc: "all miss, catch-all", host: "api.example.com", path: "/other", wantID: "catch-all"},
		{desc: "method miss falls through to catch-all", host: "api.example.com", method: "POST", path: "/only-get", wantID: "catch-all"},
	})
}

func TestMatchPaths(t *testing.T) {
	t.Parallel()
	rules := []Rule[string]{
		{ID: "none", Host: "h"},
		{ID: "regex-users", Host: "h", PathRegex: `/users/[0-9]+`},
		{ID: "regex-any-user", Host: "h", PathRegex: `/users/.*`},
		{ID: "root", Host: "h", PathPrefix: "/"},
		{ID: "api", Host: "h", PathPrefix: "/api"},
		{ID: "api-v1", Host: "h", PathPrefix: "/api/v1/"},
		{ID: "api-exact", Host: "h", Path: "/api/v1/exact"},
		{ID: "docs-slash", Host: "docs", PathPrefix: "/docs/"},
		{ID: "exact-only", Host: "e", Path: "/x"},
		{ID: "regex-only", Host: "r", PathRegex: `/users/[0-9]+`},
		{ID: "regex-later", Host: "r", PathRegex: `/users/1[a-z]*`},
		{ID: "none-only", Host: "r"},
	}
	checkRequests(t, rules, []req{
		{desc: "exact beats prefix", host: "h", path: "/api/v1/exact", wantID: "api-exact"},
		{desc: "longest prefix", host: "h", path: "/api/v1/other", wantID: "api-v1", wantPrefix: "/api/v1"},
		{desc: "prefix with trailing slash matches without", host: "h", path: "/api/v1", wantID: "api-v1", wantPrefix: "/api/v1"},
		{desc: "shorter prefix", host: "h", path: "/api/v2", wantID: "api", wantPrefix: "/api"},
		{desc: "prefix whole path", host: "h", path: "/api", wantID: "api", wantPrefix: "/api"},
		{desc: "prefix trailing slash path", host: "h", path: "/api/", wantID: "api", wantPrefix: "/api"},
		{desc: "prefix is segment-aware", host: "h", path: "/apix", wantID: "root", wantPrefix: "/"},
		{desc: "prefix beats regex", host: "h", path: "/users/12", wantID: "root", wantPrefix: "/"},
		{desc: "root prefix matches root", host: "h", path: "/", wantID: "root", wantPrefix: "/"},
		{desc: "slash prefix matches x/", host: "docs", path: "/docs/x", wantID: "docs-slash", wantPrefix: "/docs"},
		{desc: "slash prefix matches itself", host: "docs", path: "/docs/", wantID: "docs-slash", wantPrefix: "/docs"},
		{desc: "slash prefix matches without slash", host: "docs", path: "/docs", wantID: "docs-slash", wantPrefix: "/docs"},
		{desc: "slash prefix segment-aware", host: "docs", path: "/docsx", wantStatus: NotFound},
		{desc: "exact is exact", host: "e", path: "/x/", wantStatus: NotFound},
		{desc: "exact matches", host: "e", path: "/x", wantID: "exact-only"},
		{desc: "regex beats none", host: "r", path: "/users/12", wantID: "regex-only"},
		{desc: "regex config order", host: "r", path: "/users/1", wantID: "regex-only"},
		{desc: "second regex", host: "r", path: "/users/1x", wantID: "regex-later"},
		{desc: "regex anchored", host: "r", path: "/v/users/12", wantID: "none-only"},
		{desc: "regex anchored at end", host: "r", path: "/users/12/x", wantID: "none-only"},
	})
}

func TestMatchNormalisesPaths(t *testing.T) {
	t.Parallel()
	rules := []Rule[string]{
		{ID: "Api", Path: "/Api"},
		{ID: "b", Path: "/b"},
		{ID: "x", Path: "/x"},
		{ID: "a-b", Path: "/a/b"},
		{ID: "encoded-slash", Path: "/a%2fb"},
		{ID: "rule-normalised", Path: "/c/./d/../%65"},
		{ID: "prefix", PathPrefix: "/p/"},
		{ID: "regex", PathRegex: `/r/[a-z]+`},
	}
	checkRequests(t, rules, []req{
		{desc: "unreserved decoded", path: "/%41pi", wantID: "Api"},
		{desc: "encoded slash kept", path: "/a%2Fb", wantID: "encoded-slash"},
		{desc: "encoded slash is not a separator", path: "/a%2F..%2Fb", wantStatus: NotFound},
		{desc: "dot dot", path: "/a/../b", wantID: "b"},
		{desc: "double slash", path: "//x", wantID: "x"},
		{desc: "dot", path: "/./x", wantID: "x"},
		{desc: "above root", path: "/../../x", wantID: "x"},
		{desc: "rule paths normalised", path: "/c/e", wantID: "rule-normalised"},
		{desc: "prefix after normalisation", path: "/q/../p//z", wantID: "prefix", wantPrefix: "/p"},
		{desc: "regex sees normalised path", path: "/r/%61bc", wantID: "regex"},
	})
}

func TestMatchConstraints(t *testing.T) {
	t.Parallel()
	rules := []Rule[string]{
		{ID: "plain", Path: "/c"},
		{ID: "get", Path: "/c", Methods: []string{"GET", "HEAD"}},
		{ID: "two-headers", Path: "/c", Headers: map[string]string{"x-a": "1", "X-B": "2"}},
		{ID: "header-query", Path: "/c", Headers: map[string]string{"X-A": "1"}, Query: map[string]string{"beta": "1"}},
		{ID: "tie-first", Path: "/t", Methods: []string{"GET"}},
		{ID: "tie-second", Path: "/t", Query: map[string]string{"q": "1"}},
		{ID: "prefix-many", PathPrefix: "/e", Methods: []string{"GET"}, Headers: map[string]string{"X-A": "1"}, Query: map[string]string{"q": "1"}},
		{ID: "exact-few", Path: "/e"},
		{ID: "query-decoded", Path: "/q", Query: map[string]string{"name": "a b/c", "flag": ""}},
	}
	both := http.Header{"X-A": {"1"}, "X-B": {"2"}}
	checkRequests(t, rules, []req{
		{desc: "no constraints met", path: "/c", method: "POST", wantID: "plain"},
		{desc: "methods count one", path: "/c", wantID: "get"},
		{desc: "two headers beat methods", path: "/c", header: both, wantID: "two-headers"},
		{desc: "config order breaks equal count", path: "/c", header: both, query: "beta=1", wantID: "two-headers"},
		{desc: "header and query", path: "/c", header: http.Header{"X-A": {"1"}}, query: "beta=1", wantID: "header-query"},
		{desc: "header first value only", path: "/c", header: http.Header{"X-A": {"0", "1"}, "X-B": {"2"}}, wantID: "get"},
		{desc: "header value exact", path: "/c", method: "PUT", header: http.Header{"X-A": {"1 "}, "X-B": {"2"}}, wantID: "plain"},
		{desc: "query first value only", path: "/c", header: http.Header{"X-A": {"1"}}, query: "beta=2&beta=1", wantID: "get"},
		{desc: "tie goes to config order", path: "/t", query: "q=1", wantID: "tie-first"},
		{desc: "tie loser still matches alone", path: "/t", method: "POST", query: "q=1", wantID: "tie-second"},
		{desc: "exact path beats more constraints", path: "/e", header: http.Header{"X-A": {"1"}}, query: "q=1", wantID: "exact-few"},
		{desc: "query decoded", path: "/q", query: "name=a+b%2Fc&flag", wantID: "query-decoded"},
		{desc: "query empty value", path: "/q", query: "flag=&name=a%20b/c", wantID: "query-decoded"},
		{desc: "query missing key", path: "/q", query: "name=a+b%2Fc", wantStatus: NotFound},
		{desc: "query malformed value skipped", path: "/q", query: "flag&name=%zz", wantStatus: NotFound},
		{desc: "nil header", path: "/c", header: nil, wantID: "get"},
	})
}

func TestMatchMethodNotAllowed(t *testing.T) {
	t.Parallel()
	rules := []Rule[string]{
		{ID: "get", Host: "h", Path: "/m", Methods: []string{"GET", "HEAD"}},
		{ID: "post", Host: "h", Path: "/m", Methods: []string{"POST", "GET"}},
		{ID: "put-anyhost", PathPrefix: "/m", Methods: []string{"PUT"}},
		{ID: "guarded", Host: "h", Path: "/g", Methods: []string{"GET"}, Headers: map[string]string{"X-Key": "k"}},
		{ID: "catch", Host: "c", PathPrefix: "/"},
		{ID: "delete-c", Host: "c", Path: "/d", Methods: []string{"DELETE"}},
	}
	checkRequests(t, rules, []req{
		{desc: "allowed", host: "h", method: "POST", path: "/m", wantID: "post"},
		{desc: "allowed other host group", host: "h", method: "PUT", path: "/m", wantID: "put-anyhost", wantPrefix: "/m"},
		{desc: "405 across groups, sorted and deduplicated", host: "h", method: "PATCH", path: "/m", wantStatus: MethodNotAllowed, wantAllow: "GET, HEAD, POST, PUT"},
		{desc: "405 only the host-less rule", host: "other", method: "GET", path: "/m/x", wantStatus: MethodNotAllowed, wantAllow: "PUT"},
		{desc: "methods compare exactly", host: "h", method: "get", path: "/m", wantStatus: MethodNotAllowed, wantAllow: "GET, HEAD, POST, PUT"},
		{desc: "another mismatch is 404", host: "h", method: "POST", path: "/g", wantStatus: NotFound},
		{desc: "only the method mismatches", host: "h", method: "POST", path: "/g", header: http.Header{"X-Key": {"k"}}, wantStatus: MethodNotAllowed, wantAllow: "GET"},
		{desc: "a full match elsewhere beats 405", host: "c", method: "GET", path: "/d", wantID: "catch", wantPrefix: "/"},
		{desc: "404", host: "h", path: "/none", wantStatus: NotFound},
	})
}

func TestMatchEmptyTables(t *testing.T) {
	t.Parallel()
	empty, err := Compile[int](nil)
	if err != nil {
		t.Fatalf("Compile(nil): %v", err)
	}
	for _, tb := range []*Table[int]{nil, {}, empty} {
		if got := tb.Match("h", "GET", "/", "", nil); got.Status != NotFound || got.Rule != nil {
			t.Errorf("Match on %#v = %+v, want NotFound", tb, got)
		}
		if got := tb.Len(); got != 0 {
			t.Errorf("Len() = %d, want 0", got)
		}
		if res, cands := tb.Explain("h", "GET", "/", "", nil); res.Status != NotFound || len(cands) != 0 {
			t.Errorf("Explain on %#v = %+v, %v, want NotFound and no candidates", tb, res, cands)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	rules := []Rule[string]{
		{ID: "exact", Host: "api.example.com", Path: "/v1/items"},
		{ID: "prefix", Host: "api.example.com", PathPrefix: "/static/"},
		{ID: "constrained", Host: "api.example.com", Path: "/c", Methods: []string{"GET"},
			Headers: map[string]string{"X-Version": "2"}, Query: map[string]string{"beta": "1 2"}},
		{ID: "wild", Host: "*.example.com", PathPrefix: "/"},
		{ID: "regex", Host: `.*\.example\.org`, PathRegex: `/users/[0-9]+`},
		{ID: "none", Path: "/healthz"},
	}
	tb, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	h := http.Header{"X-Version": {"2"}}
	tests := []struct{ desc, host, path, query, wantID string }{
		{"exact", "api.example.com", "/v1/items", "", "exact"},
		{"mixed case and port", "API.Example.com:8443", "/v1/items", "", "exact"},
		{"prefix", "api.example.com", "/static/js/app.js", "", "prefix"},
		{"constraints", "api.example.com", "/c", "a=1&beta=1+2", "constrained"},
		{"wildcard", "www.example.com", "/x/y", "", "wild"},
		{"regex", "www.example.org", "/users/42", "", "regex"},
		{"host-less", "other.net", "/healthz", "", "none"},
		{"not found", "other.net", "/missing/page", "", ""},
	}
	for _, tt := range tests {
		if raceEnabled && (tt.desc == "regex" || tt.desc == "not found") {
			// These run regexps, whose pooled matchers the race detector
			// drops at random; the plain build checks them.
			continue
		}
		allocs := testing.AllocsPerRun(200, func() {
			if got := tb.Match(tt.host, "GET", tt.path, tt.query, h); gotID(got) != tt.wantID {
				t.Fatalf("Match(%q, %q) = %q, want %q", tt.host, tt.path, gotID(got), tt.wantID)
			}
		})
		if allocs != 0 {
			t.Errorf("Match(%q, %q) allocates %v times per call, want 0", tt.host, tt.path, allocs)
		}
	}
}

func TestCompileCopiesRules(t *testing.T) {
	t.Parallel()
	rules := []Rule[string]{{ID: "r", Path: "/x", Methods: []string{"GET"}, Headers: map[string]string{"X-A": "1"}}}
	tb, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	rules[0].ID, rules[0].Methods[0], rules[0].Headers["X-A"] = "changed", "POST", "2"
	got := tb.Match("h", "GET", "/x", "", http.Header{"X-A": {"1"}})
	if got.Status != Matched || got.Rule.ID != "r" || got.Rule.Methods[0] != "GET" || got.Rule.Headers["X-A"] != "1" {
		t.Errorf("Match after changing the input rules = %+v, want the rules as compiled", got.Rule)
	}
	if tb.Len() != 1 {
		t.Errorf("Len() = %d, want 1", tb.Len())
	}
}

func TestMatchConcurrent(t *testing.T) {
	t.Parallel()
	tb, err := Compile(fuzzRules())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				host := []string{"a.example.com", "x.a.example.com", "www.example.org", "other"}[(g+i)%4]
				res := tb.Match(host, "GET", "/x/y/z", "a+b=c%2Fd", http.Header{"X-A": {"1"}})
				if res.Status == 0 {
					t.Errorf("Match(%q) status = 0, want a valid status", host)
				}
				tb.Explain(host, "PATCH", "/r", "", nil)
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func TestMatchLongHost(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 300) + ".example.com"
	rules := []Rule[string]{
		{ID: "long", Host: long},
		{ID: "wild", Host: "*.example.com"},
	}
	checkRequests(t, rules, []req{
		{desc: "exact, longer than the stack buffer", host: strings.ToUpper(long) + ":80", path: "/", wantID: "long"},
		{desc: "wildcard", host: "b" + long, path: "/", wantID: "wild"},
	})
}

func TestStatusString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    Status
		want string
	}{{Matched, "matched"}, {NotFound, "not_found"}, {MethodNotAllowed, "method_not_allowed"}, {0, "unknown"}}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Status(%d).String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}
