package router

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// Every word-wise scan must agree with its byte loop. Exhaustive over a
// small alphabet for lengths around one and two words (where the overlap
// and carry logic lives), then random longer strings, then fuzzing.

func forEachString(alphabet string, n int, f func(string)) {
	b := make([]byte, n)
	var rec func(int)
	rec = func(i int) {
		if i == n {
			f(string(b))
			return
		}
		for j := 0; j < len(alphabet); j++ {
			b[i] = alphabet[j]
			rec(i + 1)
		}
	}
	rec(0)
}

func TestIsNormalAgreesWithBytes(t *testing.T) {
	t.Parallel()
	check := func(p string) {
		if got, want := isNormal(p), isNormalBytes(p); got != want {
			t.Fatalf("isNormal(%q) = %v, isNormalBytes = %v", p, got, want)
		}
	}
	for n := 0; n <= 11; n++ {
		forEachString("/.a", n, func(s string) { check("/" + s) })
	}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "/.%aF2E~"
	for range 200000 {
		b := make([]byte, 1+r.IntN(40))
		b[0] = '/'
		for i := 1; i < len(b); i++ {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		check(string(b))
	}
	for _, p := range []string{"", "a", "aaaaaaaaaaa", "/.well-known/acme", "/static/app3/js/main.js",
		"/api/v1/items/42", "/1234567/", "/1234567//", "/1234567/.", "/1234567/..", "/1234567/x/..", "/1234567%41"} {
		check(p)
	}
}

func TestIsLowerASCIIAgreesWithBytes(t *testing.T) {
	t.Parallel()
	check := func(s string) {
		if got, want := isLowerASCII(s), isLowerASCIIBytes(s); got != want {
			t.Fatalf("isLowerASCII(%q) = %v, isLowerASCIIBytes = %v", s, got, want)
		}
	}
	// Every byte value at every position of strings one and two words
	// long, in a lower-case background.
	for n := 1; n <= 17; n++ {
		for i := range n {
			for c := range 256 {
				b := []byte(strings.Repeat("a", n))
				b[i] = byte(c)
				check(string(b))
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = "aZ.-0\x80@[`{"[r.IntN(10)]
		}
		check(string(b))
	}
}

func TestEqMask(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		for v := range 256 {
			w := uint64(v)<<16 | uint64(c)<<40 | uint64(c^1)<<48
			var want uint64
			if byte(v) == byte(c) {
				want |= 0x80 << 16
			}
			want |= 0x80 << 40
			// Bytes that are zero equal c only when c is zero.
			if c == 0 {
				want |= 0x80 | 0x80<<8 | 0x80<<24 | 0x80<<32 | 0x80<<56
			}
			if got := eqMask(w, byte(c)); got != want {
				t.Fatalf("eqMask(%#x, %#x) = %#x, want %#x", w, c, got, want)
			}
		}
	}
}

func FuzzSWAR(f *testing.F) {
	for _, s := range []string{"/", "/static/app3/js/main.js", "/a//b/c/d/e/f", "/1234567/.x", "SVC0.Example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isNormal(s), isNormalBytes(s); got != want {
			t.Fatalf("isNormal(%q) = %v, isNormalBytes = %v", s, got, want)
		}
		if got, want := isLowerASCII(s), isLowerASCIIBytes(s); got != want {
			t.Fatalf("isLowerASCII(%q) = %v, isLowerASCIIBytes = %v", s, got, want)
		}
	})
}
