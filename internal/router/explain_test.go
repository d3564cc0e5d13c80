package router

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func explainRules() []Rule[string] {
	return []Rule[string]{
		{ID: "catch", PathPrefix: "/"},
		{ID: "api-prefix", Host: "api.example.com", PathPrefix: "/api/"},
		{ID: "api-exact", Host: "api.example.com", Path: "/api/users", Methods: []string{"GET"}},
		{ID: "api-exact-hdr", Host: "api.example.com", Path: "/api/users", Headers: map[string]string{"X-V": "2"}},
		{ID: "wild", Host: "*.example.com", PathPrefix: "/"},
		{ID: "other-host", Host: "other.com"},
		{ID: "post-only", Host: "api.example.com", Path: "/api/users", Methods: []string{"POST"}},
		{ID: "secret", Host: "api.example.com", Path: "/api/users", Headers: map[string]string{"Authorization": "Bearer s3cret"}},
		{ID: "beta", Host: "api.example.com", Path: "/api/users", Query: map[string]string{"beta": "1"}},
		{ID: "longer", Host: "*.b.example.com", PathPrefix: "/"},
		{ID: "re-path", Host: "api.example.com", PathRegex: "/api/.*"},
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	tb, err := Compile(explainRules())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	h := http.Header{"X-V": {"2"}, "Authorization": {"Bearer wrong"}}
	res, got := tb.Explain("API.example.com:443", "GET", "/api/users", "beta=2", h)
	if res.Status != Matched || res.Rule.ID != "api-exact" {
		t.Fatalf("Explain result = %s %q, want matched api-exact", res.Status, gotID(res))
	}
	want := []Candidate{
		{"api-exact", "matched", `exact host "api.example.com", exact path "/api/users", 1 constraints`},
		{"api-exact-hdr", "lost", `shadowed by "api-exact": it comes first in config`},
		{"post-only", "rejected", `method "GET" is not one of POST`},
		{"secret", "rejected", `header "Authorization" is missing or has another value`},
		{"beta", "rejected", `query parameter "beta" is missing or has another value`},
		{"api-prefix", "lost", `shadowed by "api-exact": exact path "/api/users" ranks before path prefix "/api/"`},
		{"re-path", "lost", `shadowed by "api-exact": exact path "/api/users" ranks before path regex "/api/.*"`},
		{"wild", "lost", `shadowed by "api-exact": exact host "api.example.com" ranks before wildcard host "*.example.com"`},
		{"catch", "lost", `shadowed by "api-exact": exact host "api.example.com" ranks before any host`},
		{"other-host", "rejected", `host "API.example.com" does not match exact host "other.com"`},
		{"longer", "rejected", `host "API.example.com" does not match wildcard host "*.b.example.com"`},
	}
	res, got2 := tb.Explain("other.com", "GET", "/", "", nil)
	if gotID(res) != "other-host" || got2[0] != (Candidate{"other-host", "matched", `exact host "other.com", any path, 0 constraints`}) {
		t.Errorf("Explain(other.com) = %q, first candidate %+v, want other-host matched on exact host and any path", gotID(res), got2[0])
	}
	if !slices.Equal(got, want) {
		t.Errorf("Explain candidates:\n got %s\nwant %s", formatCandidates(got), formatCandidates(want))
	}
	for _, c := range got {
		if strings.Contains(c.Reason, "s3cret") || strings.Contains(c.Reason, "wrong") {
			t.Errorf("candidate %q reason %q echoes a header value", c.ID, c.Reason)
		}
	}
}

func TestExplainLostReasons(t *testing.T) {
	t.Parallel()
	tb, err := Compile(explainRules())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	tests := []struct {
		desc, host, path string
		header           http.Header
		wantWinner       string
		wantID, wantWhy  string
	}{
		{"longer wildcard", "a.b.example.com", "/x", nil, "longer", "wild",
			`shadowed by "longer": wildcard host "*.b.example.com" is a longer suffix than wildcard host "*.example.com"`},
		{"host kind", "api.example.com", "/api/users", http.Header{"X-V": {"2"}}, "api-exact", "catch",
			`shadowed by "api-exact": exact host "api.example.com" ranks before any host`},
		{"constraint count", "api.example.com", "/api/users", http.Header{"X-V": {"2"}, "Authorization": {"Bearer s3cret"}},
			"api-exact", "secret", `shadowed by "api-exact": it comes first in config`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			res, cands := tb.Explain(tt.host, "GET", tt.path, "", tt.header)
			if gotID(res) != tt.wantWinner {
				t.Fatalf("Explain winner = %q, want %q", gotID(res), tt.wantWinner)
			}
			i := slices.IndexFunc(cands, func(c Candidate) bool { return c.ID == tt.wantID })
			if i < 0 || cands[i].Result != "lost" || cands[i].Reason != tt.wantWhy {
				t.Errorf("Explain candidates %s, want %q lost: %s", formatCandidates(cands), tt.wantID, tt.wantWhy)
			}
		})
	}
}

