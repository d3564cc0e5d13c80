package ratelimit

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	const ip, route = "203.0.113.7", "api"
	tests := []struct {
		spec    string
		headers map[string][]string
		want    string
	}{
		{spec: "", want: ip},
		{spec: "client_ip", want: ip},
		{spec: "route", want: route},
		{spec: "header:X-User", headers: map[string][]string{"X-User": {"alice"}}, want: "alice"},
		{spec: "header:x-user", headers: map[string][]string{"X-User": {"alice"}}, want: "alice"}, // name is case-insensitive
		{spec: "header:X-User", headers: map[string][]string{"X-User": {"alice", "bob"}}, want: "alice"},
		{spec: "header:X-User", want: "\x00" + ip},                                               // missing: the client's own bucket
		{spec: "header:X-User", headers: map[string][]string{"X-User": {""}}, want: "\x00" + ip}, // empty counts as missing
		{spec: "header:X-User", headers: map[string][]string{"X-User": {ip}}, want: ip},          // never the fallback's key
	}
	for _, tt := range tests {
		kf, err := ParseKey(tt.spec)
		if err != nil {
			t.Errorf("ParseKey(%q) = %v", tt.spec, err)
			continue
		}
		r := httptest.NewRequest("GET", "/", nil)
		for k, vs := range tt.headers {
			r.Header[k] = vs
		}
		if got := kf(r, ip, route); got != tt.want {
			t.Errorf("ParseKey(%q) key for headers %v = %q, want %q", tt.spec, tt.headers, got, tt.want)
		}
	}
}

func TestParseKeyErrors(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"ip", "header:", "header:X User", "header:X:Y", "cookie:a", "Route", "client_ip "} {
		if kf, err := ParseKey(spec); err == nil || kf != nil {
			t.Errorf("ParseKey(%q) = %v, %v; want nil, an error", spec, kf != nil, err)
		} else if !strings.Contains(err.Error(), spec) {
			t.Errorf("ParseKey(%q) error %q does not name the setting", spec, err)
		}
	}
}

// FuzzParseKey: parsing never panics, and a parsed header key never
// returns a NUL-prefixed key for a present header value.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"", "client_ip", "route", "header:X-A", "header:", "header:\x00"} {
		f.Add(s, "v")
	}
	f.Fuzz(func(t *testing.T, spec, value string) {
		kf, err := ParseKey(spec)
		if err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/", nil)
		if name, ok := strings.CutPrefix(spec, "header:"); ok && value != "" && !strings.ContainsAny(value, "\x00\r\n") {
			r.Header.Set(name, value)
			if got := kf(r, "ip", "route"); got != value {
				t.Errorf("key for header %q = %q, want the value", value, got)
			}
		}
	})
}
