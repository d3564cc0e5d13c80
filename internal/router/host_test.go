package router

import "testing"

func TestHostname(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"example.com", "example.com"},
		{"Example.COM:8080", "Example.COM"},
		{"example.com.", "example.com"},
		{"example.com.:443", "example.com"},
		{"[::1]:80", "::1"},
		{"[::1]", "::1"},
		{"::1", "::1"},
		{"[::1", "[::1"},
		{"127.0.0.1:9000", "127.0.0.1"},
		{".", "."},
	}
	for _, tt := range tests {
		if got := hostname(tt.in); got != tt.want {
			t.Errorf("hostname(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClassifyHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		wantKind hostKind
		wantKey  string
		wantErr  bool
	}{
		{"", hostAny, "", false},
		{"*", hostAny, "", false},
		{"API.Example.com", hostExact, "api.example.com", false},
		{"api.example.com.", hostExact, "api.example.com", false},
		{"[::1]", hostExact, "::1", false},
		{"::1", hostExact, "::1", false},
		{"*.Example.com", hostWildcard, ".example.com", false},
		{`.*\.example\.com`, hostRegex, `.*\.example\.com`, false},
		{"(a|b).example.com", hostRegex, "(a|b).example.com", false},
		{"api.example.com:8080", 0, "", true},
		{"*.example.com:8080", 0, "", true},
		{"*example.com", 0, "", true},
		{"*.", 0, "", true},
		{"*.a*", 0, "", true},
		{"a*", 0, "", true},
		// ".*" and brackets are regex syntax: these are regexes (and
		// the last two fail to compile, see TestCompileErrors).
		{"api.*.com", hostRegex, "api.*.com", false},
		{"[a-z]+.com", hostRegex, "[a-z]+.com", false},
		{"[::1", hostRegex, "[::1", false},
		{"[]", hostRegex, "[]", false},
	}
	for _, tt := range tests {
		kind, key, err := classifyHost(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("classifyHost(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if kind != tt.wantKind || key != tt.wantKey {
			t.Errorf("classifyHost(%q) = %v, %q, want %v, %q", tt.in, kind, key, tt.wantKind, tt.wantKey)
		}
	}
}

// lowerASCIISimple is the definition lowerASCII must agree with.
func lowerASCIISimple(s string) (string, bool) {
	b := []byte(s)
	ascii := true
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
		ascii = ascii && c < 0x80
	}
	return string(b), ascii
}

func TestLowerASCII(t *testing.T) {
	t.Parallel()
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	for _, s := range []string{"", "A", "API.EXAMPLE.COM", "svc0.example.com", "@[`{AZaz",
		"caf\xc3\xa9.COM", "ABCDEFG\x80", string(all)} {
		got, gotASCII := lowerASCII([]byte("prefix"), s)
		want, wantASCII := lowerASCIISimple(s)
		if string(got) != "prefix"+want || gotASCII != wantASCII {
			t.Errorf("lowerASCII(%q) = %q, %v, want %q, %v", s, got, gotASCII, "prefix"+want, wantASCII)
		}
	}
	// Every byte value in every position of an eight-byte word.
	for off := range 8 {
		s := string(all[off:]) + string(all[:off])
		got, _ := lowerASCII(nil, s)
		if want, _ := lowerASCIISimple(s); string(got) != want {
			t.Errorf("lowerASCII(all bytes rotated by %d) = %q, want %q", off, got, want)
		}
	}
}

func FuzzLowerASCII(f *testing.F) {
	f.Add("API.Example.COM")
	f.Add("\xff@[`{AZaz0123456789")
	f.Fuzz(func(t *testing.T, s string) {
		got, gotASCII := lowerASCII(nil, s)
		want, wantASCII := lowerASCIISimple(s)
		if string(got) != want || gotASCII != wantASCII {
			t.Fatalf("lowerASCII(%q) = %q, %v, want %q, %v", s, got, gotASCII, want, wantASCII)
		}
	})
}
