package upstream

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keelproxy/keel/internal/httpwire"
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
	// HTTP2 is HTTP/2 over TLS (ALPN h2); every endpoint of the pool must
	// use TLS.
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
		if !httpwire.ValidToken(name) {
			return HashKey{}, fmt.Errorf("hash key %q: invalid header name", s)
		}
		return HashKey{Kind: HashHeader, Name: http.CanonicalHeaderKey(name)}, nil
	}
	if name, ok := strings.CutPrefix(s, "cookie:"); ok {
		if !httpwire.ValidToken(name) {
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
	// DialTimeout bounds opening a connection: the TCP connect and, for a
	// TLS endpoint, the handshake, together.
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
	c.MaxIdlePerEndpoint = cmp.Or(c.MaxIdlePerEndpoint, DefaultMaxIdlePerEndpoint)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	return c, nil
}

// EndpointConfig is one configured endpoint. Address is "host:port",
// "http://host[:port]" (port 80 when omitted) or "https://host[:port]"
// (TLS, port 443 when omitted); Weight 0 is treated as 1 and negative
// weights are rejected.
type EndpointConfig struct {
	Address string
	Weight  int
}

// PoolConfig is everything Build needs to compile one pool. ID must be
// non-empty and Endpoints non-empty, with distinct addresses. Zero Balancer
// means RoundRobin, zero Protocol means HTTP1; HashKey is required for
// ConsistentHash and ignored otherwise. Build copies what it keeps, so the
// caller may reuse the slices.
//
// Health, Passive and Outlier are the pool's endpoint health settings
// (SPEC section 7); nil, or a block equal to its zero value, turns that
// mechanism off. A pool with all three off selects exactly as Pick does.
//
// An endpoint speaks TLS when the pool has TLS settings or its address is
// https://. Protocol HTTP2 needs TLS on every endpoint, H2C on none; an
// explicit http:// address in a pool with TLS settings is rejected rather
// than guessed at.
type PoolConfig struct {
	ID        string
	Endpoints []EndpointConfig
	Balancer  Balancer
	HashKey   HashKey
	Protocol  Protocol
	Transport TransportConfig
	// TLS turns TLS on for every endpoint; nil means TLS only for https://
	// addresses, with the zero TLSConfig (system roots, SNI from the
	// host). Build reads and parses its files and fails, naming the file,
	// when one is unreadable or invalid. An endpoint's identity includes
	// the settings and the files' contents: an apply that changes either
	// gives it new connections, an unchanged one keeps them.
	TLS *TLSConfig
	// Health configures active checks; nil means none.
	Health *HealthCheck
	// Passive configures passive ejection from live traffic; nil means
	// none.
	Passive *PassiveHealth
	// Outlier configures outlier detection; nil means none.
	Outlier *OutlierDetection
}

// Address schemes, as normalizeAddress reports them.
const (
	schemeNone  = "" // "host:port"
	schemeHTTP  = "http"
	schemeHTTPS = "https"
)

// normalizeAddress turns a configured address into the "host:port" form used
// as the endpoint key and dial address, so "http://a:80" and "a:80" are the
// same endpoint, and returns the scheme written (lower case, "" for none).
func normalizeAddress(s string) (addr, scheme string, err error) {
	scheme, rest, hasScheme := strings.Cut(s, "://")
	if !hasScheme {
		addr, err = hostPort(s)
		return addr, schemeNone, err
	}
	defaultPort := "80"
	switch scheme = strings.ToLower(scheme); scheme {
	case schemeHTTP:
	case schemeHTTPS:
		defaultPort = "443"
	default:
		return "", "", fmt.Errorf("address %q: unsupported scheme %q", s, scheme)
	}
	u, err := url.Parse("http://" + rest)
	if err != nil {
		return "", "", fmt.Errorf("address %q: %w", s, err)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("address %q: only scheme, host and port are allowed", s)
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	addr, err = hostPort(net.JoinHostPort(u.Hostname(), port))
	return addr, scheme, err
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

// Health defaults, applied to zero fields of an enabled HealthCheck,
// PassiveHealth or OutlierDetection. They match the config file's defaults
// (SPEC section 3), so a caller that already applied those gets the same
// settings.
const (
	DefaultHealthTimeout      = time.Second
	DefaultHealthPath         = "/health"
	DefaultHealthStatusLo     = 200
	DefaultHealthStatusHi     = 399
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3
	DefaultEjectionDuration   = 30 * time.Second
	DefaultOutlierInterval    = 10 * time.Second
	DefaultBaseEjectionTime   = 30 * time.Second
	DefaultMaxEjectionPercent = 50
)

// HealthCheck configures active health checks: every Interval, each
// endpoint of the pool gets an HTTP GET of Path through its own transport,
// bounded by Timeout; a status in [StatusLo, StatusHi] is a success,
// anything else (a connect failure, reset or timeout included) a failure.
// HealthyThreshold successes in a row make an unhealthy endpoint healthy,
// UnhealthyThreshold failures in a row make a healthy one unhealthy.
// Endpoints start healthy, so a new pool (or a new endpoint) takes traffic
// at once rather than after HealthyThreshold probes; the first probe goes
// out when Commit activates the pool. An endpoint keeps its verdict across
// applies that keep it, even when the check settings change (the new
// checker's thresholds then decide when it flips); with the checks turned
// off it is healthy.
//
// Interval turns the checks on: the zero value is off, and a block that
// sets other fields without Interval is rejected. The other zero fields
// take the defaults: Timeout 1s (or Interval when shorter), Path /health,
// StatusLo-StatusHi 200-399 (StatusHi zero alone means StatusLo only),
// HealthyThreshold 2, UnhealthyThreshold 3. Negative values, a Timeout
// longer than Interval, a Path not starting with "/" and statuses outside
// 100-599 are rejected.
type HealthCheck struct {
	// Interval between the starts of two probes of an endpoint; zero means
	// no active checks.
	Interval time.Duration
	// Timeout bounds one probe, connect to body; zero means 1s (or
	// Interval when shorter). At most Interval.
	Timeout time.Duration
	// Path is the probed request target, "/..." with an optional query;
	// empty means /health.
	Path string
	// StatusLo and StatusHi are the inclusive range of healthy statuses;
	// both zero mean 200-399, StatusHi zero alone means StatusLo only.
	StatusLo, StatusHi int
	// HealthyThreshold is the good probes in a row that heal an unhealthy
	// endpoint; zero means 2.
	HealthyThreshold int
	// UnhealthyThreshold is the failed probes in a row that make a healthy
	// endpoint unhealthy; zero means 3.
	UnhealthyThreshold int
}

// withDefaults validates h and fills its zero fields; the zero HealthCheck
// stays zero (off).
func (h HealthCheck) withDefaults() (HealthCheck, error) {
	if h == (HealthCheck{}) {
		return h, nil
	}
	if h.Interval < 0 || h.Timeout < 0 || h.HealthyThreshold < 0 || h.UnhealthyThreshold < 0 || h.StatusLo < 0 || h.StatusHi < 0 {
		return h, errors.New("health: negative value")
	}
	if h.Interval == 0 {
		return h, errors.New("health: interval is required")
	}
	h.Timeout = cmp.Or(h.Timeout, min(DefaultHealthTimeout, h.Interval))
	if h.Timeout > h.Interval {
		return h, fmt.Errorf("health: timeout %v exceeds interval %v", h.Timeout, h.Interval)
	}
	h.Path = cmp.Or(h.Path, DefaultHealthPath)
	if _, err := url.ParseRequestURI(h.Path); err != nil || h.Path[0] != '/' || strings.HasPrefix(h.Path, "//") || strings.ContainsAny(h.Path, " \t#") {
		return h, fmt.Errorf("health: path %q: want an absolute path (and optional query)", h.Path)
	}
	switch {
	case h.StatusLo == 0 && h.StatusHi == 0:
		h.StatusLo, h.StatusHi = DefaultHealthStatusLo, DefaultHealthStatusHi
	case h.StatusHi == 0:
		h.StatusHi = h.StatusLo
	case h.StatusLo == 0:
		return h, errors.New("health: status range has an upper bound but no lower bound")
	}
	if h.StatusLo < 100 || h.StatusHi > 599 || h.StatusLo > h.StatusHi {
		return h, fmt.Errorf("health: invalid status range %d-%d (want 100-599, low <= high)", h.StatusLo, h.StatusHi)
	}
	h.HealthyThreshold = cmp.Or(h.HealthyThreshold, DefaultHealthyThreshold)
	h.UnhealthyThreshold = cmp.Or(h.UnhealthyThreshold, DefaultUnhealthyThreshold)
	return h, nil
}

// PassiveHealth configures passive ejection: ConsecutiveFailures failed
// attempts in a row (as reported by Endpoint.Report) eject the endpoint for
// EjectionDuration. Passive ejection is not capped: when every endpoint is
// out the pool fails open at a trickle (see Pool.Select).
//
// ConsecutiveFailures turns it on: the zero value is off, and a block that
// sets EjectionDuration without it is rejected. Zero EjectionDuration means
// 30s; negative values are rejected.
type PassiveHealth struct {
	// ConsecutiveFailures is the failed attempts in a row that eject the
	// endpoint; zero means no passive health.
	ConsecutiveFailures int
	// EjectionDuration is how long an ejection lasts (always the same);
	// zero means 30s.
	EjectionDuration time.Duration
}

// withDefaults validates p and fills its zero fields; the zero value stays
// zero (off).
func (p PassiveHealth) withDefaults() (PassiveHealth, error) {
	if p == (PassiveHealth{}) {
		return p, nil
	}
	if p.ConsecutiveFailures < 0 || p.EjectionDuration < 0 {
		return p, errors.New("passive health: negative value")
	}
	if p.ConsecutiveFailures == 0 {
		return p, errors.New("passive health: consecutive failures is required")
	}
	p.EjectionDuration = cmp.Or(p.EjectionDuration, DefaultEjectionDuration)
	return p, nil
}

// OutlierDetection configures outlier ejection, with three detectors, each
// off when its field is zero:
//
//   - ConsecutiveFailures: that many failed attempts in a row eject the
//     endpoint at once.
//   - ErrorRatePercent (1-100): an endpoint whose failed share of the
//     attempts reported during one Interval is at least this percentage
//     (over at least 5 attempts) is ejected when the Interval ends.
//   - LatencyThreshold: an endpoint whose mean attempt latency over one
//     Interval (at least 5 attempts) exceeds it is ejected when the Interval
//     ends.
//
// The n-th ejection of an endpoint in a row lasts BaseEjectionTime × n,
// at most 10 × BaseEjectionTime and at most 300s (but never less than
// BaseEjectionTime); every Interval an endpoint spends un-ejected brings
// n down by one (Envoy's backoff). An ejection happens only while the
// endpoints ejected (by any mechanism) stay within MaxEjectionPercent of
// the pool, rounded down: (ejected+1) × 100 <= MaxEjectionPercent × total.
// With 4 endpoints at 50% at most 2 are ejected; a pool whose share rounds
// to zero (1 endpoint at 50%) is never ejected by outlier detection.
//
// The zero value is off; a block that sets other fields but no detector is
// rejected. Zero Interval means 10s, zero BaseEjectionTime 30s, zero
// MaxEjectionPercent 50; negative values and percentages above 100 are
// rejected.
type OutlierDetection struct {
	// ConsecutiveFailures is the failed attempts in a row that eject at
	// once; zero turns this detector off.
	ConsecutiveFailures int
	// ErrorRatePercent is the failed share of an interval's attempts that
	// ejects, 1-100; zero turns this detector off.
	ErrorRatePercent int
	// LatencyThreshold is the mean attempt latency over an interval above
	// which an endpoint is ejected; zero turns this detector off.
	LatencyThreshold time.Duration
	// Interval is the error-rate and latency window, and the step of the
	// backoff's decay; zero means 10s.
	Interval time.Duration
	// BaseEjectionTime is the first ejection's length; zero means 30s.
	BaseEjectionTime time.Duration
	// MaxEjectionPercent caps the ejected share of the pool, 1-100; zero
	// means 50.
	MaxEjectionPercent int
}

// withDefaults validates o and fills its zero fields; the zero value stays
// zero (off).
func (o OutlierDetection) withDefaults() (OutlierDetection, error) {
	if o == (OutlierDetection{}) {
		return o, nil
	}
	if o.ConsecutiveFailures < 0 || o.ErrorRatePercent < 0 || o.LatencyThreshold < 0 ||
		o.Interval < 0 || o.BaseEjectionTime < 0 || o.MaxEjectionPercent < 0 {
		return o, errors.New("outlier detection: negative value")
	}
	if o.ErrorRatePercent > 100 {
		return o, fmt.Errorf("outlier detection: error rate %d%% above 100", o.ErrorRatePercent)
	}
	if o.MaxEjectionPercent > 100 {
		return o, fmt.Errorf("outlier detection: max ejection %d%% above 100", o.MaxEjectionPercent)
	}
	if o.ConsecutiveFailures == 0 && o.ErrorRatePercent == 0 && o.LatencyThreshold == 0 {
		return o, errors.New("outlier detection: no detector (want consecutive failures, error rate or latency threshold)")
	}
	o.Interval = cmp.Or(o.Interval, DefaultOutlierInterval)
	o.BaseEjectionTime = cmp.Or(o.BaseEjectionTime, DefaultBaseEjectionTime)
	o.MaxEjectionPercent = cmp.Or(o.MaxEjectionPercent, DefaultMaxEjectionPercent)
	return o, nil
}

// healthSpec is a pool's validated health settings, defaults applied. Each
// part is zero when its mechanism is off. It is comparable, so Commit can
// tell a changed setting from an unchanged one.
type healthSpec struct {
	active  HealthCheck
	passive PassiveHealth
	outlier OutlierDetection
}

func (h *healthSpec) activeOn() bool  { return h.active.Interval > 0 }
func (h *healthSpec) passiveOn() bool { return h.passive.ConsecutiveFailures > 0 }
func (h *healthSpec) outlierOn() bool { return h.outlier != (OutlierDetection{}) }

// reported says whether Report has anything to feed: passive health or
// outlier detection.
func (h *healthSpec) reported() bool { return h.passiveOn() || h.outlierOn() }

// any says whether selection must consider endpoint health at all.
func (h *healthSpec) any() bool { return h.activeOn() || h.reported() }

// windowed says whether Report must keep per-interval counts for the
// error-rate or latency detector.
func (h *healthSpec) windowed() bool {
	return h.outlier.ErrorRatePercent > 0 || h.outlier.LatencyThreshold > 0
}

// validHealth validates the three optional blocks of cfg.
func validHealth(cfg PoolConfig) (healthSpec, error) {
	var h healthSpec
	var err error
	if cfg.Health != nil {
		if h.active, err = cfg.Health.withDefaults(); err != nil {
			return h, err
		}
	}
	if cfg.Passive != nil {
		if h.passive, err = cfg.Passive.withDefaults(); err != nil {
			return h, err
		}
	}
	if cfg.Outlier != nil {
		if h.outlier, err = cfg.Outlier.withDefaults(); err != nil {
			return h, err
		}
	}
	return h, nil
}
