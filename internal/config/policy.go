package config

// Policy is a named bundle of per-route behaviour, referenced by
// Route.Policy. A nil sub-block means the feature is off for the route.
type Policy struct {
	// ID is unique among policies, [A-Za-z0-9_.-]+. Required.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// Timeout bounds the whole request, all attempts included; when it
	// fires the client gets 504 request_timeout. Zero means no overall
	// timeout.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Retries enables retries; nil means a single attempt.
	Retries *Retries `json:"retries,omitempty" yaml:"retries,omitempty"`
	// Hedging sends a second attempt for slow safe requests; nil means off.
	Hedging *Hedging `json:"hedging,omitempty" yaml:"hedging,omitempty"`
	// RateLimit limits request rate; nil means unlimited. Not supported yet
	// in this release.
	RateLimit *RateLimit `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
	// CircuitBreaker gives each route using this policy its own breaker on
	// its pool, instead of the pool's; nil means the pool's.
	CircuitBreaker *CircuitBreaker `json:"circuit_breaker,omitempty" yaml:"circuit_breaker,omitempty"`
	// BodySizeLimit caps the request body (also when chunked); larger gets
	// 413 request_too_large. Zero means no limit.
	BodySizeLimit Size `json:"body_size_limit,omitempty" yaml:"body_size_limit,omitempty"`
	// RequireTLS answers 403 tls_required to plaintext requests. Default
	// false.
	RequireTLS bool `json:"require_tls,omitempty" yaml:"require_tls,omitempty"`
}

// Retries configures retrying failed attempts. Zero fields get the
// defaults named on each field.
type Retries struct {
	// MaxAttempts is the total number of attempts, the first included,
	// 1-10. Zero means the default, 2.
	MaxAttempts int `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty"`
	// BudgetPercent caps retries at this percentage of successes in the
	// last 10s, 0-100. Nil means the default, 20.
	BudgetPercent *int `json:"budget_percent,omitempty" yaml:"budget_percent,omitempty"`
	// BudgetBurst is the number of retries always allowed whatever the
	// budget, per route, >= 0. Nil means the default, 10.
	BudgetBurst *int `json:"budget_burst,omitempty" yaml:"budget_burst,omitempty"`
	// IdempotentOnly retries only idempotent methods. Nil means the
	// default, true.
	IdempotentOnly *bool `json:"idempotent_only,omitempty" yaml:"idempotent_only,omitempty"`
	// PerTryTimeout bounds each attempt; when it fires the attempt counts
	// as an upstream_timeout. Zero means no per-try timeout.
	PerTryTimeout Duration `json:"per_try_timeout,omitempty" yaml:"per_try_timeout,omitempty"`
	// RetryOn lists what is retried: connect_failure, reset, timeout, a
	// status code (502) or class ("5xx"), as strings or numbers.
	// ApplyDefaults lower-cases entries. Empty means the default
	// [connect_failure, reset, "503"].
	RetryOn []Scalar `json:"retry_on,omitempty" yaml:"retry_on,omitempty"`
	// Backoff spaces attempts (full jitter).
	Backoff Backoff `json:"backoff" yaml:"backoff"`
}

// Backoff is an exponential backoff with full jitter.
type Backoff struct {
	// Base is the first delay cap. Zero means the default, 25ms.
	Base Duration `json:"base,omitempty" yaml:"base,omitempty"`
	// Max caps every delay; must be >= Base. Zero means the default, 250ms.
	Max Duration `json:"max,omitempty" yaml:"max,omitempty"`
}

// Hedging sends extra attempts for GET/HEAD/OPTIONS that have no response
// headers after Delay; the first response wins.
type Hedging struct {
	// Delay is the wait before a hedge. Required, > 0.
	Delay Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	// MaxHedges is the number of extra attempts, 1-10. Zero means the
	// default, 1.
	MaxHedges int `json:"max_hedges,omitempty" yaml:"max_hedges,omitempty"`
}

// RateLimitScope says where rate-limit counters live.
type RateLimitScope string

// Rate-limit scopes.
const (
	// ScopeLocal counts per proxy instance.
	ScopeLocal RateLimitScope = "local"
	// ScopeGlobal counts across the fleet in Redis; needs Config.Redis.
	ScopeGlobal RateLimitScope = "global"
)

// RateLimit is a token bucket per key.
type RateLimit struct {
	// RequestsPerSecond is the refill rate, > 0 (fractions allowed).
	// Required.
	RequestsPerSecond float64 `json:"requests_per_second,omitempty" yaml:"requests_per_second,omitempty"`
	// Burst is the bucket size. Zero means the default: RequestsPerSecond
	// rounded up, at least 1.
	Burst int `json:"burst,omitempty" yaml:"burst,omitempty"`
	// Key selects the bucket: client_ip, route, or header:NAME. Empty
	// means the default, client_ip.
	Key string `json:"key,omitempty" yaml:"key,omitempty"`
	// Scope is local or global. Empty means the default, local.
	Scope RateLimitScope `json:"scope,omitempty" yaml:"scope,omitempty"`
}

// CircuitBreaker opens when the error percentage over a rolling window
// reaches a threshold. Zero fields get the defaults named on each field.
type CircuitBreaker struct {
	// ErrorThresholdPercent opens the breaker at this error percentage,
	// 1-100. Zero means the default, 50.
	ErrorThresholdPercent int `json:"error_threshold_percent,omitempty" yaml:"error_threshold_percent,omitempty"`
	// MinRequests is the number of requests in the window before the
	// breaker may open. Zero means the default, 20.
	MinRequests int `json:"min_requests,omitempty" yaml:"min_requests,omitempty"`
	// OpenDuration is how long the breaker stays open before half-open.
	// Zero means the default, 30s.
	OpenDuration Duration `json:"open_duration,omitempty" yaml:"open_duration,omitempty"`
	// Window is the rolling window length. Zero means the default, 10s.
	Window Duration `json:"window,omitempty" yaml:"window,omitempty"`
	// HalfOpenRequests is the number of probes admitted while half-open.
	// Zero means the default, 5.
	HalfOpenRequests int `json:"half_open_requests,omitempty" yaml:"half_open_requests,omitempty"`
}
