package config

// Balancer names a load-balancing algorithm.
type Balancer string

// Balancers.
const (
	// BalancerRoundRobin takes endpoints in turn, ignoring weights.
	BalancerRoundRobin Balancer = "round_robin"
	// BalancerWeightedRoundRobin takes endpoints in turn in proportion to
	// their weights.
	BalancerWeightedRoundRobin Balancer = "weighted_round_robin"
	// BalancerLeastRequest prefers the endpoint with fewer requests in
	// flight.
	BalancerLeastRequest Balancer = "least_request"
	// BalancerRandom picks uniformly at random.
	BalancerRandom Balancer = "random"
	// BalancerConsistentHash maps Pool.HashKey to a stable endpoint.
	BalancerConsistentHash Balancer = "consistent_hash"
)

// Protocol names the protocol spoken to upstream endpoints.
type Protocol string

// Upstream protocols.
const (
	// ProtocolHTTP1 is HTTP/1.1 (over TLS for https:// endpoints).
	ProtocolHTTP1 Protocol = "http1"
	// ProtocolHTTP2 is HTTP/2 over TLS.
	ProtocolHTTP2 Protocol = "http2"
	// ProtocolH2C is cleartext HTTP/2 with prior knowledge.
	ProtocolH2C Protocol = "h2c"
)

// Pool is an upstream cluster: endpoints, how to pick one, and how to judge
// their health. A nil sub-block means the feature is off.
type Pool struct {
	// ID is unique among pools, [A-Za-z0-9_.-]+. Required.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// Endpoints are the upstream addresses. Required, at least one.
	Endpoints []Endpoint `json:"endpoints,omitempty" yaml:"endpoints,omitempty"`
	// Balancer picks an endpoint. Empty means the default, round_robin.
	Balancer Balancer `json:"balancer,omitempty" yaml:"balancer,omitempty"`
	// HashKey is what consistent_hash hashes: header:NAME, cookie:NAME or
	// client_ip. Required with consistent_hash, not allowed otherwise.
	HashKey string `json:"hash_key,omitempty" yaml:"hash_key,omitempty"`
	// Protocol is spoken to the endpoints. Empty means the default, http1.
	Protocol Protocol `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	// TLS configures TLS to every endpoint (an http:// address is then an
	// error); nil means plaintext, except for https:// addresses, which use
	// TLS with the system roots. The files it names are read on every
	// apply: a missing or invalid one rejects the config, and changed
	// contents give the endpoints new connections.
	TLS *PoolTLS `json:"tls,omitempty" yaml:"tls,omitempty"`
	// Health configures active and passive health checks; nil means every
	// endpoint is always healthy.
	Health *Health `json:"health,omitempty" yaml:"health,omitempty"`
	// CircuitBreaker configures the pool's breaker; nil means none.
	CircuitBreaker *CircuitBreaker `json:"circuit_breaker,omitempty" yaml:"circuit_breaker,omitempty"`
	// OutlierDetection ejects misbehaving endpoints; nil means off.
	OutlierDetection *OutlierDetection `json:"outlier_detection,omitempty" yaml:"outlier_detection,omitempty"`
	// Transport tunes connections to the endpoints.
	Transport Transport `json:"transport" yaml:"transport"`
}

// Endpoint is one upstream address.
type Endpoint struct {
	// Address is host:port, optionally prefixed by http:// or https://
	// (TLS to this endpoint). Port 1-65535. Required.
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	// Weight is the endpoint's share for weighted balancers, 1-10000. Nil
	// means the default, 1; an explicit 0 is an error (remove the endpoint
	// to drain it).
	Weight *int `json:"weight,omitempty" yaml:"weight,omitempty"`
}

// PoolTLS configures TLS from the proxy to a pool's endpoints: TLS 1.2 or
// later, ALPN http/1.1 (protocol http1) or h2 (protocol http2), and
// session resumption per endpoint.
type PoolTLS struct {
	// ServerName is the SNI and verification name; empty means the
	// endpoint's host (an IP host is verified against the certificate's IP
	// addresses and sent without SNI).
	ServerName string `json:"server_name,omitempty" yaml:"server_name,omitempty"`
	// CAFile verifies the upstream; empty means the system roots.
	CAFile string `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`
	// CertFile is a client certificate for mTLS upstreams; set with
	// KeyFile or not at all.
	CertFile string `json:"cert_file,omitempty" yaml:"cert_file,omitempty"`
	// KeyFile is the client certificate's key.
	KeyFile string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
	// InsecureSkipVerify disables verification. Default false.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty" yaml:"insecure_skip_verify,omitempty"`
}

