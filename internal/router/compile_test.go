package router

import (
	"errors"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		rule      Rule[int]
		wantField string
		wantText  string
	}{
		{"bad host regex", Rule[int]{ID: "r", Host: `(api.example.com`}, "Host", "invalid regular expression"},
		{"bad host regex repetition", Rule[int]{ID: "r", Host: "*.*"}, "Host", "invalid regular expression"},
		{"unclosed bracket host", Rule[int]{ID: "r", Host: "[::1"}, "Host", "invalid regular expression"},
		{"host regex escaping the anchor", Rule[int]{ID: "r", Host: `a)|(b`}, "Host", "invalid regular expression"},
		{"host with port", Rule[int]{ID: "r", Host: "api.example.com:443"}, "Host", "port"},
		{"bad wildcard", Rule[int]{ID: "r", Host: "*example.com"}, "Host", `"*"`},
		{"bad path regex", Rule[int]{ID: "r", PathRegex: `/users/[0-9`}, "PathRegex", "invalid regular expression"},
		{"two path matchers", Rule[int]{ID: "r", Path: "/a", PathPrefix: "/a"}, "Path", "at most one"},
		{"relative path", Rule[int]{ID: "r", Path: "a"}, "Path", `start with "/"`},
		{"relative prefix", Rule[int]{ID: "r", PathPrefix: "api"}, "PathPrefix", `start with "/"`},
		{"empty method", Rule[int]{ID: "r", Methods: []string{""}}, "Methods", "method token"},
		{"method with space", Rule[int]{ID: "r", Methods: []string{"GE T"}}, "Methods", "method token"},
		{"bad header name", Rule[int]{ID: "r", Headers: map[string]string{"X A": "1"}}, "Headers", "header name"},
		{"header names differing in case", Rule[int]{ID: "r", Headers: map[string]string{"x-a": "1", "X-A": "2"}}, "Headers", "twice"},
		{"empty query key", Rule[int]{ID: "r", Query: map[string]string{"": "1"}}, "Query", "empty query key"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			rules := []Rule[int]{{ID: "fine", Path: "/"}, tt.rule}
			tb, err := Compile(rules)
			if tb != nil {
				t.Errorf("Compile returned a table with error %v, want nil", err)
			}
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("Compile(%+v) error = %v, want a *RuleError", tt.rule, err)
			}
			if re.Index != 1 || re.ID != "r" || re.Field != tt.wantField || !strings.Contains(re.Error(), tt.wantText) {
				t.Errorf("Compile(%+v) error = %#v (%q), want index 1, id r, field %s, text %q",
					tt.rule, re, re.Error(), tt.wantField, tt.wantText)
			}
			if errors.Unwrap(re) != re.Err || re.Err == nil {
				t.Errorf("errors.Unwrap(%v) = %v, want %v", re, errors.Unwrap(re), re.Err)
			}
			if !strings.Contains(err.Error(), `rule 1 (id "r")`) {
				t.Errorf("Compile error %q does not name the rule", err)
			}
		})
	}
}

func TestCompileReportsEveryError(t *testing.T) {
	t.Parallel()
	_, err := Compile([]Rule[int]{
		{ID: "a", PathRegex: "("},
		{ID: "b", Path: "/ok"},
		{ID: "a", Path: "/dup"},
		{ID: "c", Host: "x:1"},
	})
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Compile error = %v, want a joined error", err)
	}
	var got []string
	for _, e := range joined.Unwrap() {
		var re *RuleError
		if !errors.As(e, &re) {
			t.Fatalf("error %v is not a *RuleError", e)
		}
		got = append(got, re.ID+"."+re.Field)
	}
	want := []string{"a.PathRegex", "a.ID", "c.Host"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Compile errors = %v, want %v", got, want)
	}
}

func TestCompileAccepts(t *testing.T) {
	t.Parallel()
	rules := []Rule[int]{
		{},
		{ID: "any-star", Host: "*", Path: "/"},
		{ID: "v6", Host: "[2001:db8::1]", PathPrefix: "/"},
		{ID: "methods-deduplicated", Methods: []string{"GET", "GET", "M-SEARCH"}},
		{ID: "shared-regex-1", Host: `.*\.a\.com`, PathRegex: `/x/.*`},
		{ID: "shared-regex-2", Host: `.*\.a\.com`, PathRegex: `/x/.*`, Methods: []string{"GET"}},
		{ID: "regex-like-dots", Host: "api.*.com"},
	}
	tb, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if got := tb.meta[3].methods; strings.Join(got, ",") != "GET,M-SEARCH" {
		t.Errorf("methods = %v, want [GET M-SEARCH]", got)
	}
	if tb.meta[4].hostPat != tb.meta[5].hostPat || tb.meta[4].pathPat != tb.meta[5].pathPat {
		t.Errorf("rules with the same regexes do not share compiled patterns")
	}
	if len(tb.regex) != 2 || len(tb.regex[0].g.regex) != 1 {
		t.Errorf("got %d host regex groups and %d path buckets, want 2 and 1", len(tb.regex), len(tb.regex[0].g.regex))
	}
	if got := tb.Match("www.a.com", "GET", "/x/1", "", nil); gotID(got) != "shared-regex-2" {
		t.Errorf("Match = %q, want the more constrained shared-regex-2", gotID(got))
	}
	// Host precedence comes before path precedence.
	if got := tb.Match("api.anything.com", "GET", "/", "", nil); gotID(got) != "regex-like-dots" {
		t.Errorf("Match = %q, want regex-like-dots (a regex host beats any host with an exact path)", gotID(got))
	}
}
