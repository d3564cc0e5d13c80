package config

import (
	"net/textproto"
	"slices"
)

// Config is one complete proxy configuration document (SPEC section 3).
//
// The zero value is the empty config: no routes, so every request is a 404
// no_route; ApplyDefaults fills the server, logging, metrics and shutdown
// settings. Parse returns a *Config with defaults applied. A *Config is not
// safe for concurrent mutation; once built it is treated as immutable and
// may be read from any goroutine.
type Config struct {
	// Label is the document's optional "version" key, a human label. It is
	// not the config's identity: that is the content hash from the Version
	// method, which covers this label like any other field. (The Go name
	// differs from the key because a field and a method cannot share the
	// name Version.)
	Label string `json:"version,omitempty" yaml:"version,omitempty"`
	// Server holds listener limits and timeouts; every zero field gets a
	// default.
	Server Server `json:"server" yaml:"server"`
	// Routes are matched by the precedence of SPEC section 4; their order
	// breaks ties. Empty means every request is a 404 no_route.
	Routes []Route `json:"routes,omitempty" yaml:"routes,omitempty"`
	// Policies are named per-route behaviours (timeouts, retries, limits),
	// referenced by Route.Policy.
	Policies []Policy `json:"policies,omitempty" yaml:"policies,omitempty"`
	// Pools are the upstream clusters, referenced by id.
	Pools []Pool `json:"pools,omitempty" yaml:"pools,omitempty"`
	// TrafficManagement holds canary splits, cohorts and overload
	// protection, at most one entry per route.
	TrafficManagement []Traffic `json:"traffic_management,omitempty" yaml:"traffic_management,omitempty"`
	// Middleware are named filter chains, referenced by Route.Middleware.
	Middleware []Chain `json:"middleware,omitempty" yaml:"middleware,omitempty"`
	// Cache configures response caching, at most one entry per route.
	Cache []Cache `json:"cache,omitempty" yaml:"cache,omitempty"`
	// Plugins are filters referenced by middleware stages of type plugin.
	Plugins []Plugin `json:"plugins,omitempty" yaml:"plugins,omitempty"`
	// TLS configures certificates and client authentication for the TLS
	// listeners; nil means the default certificate from the environment,
	// TLS 1.2 minimum, no mTLS.
	TLS *TLS `json:"tls,omitempty" yaml:"tls,omitempty"`
	// Redis is the store for global rate limits; nil means none, and a
	// rate limit with scope global is then an error.
	Redis *Redis `json:"redis,omitempty" yaml:"redis,omitempty"`
	// Logging configures the access log and redaction.
	Logging Logging `json:"logging" yaml:"logging"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `json:"metrics" yaml:"metrics"`
	// Tracing configures trace sampling; nil means no tracing settings
	// (the exporter endpoint is a flag).
	Tracing *Tracing `json:"tracing,omitempty" yaml:"tracing,omitempty"`
	// Shutdown configures graceful shutdown (SPEC section 11).
	Shutdown Shutdown `json:"shutdown" yaml:"shutdown"`
	// Rollout configures the fleet rollout controller (SPEC section 12);
	// nil means none.
	Rollout *Rollout `json:"rollout,omitempty" yaml:"rollout,omitempty"`
}

// Server holds listener-wide limits and timeouts. Zero fields get the
// defaults named on each field.
type Server struct {
	// H2C enables cleartext HTTP/2 (prior knowledge and Upgrade) on the
	// plain HTTP listener. Default false.
	H2C bool `json:"h2c,omitempty" yaml:"h2c,omitempty"`
	// MaxHeaderBytes caps the request line plus headers; larger requests
	// get 431 header_too_large. Zero means the default, 64KB.
	MaxHeaderBytes Size `json:"max_header_bytes,omitempty" yaml:"max_header_bytes,omitempty"`
	// MaxHeaderCount caps the number of request header fields; more get
	// 431 header_too_large. Zero means the default, 100.
	MaxHeaderCount int `json:"max_header_count,omitempty" yaml:"max_header_count,omitempty"`
	// MaxURLBytes caps the request target; longer gets 414 uri_too_long.
	// Zero means the default, 8KB.
	MaxURLBytes Size `json:"max_url_bytes,omitempty" yaml:"max_url_bytes,omitempty"`
	// ReadHeaderTimeout bounds reading the request headers. Zero means the
	// default, 10s.
	ReadHeaderTimeout Duration `json:"read_header_timeout,omitempty" yaml:"read_header_timeout,omitempty"`
	// IdleTimeout closes keep-alive connections idle this long. Zero means
	// the default, 60s.
	IdleTimeout Duration `json:"idle_timeout,omitempty" yaml:"idle_timeout,omitempty"`
	// SlowClientTimeout closes a connection when a response write makes no
	// progress for this long. Zero means the default, 30s.
	SlowClientTimeout Duration `json:"slow_client_timeout,omitempty" yaml:"slow_client_timeout,omitempty"`
	// TrustedProxies are IPs or CIDRs whose X-Forwarded-For is believed
	// (appended to rather than replaced). Empty means nobody is trusted.
	TrustedProxies []string `json:"trusted_proxies,omitempty" yaml:"trusted_proxies,omitempty"`
	// ProxyProtocol accepts PROXY protocol v1/v2 headers on the data-plane
	// listeners. Default false. Not supported yet in this release.
	ProxyProtocol bool `json:"proxy_protocol,omitempty" yaml:"proxy_protocol,omitempty"`
}

// Logging configures the access log. Zero fields get the defaults named on
// each field.
type Logging struct {
	// AccessLog turns the per-request JSON access log on or off. Nil means
	// the default, true; a pointer so that an explicit false survives
	// ApplyDefaults.
	AccessLog *bool `json:"access_log,omitempty" yaml:"access_log,omitempty"`
	// RedactQuery removes the query string from logged paths. Default
	// false.
	RedactQuery bool `json:"redact_query,omitempty" yaml:"redact_query,omitempty"`
	// RedactHeaders are header names whose values never appear in logs.
	// Empty means the default [Authorization, Cookie]. Whatever is listed,
	// Authorization, Cookie, Set-Cookie and Proxy-Authorization are always
	// redacted too: see RedactedHeaders.
	RedactHeaders []string `json:"redact_headers,omitempty" yaml:"redact_headers,omitempty"`
}

// alwaysRedacted are the headers no log may ever show, whatever the
// config lists, because they carry credentials.
var alwaysRedacted = []string{"Authorization", "Cookie", "Proxy-Authorization", "Set-Cookie"}

// RedactedHeaders returns the headers to redact: RedactHeaders plus the
// always-redacted Authorization, Cookie, Proxy-Authorization and
// Set-Cookie, in canonical MIME form, sorted, without duplicates. The
// caller owns the returned slice.
func (l Logging) RedactedHeaders() []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range append(append([]string(nil), alwaysRedacted...), l.RedactHeaders...) {
		c := textproto.CanonicalMIMEHeaderKey(h)
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// Metrics configures the Prometheus endpoint. Zero fields get the defaults
// named on each field.
type Metrics struct {
	// Enabled serves metrics. Nil means the default, true; a pointer so
	// that an explicit false survives ApplyDefaults.
	Enabled *bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// Path is where metrics are served. Empty means the default,
	// "/metrics".
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// RequireToken demands a bearer token (read from the environment
	// variable named by TokenEnv when the config is applied) for the
	// metrics endpoint. Default false.
	RequireToken bool `json:"require_token,omitempty" yaml:"require_token,omitempty"`
	// TokenEnv names the environment variable holding the metrics token.
	// Empty means the default, METRICS_TOKEN.
	TokenEnv string `json:"token_env,omitempty" yaml:"token_env,omitempty"`
}

// Tracing configures trace sampling. Not supported yet in this release.
type Tracing struct {
	// SampleRatio is the fraction of new traces sampled, 0 to 1. Nil means
	// the default, 0.01; a pointer so that an explicit 0 survives
	// ApplyDefaults.
	SampleRatio *float64 `json:"sample_ratio,omitempty" yaml:"sample_ratio,omitempty"`
}

// Shutdown configures graceful shutdown: readiness fails at once, listeners
// close after DrainDelay, in-flight requests get GracePeriod to finish.
type Shutdown struct {
	// DrainDelay is how long listeners keep accepting after readiness
	// fails, so load balancers notice. Nil means the default, 10s; an
	// explicit 0s closes listeners at once (useful in tests).
	DrainDelay *Duration `json:"drain_delay,omitempty" yaml:"drain_delay,omitempty"`
	// GracePeriod is how long in-flight requests may run after listeners
	// close. Zero means the default, 30s.
	GracePeriod Duration `json:"grace_period,omitempty" yaml:"grace_period,omitempty"`
}

// TLS configures the data-plane TLS listeners. Not supported yet in this
// release.
type TLS struct {
	// MinVersion is "1.2" or "1.3". Empty means the default, "1.2".
	MinVersion Scalar `json:"min_version,omitempty" yaml:"min_version,omitempty"`
	// Certificates are served by SNI. Empty means the default certificate
	// from PROXY_TLS_CERT/PROXY_TLS_KEY.
	Certificates []Certificate `json:"certificates,omitempty" yaml:"certificates,omitempty"`
	// MTLS configures client certificates; nil means none are requested.
	MTLS *MTLS `json:"mtls,omitempty" yaml:"mtls,omitempty"`
	// ACME obtains certificates automatically; nil means off.
	ACME *ACME `json:"acme,omitempty" yaml:"acme,omitempty"`
}

// Certificate is one certificate/key pair served for an SNI name.
type Certificate struct {
	// CertFile is the PEM certificate chain path. Required.
	CertFile string `json:"cert_file,omitempty" yaml:"cert_file,omitempty"`
	// KeyFile is the PEM private key path. Required.
	KeyFile string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
	// SNI is the server name (exact or "*.example.com") this certificate
	// answers; empty means the names in the certificate itself.
	SNI string `json:"sni,omitempty" yaml:"sni,omitempty"`
}

// MTLS configures client-certificate verification on TLS listeners.
type MTLS struct {
	// Enabled requests client certificates. Default false.
	Enabled bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// CAFile is the PEM bundle client certificates must chain to; required
	// when Enabled.
	CAFile string `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`
	// RequireClientCert refuses handshakes without a valid certificate;
	// false verifies a certificate only when one is presented. Default
	// false.
	RequireClientCert bool `json:"require_client_cert,omitempty" yaml:"require_client_cert,omitempty"`
}

// ACME configures automatic certificates.
type ACME struct {
	// Email is the ACME account contact. Optional.
	Email string `json:"email,omitempty" yaml:"email,omitempty"`
	// DirectoryURL is the ACME directory; empty means Let's Encrypt
	// production.
	DirectoryURL string `json:"directory_url,omitempty" yaml:"directory_url,omitempty"`
	// Domains are the names to obtain certificates for. Required.
	Domains []string `json:"domains,omitempty" yaml:"domains,omitempty"`
	// Storage is the directory for account keys and certificates; empty
	// means the process's working directory.
	Storage string `json:"storage,omitempty" yaml:"storage,omitempty"`
}

// Redis is the shared store for global rate limits. Not supported yet in
// this release.
type Redis struct {
	// Address is host:port. Required.
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
}

// Rollout configures the fleet rollout controller. Not supported yet in
// this release.
type Rollout struct {
	// Stages are walked in order; fleet_percent must not decrease.
	// Required, at least one.
	Stages []RolloutStage `json:"stages,omitempty" yaml:"stages,omitempty"`
	// HealthGates must all pass before a stage advances. Empty means none.
	HealthGates []HealthGate `json:"health_gates,omitempty" yaml:"health_gates,omitempty"`
	// AutoRollback rolls back when the error budget burns too fast; nil
	// means off.
	AutoRollback *AutoRollback `json:"auto_rollback,omitempty" yaml:"auto_rollback,omitempty"`
}

// RolloutStage is one step of a rollout.
type RolloutStage struct {
	// Name labels the stage. Required.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// FleetPercent is the share of nodes on the new bundle, 1-100.
	FleetPercent int `json:"fleet_percent,omitempty" yaml:"fleet_percent,omitempty"`
	// BakeTime is how long to wait before checking gates. Zero means no
	// wait.
	BakeTime Duration `json:"bake_time,omitempty" yaml:"bake_time,omitempty"`
}

// HealthGate is one condition a stage must meet.
type HealthGate struct {
	// Metric is error_rate (Threshold a fraction 0-1) or p95_latency
	// (Threshold a duration).
	Metric string `json:"metric,omitempty" yaml:"metric,omitempty"`
	// Threshold is the limit, a number or a duration depending on Metric.
	Threshold Scalar `json:"threshold,omitempty" yaml:"threshold,omitempty"`
}

// AutoRollback triggers a rollback on a fast error-budget burn.
type AutoRollback struct {
	// ErrorBudgetBurnRate is a multiple such as "10x" or 10. Required.
	ErrorBudgetBurnRate Scalar `json:"error_budget_burn_rate,omitempty" yaml:"error_budget_burn_rate,omitempty"`
}
