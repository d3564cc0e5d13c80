package router

import (
	"net/url"
	"testing"
)

func TestQueryGet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, key string
		want     string // decoded
		wantOK   bool
	}{
		{"", "a", "", false},
		{"a=1", "a", "1", true},
		{"a=1&a=2", "a", "1", true},
		{"b=2&a=3", "a", "3", true},
		{"a", "a", "", true},
		{"a=", "a", "", true},
		{"a=1+2", "a", "1 2", true},
		{"a=%31%32", "a", "12", true},
		{"%61=1", "a", "1", true},
		{"a+b=1", "a b", "1", true},
		{"a=%zz&a=2", "a", "2", true},
		{"a=1;b=2&a=3", "a", "3", true},
		{"&&a=1&", "a", "1", true},
		{"ab=1", "a", "", false},
		{"A=1", "a", "", false},
	}
	for _, tt := range tests {
		enc, ok := queryGet(tt.raw, tt.key)
		got, err := url.QueryUnescape(enc)
		if err != nil || ok != tt.wantOK || got != tt.want {
			t.Errorf("queryGet(%q, %q) = %q (decoded %q, %v), %v, want %q, %v",
				tt.raw, tt.key, enc, got, err, ok, tt.want, tt.wantOK)
		}
	}
}

func TestUnescapedEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		enc, want string
		equal     bool
	}{
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"a+b", "a b", true},
		{"a%20b", "a b", true},
		{"a%2", "a%2", false},
		{"%41", "A", true},
		{"%41", "AB", false},
		{"%41B", "A", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := unescapedEqual(tt.enc, tt.want); got != tt.equal {
			t.Errorf("unescapedEqual(%q, %q) = %v, want %v", tt.enc, tt.want, got, tt.equal)
		}
	}
}

// FuzzQuery checks queryGet and unescapedEqual against url.ParseQuery, the
// behaviour they promise without its allocations.
func FuzzQuery(f *testing.F) {
	f.Add("a=1&b=2", "a")
	f.Add("a=%zz&a=2", "a")
	f.Add("a;b=1&a=3", "a")
	f.Add("%61+b=x+y%20z", "a b")
	f.Add("a", "a")
	f.Fuzz(func(t *testing.T, raw, key string) {
		values, _ := url.ParseQuery(raw)
		enc, ok := queryGet(raw, key)
		if ok != values.Has(key) {
			t.Fatalf("queryGet(%q, %q) found = %v, want %v", raw, key, ok, values.Has(key))
		}
		if !ok {
			return
		}
		want := values.Get(key)
		got, err := url.QueryUnescape(enc)
		if err != nil || got != want {
			t.Fatalf("queryGet(%q, %q) = %q (decoded %q, %v), want %q", raw, key, enc, got, err, want)
		}
		if !unescapedEqual(enc, want) {
			t.Fatalf("unescapedEqual(%q, %q) = false, want true", enc, want)
		}
	})
}
