package router

import (
	"net/http"
	"strings"
	"testing"
)

// fuzzRules covers every host kind, path kind and constraint, with
// overlaps, so that random requests exercise fall-through and ties.
func fuzzRules() []Rule[int] {
	return []Rule[int]{
		{ID: "exact-exact", Host: "a.example.com", Path: "/x", Methods: []string{"GET"}},
		{ID: "exact-prefix", Host: "a.example.com", PathPrefix: "/x/"},
		{ID: "exact-prefix-hdr", Host: "a.example.com", PathPrefix: "/x", Headers: map[string]string{"X-A": "1"}},
		{ID: "exact-regex", Host: "a.example.com", PathRegex: `/[a-z]+/[0-9]+`},
		{ID: "exact-any-post", Host: "a.example.com", Methods: []string{"POST"}},
		{ID: "wild", Host: "*.example.com", PathPrefix: "/w", Query: map[string]string{"q": "1"}},
		{ID: "wild-deep", Host: "*.a.example.com", Path: "/", Methods: []string{"PUT", "GET"}},
		{ID: "regex-host", Host: `[a-z]+\.example\.(com|org)`, PathRegex: "/r.*"},
		{ID: "regex-host-2", Host: `.*\.org`, PathPrefix: "/"},
		{ID: "v6", Host: "[::1]", Path: "/"},
		{ID: "none-exact", Path: "/x", Methods: []string{"DELETE"}},
		{ID: "none-prefix", PathPrefix: "/x/y", Query: map[string]string{"a b": "c/d"}},
		{ID: "none-root-hdr", PathPrefix: "/", Headers: map[string]string{"X-A": "2"}},
		{ID: "none-any", Methods: []string{"OPTIONS"}},
		// Keys of 64 bytes and more take the matcher's long-key paths.
		{ID: "long-prefix", Host: "a.example.com", PathPrefix: "/" + strings.Repeat("l", 70) + "/m"},
		{ID: "long-prefix-short", Host: "a.example.com", PathPrefix: "/" + strings.Repeat("l", 70)},
		{ID: "long-wild", Host: "*." + strings.Repeat("w", 70) + ".example.com", PathPrefix: "/"},
	}
}

func FuzzMatch(f *testing.F) {
	// Seeds: one request aimed at each rule, plus hostile shapes.
	f.Add("a.example.com", "GET", "/x", "", "")
	f.Add("A.EXAMPLE.COM:80", "PATCH", "/x/", "", "1")
	f.Add("a.example.com", "GET", "/abc/12", "", "")
	f.Add("b.example.com", "GET", "/w/z", "q=1", "")
	f.Add("z.a.example.com.", "PUT", "/", "", "")
	f.Add("www.example.org", "GET", "/r/../r", "", "2")
	f.Add("[::1]:80", "GET", "/%2e/", "", "")
	f.Add("other", "DELETE", "//x", "", "")
	f.Add("other", "GET", "/x/y/z", "a+b=c%2Fd", "")
	f.Add("other", "TRACE", "/x", "", "")
	f.Add("[", "", "%", "%%;&=", "\x00")
	f.Add("a.example.com", "GET", "/"+strings.Repeat("l", 70)+"/m/n", "", "")
	f.Add("a.example.com", "GET", "/"+strings.Repeat("l", 70)+"/", "", "")
	f.Add("x."+strings.Repeat("w", 70)+".example.com", "GET", "/", "", "")
	tb, err := Compile(fuzzRules())
	if err != nil {
		f.Fatalf("Compile: %v", err)
	}
	f.Fuzz(func(t *testing.T, host, method, path, query, hv string) {
		h := http.Header{"X-A": {hv}}
		got := tb.Match(host, method, path, query, h)
		checkAgainstReference(t, tb, host, method, path, query, h)
		if got.Status == Matched && got.Rule.PathPrefix != "" {
			np := Normalize(path)
			if !strings.HasPrefix(np, got.MatchedPrefix) ||
				(got.MatchedPrefix != "/" && len(np) > len(got.MatchedPrefix) && np[len(got.MatchedPrefix)] != '/') {
				t.Fatalf("MatchedPrefix %q is not a segment prefix of %q", got.MatchedPrefix, np)
			}
		}
		res, cands := tb.Explain(host, method, path, query, h)
		if res != got || len(cands) != tb.Len() {
			t.Fatalf("Explain = %+v with %d candidates, want %+v with %d", res, len(cands), got, tb.Len())
		}
		for _, c := range cands {
			if c.Result == candidateLost {
				// The winner must come before every rule it shadows.
				t.Fatalf("Explain: %q lost before the winner was listed: %s", c.ID, formatCandidates(cands))
			}
			if c.Result == candidateMatched {
				break
			}
		}
	})
}
