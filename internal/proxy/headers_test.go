package proxy

import (
	"net/http"
	"net/netip"
	"reflect"
	"testing"
)

func TestRemoveHopByHop(t *testing.T) {
	tests := []struct {
		desc string
		in   http.Header
		want http.Header
	}{
		{
			desc: "fixed hop-by-hop headers",
			in: http.Header{"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}, "Te": {"gzip"},
				"Transfer-Encoding": {"chunked"}, "Upgrade": {"websocket"}, "Proxy-Authorization": {"Basic x"},
				"Proxy-Connection": {"keep-alive"}, "Trailer": {"X-T"}, "X-Keep": {"1"}},
			want: http.Header{"X-Keep": {"1"}},
		},
		{
			desc: "headers named in Connection",
			in:   http.Header{"Connection": {"X-Foo, x-bar", " X-Baz "}, "X-Foo": {"s"}, "X-Bar": {"s"}, "X-Baz": {"s"}, "X-Keep": {"1"}},
			want: http.Header{"X-Keep": {"1"}},
		},
		{
			desc: "nothing to remove",
			in:   http.Header{"Content-Type": {"text/plain"}},
			want: http.Header{"Content-Type": {"text/plain"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			removeHopByHop(tt.in)
			if !reflect.DeepEqual(tt.in, tt.want) {
				t.Errorf("removeHopByHop = %v, want %v", tt.in, tt.want)
			}
		})
	}
}

func TestCopyRequestHeader(t *testing.T) {
	in := http.Header{"Te": {"trailers, deflate"}, "Connection": {"Upgrade, X-Secret"}, "Upgrade": {"websocket"},
		"X-Secret": {"s"}, "Accept": {"*/*"}}
	got := copyRequestHeader(in, "websocket")
	want := http.Header{"Te": {"trailers"}, "Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Accept": {"*/*"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("copyRequestHeader = %v, want %v", got, want)
	}
	if _, ok := in["X-Secret"]; !ok {
		t.Errorf("copyRequestHeader modified the client's header")
	}
}

func TestUpgradeType(t *testing.T) {
	tests := []struct {
		h    http.Header
		want string
	}{
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, "websocket"},
		{http.Header{"Connection": {"keep-alive, upgrade"}, "Upgrade": {"websocket"}}, "websocket"},
		{http.Header{"Upgrade": {"websocket"}}, ""},
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}}, ""},
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"H2C"}}, ""},
	}
	for _, tt := range tests {
		if got := upgradeType(tt.h); got != tt.want {
			t.Errorf("upgradeType(%v) = %q, want %q", tt.h, got, tt.want)
		}
	}
}

func TestSetForwarded(t *testing.T) {
	peer := netip.MustParseAddr("10.0.0.9")
	tests := []struct {
		desc    string
		in      http.Header
		trusted bool
		want    http.Header
	}{
		{
			desc: "untrusted peer replaces client-supplied values",
			in:   http.Header{"X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil"}},
			want: http.Header{"X-Forwarded-For": {"10.0.0.9"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"example.com"}, "Via": {"1.1 keel"}},
		},
		{
			desc:    "trusted peer appends and keeps proto/host",
			in:      http.Header{"X-Forwarded-For": {"1.2.3.4", "5.6.7.8"}, "X-Forwarded-Proto": {"https"}, "Via": {"1.1 lb"}},
			trusted: true,
			want: http.Header{"X-Forwarded-For": {"1.2.3.4, 5.6.7.8, 10.0.0.9"}, "X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host": {"example.com"}, "Via": {"1.1 lb, 1.1 keel"}},
		},
		{
			desc:    "trusted peer without prior values",
			in:      http.Header{},
			trusted: true,
			want: http.Header{"X-Forwarded-For": {"10.0.0.9"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"example.com"}, "Via": {"1.1 keel"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			setForwarded(tt.in, peer, tt.trusted, "http", "example.com", "1.1 keel")
			if !reflect.DeepEqual(tt.in, tt.want) {
				t.Errorf("setForwarded = %v, want %v", tt.in, tt.want)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	peerT := netip.MustParseAddr("10.1.1.1")
	peerU := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		desc        string
		peer        netip.Addr
		trustedPeer bool
		xff         []string
		want        string
	}{
		{"untrusted peer ignores XFF", peerU, false, []string{"198.51.100.7"}, "192.0.2.1"},
		{"trusted peer, single hop", peerT, true, []string{"198.51.100.7"}, "198.51.100.7"},
		{"trusted peer skips trusted hops from the right", peerT, true, []string{"198.51.100.7, 10.2.2.2"}, "198.51.100.7"},
		{"right-most untrusted wins over spoofed left", peerT, true, []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"multiple header lines", peerT, true, []string{"6.6.6.6", "198.51.100.7, 10.3.3.3"}, "198.51.100.7"},
		{"garbage falls back to peer", peerT, true, []string{"not-an-ip"}, "10.1.1.1"},
		{"all trusted falls back to peer", peerT, true, []string{"10.9.9.9"}, "10.1.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := clientIP(tt.peer, tt.trustedPeer, tt.xff, trusted).String(); got != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRewritePath(t *testing.T) {
	tests := []struct{ path, prefix, repl, want string }{
		{"/api/users", "/api", "/", "/users"},
		{"/api", "/api", "/", "/"},
		{"/api/", "/api", "/", "/"},
		{"/api/users", "/api", "/v2", "/v2/users"},
		{"/api/users", "/api/", "/v2/", "/v2/users"},
		{"/api/users", "/api/", "/v2", "/v2/users"},
		{"/canary/hello", "/canary", "/", "/hello"},
	}
	for _, tt := range tests {
		if got := rewritePath(tt.path, tt.prefix, tt.repl); got != tt.want {
			t.Errorf("rewritePath(%q, %q, %q) = %q, want %q", tt.path, tt.prefix, tt.repl, got, tt.want)
		}
	}
}

func TestValidRequestID(t *testing.T) {
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		id   string
		want bool
	}{
		{"abc-123", true}, {"a.b_c:d-e", true}, {"", false}, {"has space", false},
		{"quote\"", false}, {string(long), false}, {string(long[:128]), true},
	}
	for _, tt := range tests {
		if got := validRequestID(tt.id); got != tt.want {
			t.Errorf("validRequestID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
