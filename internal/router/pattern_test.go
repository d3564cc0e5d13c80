package router

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestPatternLiterals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src                    string
		fold                   bool
		wantPrefix, wantSuffix string
	}{
		{`/users/[0-9]+/orders`, false, "/users/", "/orders"},
		{`/exact`, false, "/exact", "/exact"},
		{`/a(b|c)d`, false, "/a", "d"},
		{`(/x)+`, false, "", ""},
		{`/x|/y`, false, "/", ""}, // the parser factors out the "/"
		{`/x|y`, false, "", ""},
		{`(?i)/abc/[0-9]`, false, "", ""},
		{`/api/(?i:v)[0-9]`, false, "/api/", ""},
		{`.*\.example\.com`, true, "", ".example.com"},
		{`API\.[a-z]+\.COM`, true, "api.", ".com"},
		{`(?-i:Ab)c.*`, true, "abc", ""},
		{`caf\x{e9}.*x\.com`, true, "caf", "x.com"},
		{"/\ufffd.*", false, "/", ""},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.src, tt.fold)
		if err != nil {
			t.Fatalf("compilePattern(%q) error: %v", tt.src, err)
		}
		if p.prefix != tt.wantPrefix || p.suffix != tt.wantSuffix {
			t.Errorf("compilePattern(%q, %v) literals = %q, %q, want %q, %q",
				tt.src, tt.fold, p.prefix, p.suffix, tt.wantPrefix, tt.wantSuffix)
		}
	}
}

func TestPatternRejectsEscapingGroup(t *testing.T) {
	t.Parallel()
	for _, src := range []string{`a)|(b`, `(`, `[a-`, `x{2,1}`, `\Qa`} {
		if _, err := compilePattern(src, false); err == nil {
			t.Errorf("compilePattern(%q) error = nil, want an error", src)
		}
	}
}

// FuzzPatternPrefilter checks that the literal pre-check never rejects an
// input that the regex accepts.
func FuzzPatternPrefilter(f *testing.F) {
	f.Add(`/users/[0-9]+/orders`, "/users/12/orders", false)
	f.Add(`.*\.example\.com`, "A.EXAMPLE.COM", true)
	f.Add(`k.*`, "\u212a", true)
	f.Add("/\ufffd", "/\xff", false)
	f.Add(`(?i)ab`, "AB", false)
	f.Fuzz(func(t *testing.T, src, in string, fold bool) {
		p, err := compilePattern(src, fold)
		if err != nil {
			return
		}
		full := "^(?:" + src + ")$"
		if fold {
			full = "(?i)" + full
		}
		want := regexp.MustCompile(full).MatchString(in)
		var got bool
		if fold {
			lh, ascii := lowerASCII(nil, in)
			got = p.matchHost(lh, ascii, in)
		} else {
			got = p.matchPath(in)
		}
		if got != want {
			t.Fatalf("pattern %q (fold %v) on %q = %v, want %v (literals %q, %q)",
				src, fold, in, got, want, p.prefix, p.suffix)
		}
	})
}

// TestMayMatchAgreesWithStrings checks the word pre-check against its
// definition for literals and inputs on both sides of eight bytes.
func TestMayMatchAgreesWithStrings(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	rnd := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "ab."[r.IntN(3)]
		}
		return string(b)
	}
	for range 200000 {
		var p pattern
		p.setLiterals(rnd(r.IntN(11)), rnd(r.IntN(11)))
		in := rnd(r.IntN(20))
		want := strings.HasPrefix(in, p.prefix) && strings.HasSuffix(in, p.suffix)
		if got := p.mayMatch(in); got != want {
			t.Fatalf("literals %q, %q: mayMatch(%q) = %v, want %v", p.prefix, p.suffix, in, got, want)
		}
	}
}
