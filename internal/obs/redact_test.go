package obs

import "testing"

func TestRedactorPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc        string
		redactQuery bool
		nilRedactor bool
		in, want    string
	}{
		{"query redacted", true, false, "/a/b?token=secret&x=1", "/a/b?REDACTED"},
		{"no query", true, false, "/a/b", "/a/b"},
		{"empty query", true, false, "/a/b?", "/a/b?"},
		{"root with query", true, false, "/?q=1", "/?REDACTED"},
		{"second question mark", true, false, "/a?b?c", "/a?REDACTED"},
		{"empty", true, false, "", ""},
		{"redaction off", false, false, "/a/b?token=secret", "/a/b?token=secret"},
		{"nil redactor keeps query", false, true, "/a/b?token=secret", "/a/b?token=secret"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r := NewRedactor(nil, tt.redactQuery)
			if tt.nilRedactor {
				r = nil
			}
			if got := r.Path(tt.in); got != tt.want {
				t.Errorf("Path(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactorHeader(t *testing.T) {
	t.Parallel()
	configured := []string{"X-Api-Key", " x-internal-token ", "", "cookie", "X-API-KEY"}
	tests := []struct {
		name       string
		want       bool // with the configured list
		wantNilRed bool // with a nil *Redactor
	}{
		{"Authorization", true, true},
		{"authorization", true, true},
		{"PROXY-AUTHORIZATION", true, true},
		{"Cookie", true, true},
		{"set-cookie", true, true},
		{"X-Api-Key", true, false},
		{"x-api-key", true, false},
		{"X-Internal-Token", true, false},
		{"Content-Type", false, false},
		{"X-Api-Key-Id", false, false},
		{"", false, false},
	}
	r := NewRedactor(configured, false)
	var nilRed *Redactor
	for _, tt := range tests {
		if got := r.Header(tt.name); got != tt.want {
			t.Errorf("Header(%q) = %v, want %v", tt.name, got, tt.want)
		}
		if got := nilRed.Header(tt.name); got != tt.wantNilRed {
			t.Errorf("nil Redactor: Header(%q) = %v, want %v", tt.name, got, tt.wantNilRed)
		}
	}
	// Duplicates, blanks and always-secret names are not stored twice.
	if got, want := len(r.headers), 2; got != want {
		t.Errorf("NewRedactor(%q) kept %d names %q, want %d", configured, got, r.headers, want)
	}
}

func TestRedactorHeaderAllocs(t *testing.T) {
	r := NewRedactor([]string{"X-Api-Key"}, true)
	if got := testing.AllocsPerRun(100, func() { r.Header("x-api-key") }); got != 0 {
		t.Errorf("Header allocs per run = %v, want 0", got)
	}
}
