package router

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, in, want string
	}{
		{"root", "/", "/"},
		{"plain", "/api/v1/items", "/api/v1/items"},
		{"trailing slash kept", "/api/", "/api/"},
		{"empty", "", "/"},
		{"relative", "a/b", "/a/b"},
		{"asterisk form", "*", "/*"},
		{"unreserved letter decoded", "/%41pi", "/Api"},
		{"unreserved lower-case hex", "/%7euser", "/~user"},
		{"unreserved digit dash dot underscore", "/%30%2D%2E%5F", "/0-._"},
		{"slash stays encoded", "/a%2Fb", "/a%2Fb"},
		{"kept escape upper-cased", "/a%2fb", "/a%2Fb"},
		{"space stays encoded", "/a%20b", "/a%20b"},
		{"percent stays encoded", "/100%25", "/100%25"},
		{"stray percent encoded", "/100%", "/100%25"},
		{"bad escape encoded", "/%zz", "/%25zz"},
		{"short escape encoded", "/%4", "/%254"},
		{"no double decoding", "/%%341", "/%2541"},
		{"dot dot", "/a/../b", "/b"},
		{"dot dot at end", "/a/b/..", "/a/"},
		{"dot dot above root", "/../../x", "/x"},
		{"dot", "/./x", "/x"},
		{"dot at end", "/a/.", "/a/"},
		{"double slash", "//x", "/x"},
		{"many slashes", "/a///b//", "/a/b/"},
		{"encoded dots are dot segments", "/a/%2e%2E/b", "/b"},
		{"dots inside names kept", "/a/..b/.c/d.", "/a/..b/.c/d."},
		{"slash dot dot only", "/..", "/"},
		{"dot only", ".", "/"},
		{"non-ascii kept", "/caf\xc3\xa9", "/caf\xc3\xa9"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := Normalize(tt.in); got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeDoesNotAllocateNormalPaths(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/items/42", "/a%2Fb", "/static/app.js", "/x/"} {
		allocs := testing.AllocsPerRun(100, func() {
			if got := Normalize(p); got != p {
				t.Fatalf("Normalize(%q) = %q, want it unchanged", p, got)
			}
		})
		if allocs != 0 {
			t.Errorf("Normalize(%q) allocates %v times, want 0", p, allocs)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	// Seeds: every shape of TestNormalize plus escapes that decode into
	// dot segments and stray percent signs next to valid escapes.
	for _, s := range []string{"", "/", "*", "a/b", "/%41", "/a%2fb", "/%", "/%%341", "/a/../b",
		"//x", "/./x", "/a/%2e%2e/%2E", "/..%2f..", "/%25%32%46", "/a/b/c/../../..", "%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got := Normalize(p)
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("Normalize(%q) = %q, want a leading /", p, got)
		}
		if again := Normalize(got); again != got {
			t.Fatalf("Normalize(Normalize(%q)) = %q, want %q", p, again, got)
		}
		// The fast path must agree with the slow one it skips.
		if slow := normalize(p); got != slow {
			t.Fatalf("Normalize(%q) = %q, but normalize = %q", p, got, slow)
		}
		if strings.Contains(got, "//") || strings.Contains(got, "/./") || strings.Contains(got, "/../") ||
			strings.HasSuffix(got, "/.") || strings.HasSuffix(got, "/..") {
			t.Fatalf("Normalize(%q) = %q, want no empty or dot segments", p, got)
		}
	})
}
