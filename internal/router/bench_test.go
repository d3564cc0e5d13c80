package router

import (
	"fmt"
	"net/http"
	"testing"
)

// benchRules builds a table shaped like a large deployment: hosts x paths
// rules alternating exact paths and path prefixes, then wildcard hosts and
// regex rules, n in all.
func benchRules(n int) []Rule[int] {
	wild, regex, hosts := 5, 5, (n-10)/100
	if n < 100 {
		wild, regex, hosts = 1, 1, 2
	}
	paths := (n - wild - regex) / hosts
	var rules []Rule[int]
	for h := range hosts {
		for p := range paths {
			r := Rule[int]{ID: fmt.Sprintf("h%d-p%d", h, p), Host: fmt.Sprintf("svc%d.example.com", h), Value: len(rules)}
			if p%2 == 0 {
				r.Path = fmt.Sprintf("/api/v1/items%d", p)
			} else {
				r.PathPrefix = fmt.Sprintf("/static/app%d/", p)
			}
			rules = append(rules, r)
		}
	}
	for w := range wild {
		rules = append(rules, Rule[int]{ID: fmt.Sprintf("wild%d", w), Host: fmt.Sprintf("*.tenant%d.example.net", w), PathPrefix: "/"})
	}
	for x := range regex {
		if x%2 == 0 {
			rules = append(rules, Rule[int]{ID: fmt.Sprintf("regex-host%d", x), Host: fmt.Sprintf(`[a-z]+-%d\.example\.io`, x)})
			continue
		}
		rules = append(rules, Rule[int]{ID: fmt.Sprintf("regex-path%d", x), PathRegex: fmt.Sprintf(`/users/[0-9]+/orders%d`, x)})
	}
	for len(rules) < n {
		rules = append(rules, Rule[int]{ID: fmt.Sprintf("pad%d", len(rules)), Path: fmt.Sprintf("/pad%d", len(rules))})
	}
	return rules[:n]
}

func BenchmarkMatch10(b *testing.B)    { benchmarkMatch(b, 10) }
func BenchmarkMatch10000(b *testing.B) { benchmarkMatch(b, 10000) }

func benchmarkMatch(b *testing.B, n int) {
	rules := benchRules(n)
	tb, err := Compile(rules)
	if err != nil {
		b.Fatalf("Compile: %v", err)
	}
	if tb.Len() != n {
		b.Fatalf("Len() = %d, want %d", tb.Len(), n)
	}
	h := http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}}
	tests := []struct {
		name, host, path string
		want             Status
	}{
		{"exact", "svc0.example.com", "/api/v1/items2", Matched},
		{"exact-mixedcase-port", "SVC0.Example.com:8080", "/api/v1/items2", Matched},
		{"prefix", "svc0.example.com", "/static/app3/js/main.js", Matched},
		{"not-found", "svc0.example.com", "/missing/page/x", NotFound},
		{"not-found-host", "unknown.example.org", "/", NotFound},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got := tb.Match(tt.host, "GET", tt.path, "", h); got.Status != tt.want {
					b.Fatalf("Match(%q, %q) = %s, want %s", tt.host, tt.path, got.Status, tt.want)
				}
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, p := range []string{"/api/v1/items/42", "/api/./v1//items/%34%32"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Normalize(p)
			}
		})
	}
}

func BenchmarkCompile10000(b *testing.B) {
	rules := benchRules(10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(rules); err != nil {
			b.Fatal(err)
		}
	}
}