// Health configures health checking. ApplyDefaults turns an empty health
// block (neither active nor passive) into active checks with defaults.
type Health struct {
	// Active probes each endpoint; nil means no probes.
	Active *ActiveHealth `json:"active,omitempty" yaml:"active,omitempty"`
	// Passive marks endpoints unhealthy from live traffic; nil means off.
	Passive *PassiveHealth `json:"passive,omitempty" yaml:"passive,omitempty"`
}

// ActiveHealth probes each endpoint with an HTTP GET. Zero fields get the
// defaults named on each field.
type ActiveHealth struct {
	// Interval between probes. Zero means the default, 5s.
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// Timeout per probe; must not exceed Interval. Zero means the default,
	// 1s.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Path probed; must start with "/". Empty means the default, /health.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// ExpectedStatus is a status ("200") or inclusive range ("200-399")
	// counted as healthy. Empty means the default, "200-399".
	ExpectedStatus Scalar `json:"expected_status,omitempty" yaml:"expected_status,omitempty"`
	// HealthyThreshold is the consecutive successes to become healthy.
	// Zero means the default, 2.
	HealthyThreshold int `json:"healthy_threshold,omitempty" yaml:"healthy_threshold,omitempty"`
	// UnhealthyThreshold is the consecutive failures to become unhealthy.
	// Zero means the default, 3.
	UnhealthyThreshold int `json:"unhealthy_threshold,omitempty" yaml:"unhealthy_threshold,omitempty"`
}

// PassiveHealth ejects endpoints after consecutive live failures.
type PassiveHealth struct {
	// ConsecutiveFailures before ejection. Zero means the default, 5.
	ConsecutiveFailures int `json:"consecutive_failures,omitempty" yaml:"consecutive_failures,omitempty"`
	// EjectionDuration is how long an ejected endpoint stays out. Zero
	// means the default, 30s.
	EjectionDuration Duration `json:"ejection_duration,omitempty" yaml:"ejection_duration,omitempty"`
}

// OutlierDetection ejects endpoints that fail or lag more than their peers.
// Zero fields get the defaults named on each field.
type OutlierDetection struct {
	// ConsecutiveFailures ejects after this many failures in a row. Zero
	// means the default, 5.
	ConsecutiveFailures int `json:"consecutive_failures,omitempty" yaml:"consecutive_failures,omitempty"`
	// ErrorRateThreshold ejects at this error percentage per interval,
	// 1-100. Zero means the default, 50.
	ErrorRateThreshold int `json:"error_rate_threshold,omitempty" yaml:"error_rate_threshold,omitempty"`
	// LatencyThreshold ejects endpoints slower than this; zero (or "")
	// means no latency ejection.
	LatencyThreshold Duration `json:"latency_threshold,omitempty" yaml:"latency_threshold,omitempty"`
	// Interval between evaluations. Zero means the default, 10s.
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// BaseEjectionTime is the first ejection's length; repeats grow it.
	// Zero means the default, 30s.
	BaseEjectionTime Duration `json:"base_ejection_time,omitempty" yaml:"base_ejection_time,omitempty"`
	// MaxEjectionPercent caps ejected endpoints, 0-100. Zero means the
	// default, 50.
	MaxEjectionPercent int `json:"max_ejection_percent,omitempty" yaml:"max_ejection_percent,omitempty"`
}

// Transport tunes the connection pool to a pool's endpoints. Zero fields
// get the defaults named on each field.
type Transport struct {
	// MaxIdlePerEndpoint caps idle keep-alive connections per endpoint.
	// Zero means the default, 256.
	MaxIdlePerEndpoint int `json:"max_idle_per_endpoint,omitempty" yaml:"max_idle_per_endpoint,omitempty"`
	// IdleTimeout closes idle upstream connections. Zero means the default,
	// 90s.
	IdleTimeout Duration `json:"idle_timeout,omitempty" yaml:"idle_timeout,omitempty"`
	// DialTimeout bounds connecting (and the TLS handshake). Zero means the
	// default, 1s.
	DialTimeout Duration `json:"dial_timeout,omitempty" yaml:"dial_timeout,omitempty"`
	// ResponseHeaderTimeout bounds the wait for response headers after the
	// request is written; zero means none (the policy timeout still
	// applies).
	ResponseHeaderTimeout Duration `json:"response_header_timeout,omitempty" yaml:"response_header_timeout,omitempty"`
}