func TestExplainConstraintsReason(t *testing.T) {
	t.Parallel()
	tb, err := Compile([]Rule[int]{
		{ID: "plain", Path: "/"},
		{ID: "two", Path: "/", Methods: []string{"GET"}, Query: map[string]string{"a": "1"}},
		{ID: "prefix", PathPrefix: "/"},
		{ID: "longer", PathPrefix: "/a"},
		{ID: "re-1", PathRegex: "/a.*"},
		{ID: "re-2", PathRegex: "/a/.*"},
	})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	_, cands := tb.Explain("h", "GET", "/", "a=1", nil)
	if cands[0].ID != "two" || cands[1].Reason != `shadowed by "two": it has more constraints (2 > 0)` {
		t.Errorf("Explain = %s, want two to win over plain by constraints", formatCandidates(cands))
	}
	_, cands = tb.Explain("h", "GET", "/a/b", "", nil)
	// Rejected rules keep their place in precedence order.
	want := []Candidate{
		{"two", "rejected", `path "/a/b" does not match exact path "/"`},
		{"plain", "rejected", `path "/a/b" does not match exact path "/"`},
		{"longer", "matched", `any host, path prefix "/a", 0 constraints`},
		{"prefix", "lost", `shadowed by "longer": path prefix "/a" is longer than path prefix "/"`},
		{"re-1", "lost", `shadowed by "longer": path prefix "/a" ranks before path regex "/a.*"`},
		{"re-2", "lost", `shadowed by "longer": path prefix "/a" ranks before path regex "/a/.*"`},
	}
	if !slices.Equal(cands, want) {
		t.Errorf("Explain candidates:\n got %s\nwant %s", formatCandidates(cands), formatCandidates(want))
	}
}

func TestExplainConfigOrderReasons(t *testing.T) {
	t.Parallel()
	tb, err := Compile([]Rule[int]{
		{ID: "host-1", Host: `.*\.com`, PathRegex: "/a.*"},
		{ID: "host-2", Host: `.*\.com`, PathRegex: "/.*"},
		{ID: "host-3", Host: `a\..*`},
	})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	_, cands := tb.Explain("a.com", "GET", "/ab", "", nil)
	want := []Candidate{
		{"host-1", "matched", `host regex ".*\\.com", path regex "/a.*", 0 constraints`},
		{"host-2", "lost", `shadowed by "host-1": path regex "/a.*" comes first in config`},
		{"host-3", "lost", `shadowed by "host-1": host regex ".*\\.com" comes first in config`},
	}
	if !slices.Equal(cands, want) {
		t.Errorf("Explain candidates:\n got %s\nwant %s", formatCandidates(cands), formatCandidates(want))
	}
}

func TestExplainMethodNotAllowed(t *testing.T) {
	t.Parallel()
	tb, err := Compile(explainRules()[2:3])
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	res, cands := tb.Explain("api.example.com", "DELETE", "/api/users", "", nil)
	want := []Candidate{{"api-exact", "rejected", `method "DELETE" is not one of GET`}}
	if res.Status != MethodNotAllowed || res.Allow != "GET" || !slices.Equal(cands, want) {
		t.Errorf("Explain = %+v, %s, want method_not_allowed, Allow GET, %s", res, formatCandidates(cands), formatCandidates(want))
	}
}

func formatCandidates(cs []Candidate) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("\n\t" + c.ID + " " + c.Result + ": " + c.Reason)
	}
	return b.String()
}
