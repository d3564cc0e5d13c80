package httpwire

import (
	"math"
	"net/http"
	"strconv"
	"testing"
)

func TestValidToken(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"Content-Type", true}, {"x!#$%&'*+-.^_`|~9", true}, {"", false},
		{"has space", false}, {"colon:", false}, {"é", false}, {"a\x7f", false},
	}
	for _, tt := range tests {
		if got := ValidToken(tt.s); got != tt.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestValidFieldValue(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"text/html; q=0.9", true}, {"tab\there", true}, {"", true}, {"caf\xc3\xa9", true},
		{"split\r\nX-Evil: 1", false}, {"lf\n", false}, {"nul\x00", false}, {"del\x7f", false},
	}
	for _, tt := range tests {
		if got := ValidFieldValue(tt.s); got != tt.want {
			t.Errorf("ValidFieldValue(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestTrimOWSAndHasToken(t *testing.T) {
	if got := TrimOWS(" \t a b \t "); got != "a b" {
		t.Errorf("TrimOWS = %q, want %q", got, "a b")
	}
	tests := []struct {
		values []string
		token  string
		want   bool
	}{
		{[]string{"keep-alive, Upgrade"}, "upgrade", true},
		{[]string{"close"}, "upgrade", false},
		{[]string{"a", " b ,c"}, "C", true},
		{[]string{"upgrades"}, "upgrade", false},
		{nil, "x", false},
	}
	for _, tt := range tests {
		if got := HasToken(tt.values, tt.token); got != tt.want {
			t.Errorf("HasToken(%q, %q) = %v, want %v", tt.values, tt.token, got, tt.want)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		s    string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1234", 1234, true}, {strconv.FormatInt(math.MaxInt64, 10), math.MaxInt64, true},
		{"9223372036854775808", 0, false}, {"", 0, false}, {"-1", 0, false}, {"+1", 0, false},
		{" 1", 0, false}, {"1a", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseDecimal(tt.s)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseDecimal(%q) = %d, %v, want %d, %v", tt.s, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCanonicalKey(t *testing.T) {
	for _, name := range []string{"content-type", "CONTENT-TYPE", "Content-Type", "x-custom-thing",
		"www-authenticate", "grpc-status", "X-Request-ID", "te", "a", "ab-cd-ef"} {
		if got, want := CanonicalKey(name), http.CanonicalHeaderKey(name); got != want {
			t.Errorf("CanonicalKey(%q) = %q, want %q", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { CanonicalKey("content-type") }); n != 0 {
		t.Errorf("CanonicalKey of a common lower-case name allocates %v times, want 0", n)
	}
	for lower, canon := range commonNames {
		if http.CanonicalHeaderKey(lower) != canon || len(lower) > maxCommonLen {
			t.Errorf("commonNames[%q] = %q, want %q (len <= %d)", lower, canon, http.CanonicalHeaderKey(lower), maxCommonLen)
		}
	}
}

func FuzzCanonicalKey(f *testing.F) {
	for _, s := range []string{"content-type", "X-Y", "a-", "-a", "ÄÖ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidToken(s) {
			return
		}
		if got, want := CanonicalKey(s), http.CanonicalHeaderKey(s); got != want {
			t.Errorf("CanonicalKey(%q) = %q, want %q", s, got, want)
		}
	})
}

func TestDeclaredTrailers(t *testing.T) {
	tests := []struct {
		in      []string
		want    http.Header
		wantErr bool
	}{
		{nil, nil, false},
		{[]string{""}, nil, false},
		{[]string{"grpc-status, Grpc-Message", " x-checksum "}, http.Header{"Grpc-Status": nil, "Grpc-Message": nil, "X-Checksum": nil}, false},
		{[]string{"bad name"}, nil, true},
		{[]string{"X-A, content-length"}, nil, true},
		{[]string{"Host"}, nil, true},
		{[]string{"Trailer"}, nil, true},
	}
	for _, tt := range tests {
		got, err := DeclaredTrailers(tt.in)
		if (err != nil) != tt.wantErr || len(got) != len(tt.want) {
			t.Errorf("DeclaredTrailers(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			continue
		}
		for k := range tt.want {
			if _, ok := got[k]; !ok {
				t.Errorf("DeclaredTrailers(%q) lacks %q", tt.in, k)
			}
		}
	}
}
