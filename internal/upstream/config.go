package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Balancer names a load-balancing algorithm. The zero value means unset;
// Build treats it as RoundRobin.
type Balancer int

// The balancers of SPEC section 3 (`pools[].balancer`).
const (
	RoundRobin Balancer = iota + 1
	WeightedRoundRobin
	LeastRequest
	Random
	ConsistentHash
)

// ParseBalancer maps a config name ("round_robin", "weighted_round_robin",
// "least_request", "random", "consistent_hash") to its Balancer.
func ParseBalancer(s string) (Balancer, error) {
	for b := RoundRobin; b <= ConsistentHash; b++ {
		if b.String() == s {
			return b, nil
		}
	}
	return 0, fmt.Errorf("unknown balancer %q (want round_robin, weighted_round_robin, least_request, random or consistent_hash)", s)
}

// String returns the config name of b, or "Balancer(N)" for a value outside
// the enum.
func (b Balancer) String() string {
	switch b {
	case RoundRobin:
		return "round_robin"
	case WeightedRoundRobin:
		return "weighted_round_robin"
	case LeastRequest:
		return "least_request"
	case Random:
		return "random"
	case ConsistentHash:
		return "consistent_hash"
	}
	return "Balancer(" + strconv.Itoa(int(b)) + ")"
}

// Protocol is the wire protocol spoken to a pool's endpoints. The zero value
// means unset; Build treats it as HTTP1.
type Protocol int

// The upstream protocols of SPEC section 3 (`pools[].protocol`).
const (
	// HTTP1 is HTTP/1.1 over plain TCP.
	HTTP1 Protocol = iota + 1
	// HTTP2 is HTTP/2 over TLS (ALPN h2). Build rejects it until upstream TLS
	// is supported.
	HTTP2
	// H2C is HTTP/2 over plain TCP with prior knowledge (RFC 9113 section
	// 3.3), what gRPC backends without TLS speak.
	H2C
)

