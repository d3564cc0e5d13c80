package upstream

import (
	"testing"
	"time"
)

func TestParseBalancer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Balancer
		wantErr bool
	}{
		{in: "round_robin", want: RoundRobin},
		{in: "weighted_round_robin", want: WeightedRoundRobin},
		{in: "least_request", want: LeastRequest},
		{in: "random", want: Random},
		{in: "consistent_hash", want: ConsistentHash},
		{in: "", wantErr: true},
		{in: "Round_Robin", wantErr: true},
		{in: "ring_hash", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseBalancer(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseBalancer(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("ParseBalancer(%q).String() = %q, want %q", tt.in, got.String(), tt.in)
		}
	}
	if got, want := Balancer(0).String(), "Balancer(0)"; got != want {
		t.Errorf("Balancer(0).String() = %q, want %q", got, want)
	}
}

func TestParseProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Protocol
		wantErr bool
	}{
		{in: "http1", want: HTTP1},
		{in: "http2", want: HTTP2},
		{in: "h2c", want: H2C},
		{in: "http/1.1", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseProtocol(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseProtocol(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("ParseProtocol(%q).String() = %q, want %q", tt.in, got.String(), tt.in)
		}
	}
}

func TestParseHashKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    HashKey
		wantErr bool
	}{
		{in: "client_ip", want: HashKey{Kind: HashClientIP}},
		{in: "header:X-User", want: HashKey{Kind: HashHeader, Name: "X-User"}},
		{in: "header:x-user", want: HashKey{Kind: HashHeader, Name: "X-User"}},
		{in: "cookie:session", want: HashKey{Kind: HashCookie, Name: "session"}},
		{in: "cookie:Session_ID", want: HashKey{Kind: HashCookie, Name: "Session_ID"}},
		{in: "header:", wantErr: true},
		{in: "header:X User", wantErr: true},
		{in: "cookie:a=b", wantErr: true},
		{in: "cookie:", wantErr: true},
		{in: "query:id", wantErr: true},
		{in: "", wantErr: true},
		{in: "client_IP", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseHashKey(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseHashKey(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseHashKey checks that every key that parses prints back to a string
// that parses to the same key.
func FuzzParseHashKey(f *testing.F) {
	for _, seed := range []string{"client_ip", "header:X-User", "header:x-user", "cookie:sid", "header:", "cookie:a b", "x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseHashKey(s)
		if err != nil {
			return
		}
		again, err := ParseHashKey(k.String())
		if err != nil || again != k {
			t.Errorf("ParseHashKey(%q) = %+v; ParseHashKey(%q) = %+v, %v", s, k, k.String(), again, err)
		}
	})
}

func TestNormalizeAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		want       string
		wantScheme string
	}{
		{in: "127.0.0.1:8080", want: "127.0.0.1:8080"},
		{in: "Backend.Local:80", want: "backend.local:80"},
		{in: "127.0.0.1:0080", want: "127.0.0.1:80"},
		{in: "[::1]:9000", want: "[::1]:9000"},
		{in: "http://127.0.0.1:8080", want: "127.0.0.1:8080", wantScheme: "http"},
		{in: "http://127.0.0.1:8080/", want: "127.0.0.1:8080", wantScheme: "http"},
		{in: "HTTP://127.0.0.1", want: "127.0.0.1:80", wantScheme: "http"},
		{in: "http://[::1]", want: "[::1]:80", wantScheme: "http"},
		{in: "https://127.0.0.1:8443", want: "127.0.0.1:8443", wantScheme: "https"},
		{in: "HTTPS://Backend.Local", want: "backend.local:443", wantScheme: "https"},
		{in: "https://[::1]", want: "[::1]:443", wantScheme: "https"},
		{in: "https://127.0.0.1:443/x"},
		{in: "ftp://127.0.0.1:21"},
		{in: "http://127.0.0.1:8080/api"},
		{in: "http://user@127.0.0.1:8080"},
		{in: "127.0.0.1"},
		{in: ":8080"},
		{in: "127.0.0.1:0"},
		{in: "127.0.0.1:65536"},
		{in: "127.0.0.1:http"},
		{in: "a/b:80"},
		{in: ""},
	}
	for _, tt := range tests {
		got, scheme, err := normalizeAddress(tt.in)
		if tt.want != "" {
			if err != nil || got != tt.want || scheme != tt.wantScheme {
				t.Errorf("normalizeAddress(%q) = %q, %q, %v; want %q, %q", tt.in, got, scheme, err, tt.want, tt.wantScheme)
			}
			continue
		}
		if err == nil {
			t.Errorf("normalizeAddress(%q) = %q, want an error", tt.in, got)
		}
	}
}

func TestTransportConfigDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      TransportConfig
		want    TransportConfig
		wantErr bool
	}{
		{
			name: "zero",
			want: TransportConfig{MaxIdlePerEndpoint: 256, IdleTimeout: 90 * time.Second, DialTimeout: time.Second},
		},
		{
			name: "explicit",
			in:   TransportConfig{MaxIdlePerEndpoint: 8, IdleTimeout: time.Second, DialTimeout: 50 * time.Millisecond, ResponseHeaderTimeout: 2 * time.Second},
			want: TransportConfig{MaxIdlePerEndpoint: 8, IdleTimeout: time.Second, DialTimeout: 50 * time.Millisecond, ResponseHeaderTimeout: 2 * time.Second},
		},
		{name: "negative", in: TransportConfig{DialTimeout: -1}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := tt.in.withDefaults()
		if tt.wantErr {
			if err == nil {
				t.Errorf("%s: withDefaults() = %+v, want an error", tt.name, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: withDefaults() = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}