// ParseProtocol maps a config name ("http1", "http2", "h2c") to its Protocol.
func ParseProtocol(s string) (Protocol, error) {
	for p := HTTP1; p <= H2C; p++ {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q (want http1, http2 or h2c)", s)
}

// String returns the config name of p, or "Protocol(N)" outside the enum.
func (p Protocol) String() string {
	switch p {
	case HTTP1:
		return "http1"
	case HTTP2:
		return "http2"
	case H2C:
		return "h2c"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// HashKind says where consistent hashing takes its key from. The zero value
// means unset.
type HashKind int

// The key sources of `pools[].hash_key`.
const (
	// HashHeader hashes the first value of a request header.
	HashHeader HashKind = iota + 1
	// HashCookie hashes the value of a request cookie.
	HashCookie
	// HashClientIP hashes the client address the caller passes to Pick.
	HashClientIP
)

// HashKey is a parsed `hash_key`. The zero value means unset, which Build
// rejects for a consistent_hash pool. Name is the canonical header name for
// HashHeader, the cookie name for HashCookie, and empty for HashClientIP.
type HashKey struct {
	Kind HashKind
	Name string
}

// ParseHashKey parses "header:NAME", "cookie:NAME" or "client_ip". Header
// names are canonicalised (so Pick can index r.Header without allocating);
// cookie names are kept as written, since cookies are case-sensitive.
func ParseHashKey(s string) (HashKey, error) {
	if s == "client_ip" {
		return HashKey{Kind: HashClientIP}, nil
	}
	if name, ok := strings.CutPrefix(s, "header:"); ok {
		if !isToken(name) {
			return HashKey{}, fmt.Errorf("hash key %q: invalid header name", s)
		}
		return HashKey{Kind: HashHeader, Name: http.CanonicalHeaderKey(name)}, nil
	}
	if name, ok := strings.CutPrefix(s, "cookie:"); ok {
		if !isToken(name) {
			return HashKey{}, fmt.Errorf("hash key %q: invalid cookie name", s)
		}
		return HashKey{Kind: HashCookie, Name: name}, nil
	}
	return HashKey{}, fmt.Errorf("unknown hash key %q (want header:NAME, cookie:NAME or client_ip)", s)
}

// String returns the config form of k ("header:X-User", "cookie:session",
// "client_ip"), or "" for the zero key.
func (k HashKey) String() string {
	switch k.Kind {
	case HashHeader:
		return "header:" + k.Name
	case HashCookie:
		return "cookie:" + k.Name
	case HashClientIP:
		return "client_ip"
	}
	return ""
}

// isToken reports whether s is a non-empty RFC 9110 token, the grammar of
// both header field names and cookie names (RFC 6265 section 4.1.1).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Transport defaults, applied to zero fields of TransportConfig.
const (
	DefaultMaxIdlePerEndpoint = 256
	DefaultIdleTimeout        = 90 * time.Second
	DefaultDialTimeout        = time.Second
)

// TransportConfig tunes the connections to each endpoint of a pool. Zero
// fields take the defaults: MaxIdlePerEndpoint 256, IdleTimeout 90s,
// DialTimeout 1s, ResponseHeaderTimeout none. Negative values are rejected.
type TransportConfig struct {
	// MaxIdlePerEndpoint caps the idle keep-alive connections kept per
	// endpoint (HTTP/1.1; an HTTP/2 endpoint multiplexes over few).
	MaxIdlePerEndpoint int
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
	// DialTimeout bounds opening the TCP connection.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers after the
	// request was written; zero means no bound beyond the request context.
	ResponseHeaderTimeout time.Duration
}

// withDefaults returns c with zero fields replaced by the defaults, so that
// an explicit default and an omitted field give the same endpoint key.
func (c TransportConfig) withDefaults() (TransportConfig, error) {
	if c.MaxIdlePerEndpoint < 0 || c.IdleTimeout < 0 || c.DialTimeout < 0 || c.ResponseHeaderTimeout < 0 {
		return c, errors.New("transport: negative value")
	}
	if c.MaxIdlePerEndpoint == 0 {
		c.MaxIdlePerEndpoint = DefaultMaxIdlePerEndpoint
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	return c, nil
}

// EndpointConfig is one configured endpoint. Address is "host:port" or
// "http://host[:port]" (port 80 when omitted); Weight 0 is treated as 1 and
// negative weights are rejected.
type EndpointConfig struct {
	Address string
	Weight  int
}

// PoolConfig is everything Build needs to compile one pool. ID must be
// non-empty and Endpoints non-empty, with distinct addresses. Zero Balancer
// means RoundRobin, zero Protocol means HTTP1; HashKey is required for
// ConsistentHash and ignored otherwise. Build copies what it keeps, so the
// caller may reuse the slices.
type PoolConfig struct {
	ID        string
	Endpoints []EndpointConfig
	Balancer  Balancer
	HashKey   HashKey
	Protocol  Protocol
	Transport TransportConfig
}

// ErrTLSUnsupported is wrapped by the Build error for a pool that needs TLS
// to its endpoints (protocol http2, https:// addresses), which this package
// does not implement yet.
var ErrTLSUnsupported = errors.New("upstream TLS (not supported yet)")

// normalizeAddress turns a configured address into the "host:port" form used
// as the endpoint key and dial address, so "http://a:80" and "a:80" are the
// same endpoint.
func normalizeAddress(s string) (string, error) {
	scheme, rest, hasScheme := strings.Cut(s, "://")
	if !hasScheme {
		return hostPort(s)
	}
	switch strings.ToLower(scheme) {
	case "http":
	case "https":
		return "", fmt.Errorf("address %q needs %w", s, ErrTLSUnsupported)
	default:
		return "", fmt.Errorf("address %q: unsupported scheme %q", s, scheme)
	}
	u, err := url.Parse("http://" + rest)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", s, err)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("address %q: only scheme, host and port are allowed", s)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return hostPort(net.JoinHostPort(u.Hostname(), port))
}

// hostPort validates a "host:port" address and returns it in canonical
// form (IPv6 literals bracketed).
func hostPort(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("address %q: want host:port: %w", s, err)
	}
	if host == "" || strings.ContainsAny(host, " /?#@[]") {
		return "", fmt.Errorf("address %q: invalid host", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("address %q: invalid port %q", s, port)
	}
	// Host names are case-insensitive and ports may carry leading zeros;
	// canonicalising both keeps one endpoint key per destination.
	return net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(n, 10)), nil
}
