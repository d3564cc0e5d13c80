package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := Parse([]byte(doc), FormatYAML)
	if err != nil {
		t.Fatalf("Parse(%q) = %v", doc, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
routes: [{id: r, methods: [get, delete], pool: p}]
policies:
  - id: pol
    retries: {retry_on: [5XX, Reset]}
    hedging: {delay: 10ms}
    rate_limit: {requests_per_second: 2.5}
    circuit_breaker: {}
  - id: empty-retries
    retries: {}
pools:
  - id: p
    endpoints: [{address: "127.0.0.1:1"}]
    health: {}
    circuit_breaker: {}
    outlier_detection: {}
  - id: q
    endpoints: [{address: "127.0.0.1:2"}]
    health: {passive: {}}
traffic_management:
  - {route: r, canary_pool: q, auto_brake: {}, overload_protection: {max_concurrent: 10}}
middleware: [{id: m, stages: [{type: auth, config: {jwt: {jwks_file: /k}}}]}]
cache: [{route: r}]
plugins: [{id: pl, type: builtin, name: x}]
tls: {}
tracing: {}
`)
	d := func(s string) Duration {
		v, err := ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	pol, pool := c.Policies[0], c.Pools[0]
	tests := []struct {
		name      string
		got, want any
	}{
		{"server.max_header_bytes", c.Server.MaxHeaderBytes, Size(64 << 10)},
		{"server.max_header_count", c.Server.MaxHeaderCount, 100},
		{"server.max_url_bytes", c.Server.MaxURLBytes, Size(8 << 10)},
		{"server.read_header_timeout", c.Server.ReadHeaderTimeout, d("10s")},
		{"server.idle_timeout", c.Server.IdleTimeout, d("60s")},
		{"server.slow_client_timeout", c.Server.SlowClientTimeout, d("30s")},
		{"routes[0].methods", strings.Join(c.Routes[0].Methods, ","), "GET,DELETE"},
		{"retries.max_attempts", pol.Retries.MaxAttempts, 2},
		{"retries.budget_percent", *pol.Retries.BudgetPercent, 20},
		{"retries.budget_burst", *pol.Retries.BudgetBurst, 10},
		{"retries.idempotent_only", *pol.Retries.IdempotentOnly, true},
		{"retries.retry_on lower-cased", reflect.DeepEqual(pol.Retries.RetryOn, []Scalar{"5xx", "reset"}), true},
		{"retries.retry_on default", reflect.DeepEqual(c.Policies[1].Retries.RetryOn, []Scalar{"connect_failure", "reset", "503"}), true},
		{"retries.backoff.base", pol.Retries.Backoff.Base, d("25ms")},
		{"retries.backoff.max", pol.Retries.Backoff.Max, d("250ms")},
		{"hedging.max_hedges", pol.Hedging.MaxHedges, 1},
		{"rate_limit.burst", pol.RateLimit.Burst, 3},
		{"rate_limit.key", pol.RateLimit.Key, "client_ip"},
		{"rate_limit.scope", pol.RateLimit.Scope, ScopeLocal},
		{"policy breaker", *pol.CircuitBreaker, CircuitBreaker{50, 20, d("30s"), d("10s"), 5}},
		{"pool balancer", pool.Balancer, BalancerRoundRobin},
		{"pool protocol", pool.Protocol, ProtocolHTTP1},
		{"endpoint weight", *pool.Endpoints[0].Weight, 1},
		{"empty health means active", *pool.Health.Active, ActiveHealth{d("5s"), d("1s"), "/health", "200-399", 2, 3}},
		{"empty health no passive", pool.Health.Passive == nil, true},
		{"passive only", *c.Pools[1].Health.Passive, PassiveHealth{5, d("30s")}},
		{"passive only no active", c.Pools[1].Health.Active == nil, true},
		{"pool breaker", *pool.CircuitBreaker, CircuitBreaker{50, 20, d("30s"), d("10s"), 5}},
		{"outlier", *pool.OutlierDetection, OutlierDetection{5, 50, 0, d("10s"), d("30s"), 50}},
		{"transport", pool.Transport, Transport{256, d("90s"), d("1s"), 0}},
		{"auto_brake", *c.TrafficManagement[0].AutoBrake, AutoBrake{d("30s"), 50, 2, 0}},
		{"overload queue_timeout", c.TrafficManagement[0].OverloadProtection.QueueTimeout, d("1s")},
		{"jwt algorithms", strings.Join(c.Middleware[0].Stages[0].Config.JWT.Algorithms, ","), "RS256,ES256,EdDSA"},
		{"cache enabled", *c.Cache[0].Enabled, true},
		{"cache auth_aware", *c.Cache[0].AuthAware, true},
		{"cache max_size", c.Cache[0].MaxSize, Size(10 << 20)},
		{"cache max_object_size", c.Cache[0].MaxObjectSize, Size(1 << 20)},
		{"cache coalesce_timeout", c.Cache[0].CoalesceTimeout, d("5s")},
		{"plugin timeout", c.Plugins[0].Timeout, d("200ms")},
		{"plugin fail_mode", c.Plugins[0].FailMode, FailClosed},
		{"tls min_version", c.TLS.MinVersion, Scalar("1.2")},
		{"tracing sample_ratio", *c.Tracing.SampleRatio, 0.01},
		{"logging access_log", *c.Logging.AccessLog, true},
		{"logging redact_headers", strings.Join(c.Logging.RedactHeaders, ","), "Authorization,Cookie"},
		{"metrics enabled", *c.Metrics.Enabled, true},
		{"metrics path", c.Metrics.Path, "/metrics"},
		{"metrics token_env", c.Metrics.TokenEnv, "METRICS_TOKEN"},
		{"shutdown drain_delay", *c.Shutdown.DrainDelay, d("10s")},
		{"shutdown grace_period", c.Shutdown.GracePeriod, d("30s")},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDefaultsKeepExplicitValues(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
policies: [{id: p, retries: {budget_percent: 0, budget_burst: 0, idempotent_only: false, max_attempts: 3}}]
pools: [{id: p, balancer: random, endpoints: [{address: "127.0.0.1:1", weight: 0}], transport: {dial_timeout: 250ms}}]
cache: [{route: r, enabled: false, auth_aware: false}]
logging: {access_log: false, redact_headers: [X-Secret]}
metrics: {enabled: false, path: /m}
tracing: {sample_ratio: 0}
shutdown: {drain_delay: 0s, grace_period: 1s}
`)
	r := c.Policies[0].Retries
	tests := []struct {
		name      string
		got, want any
	}{
		{"budget_percent", *r.BudgetPercent, 0},
		{"budget_burst", *r.BudgetBurst, 0},
		{"idempotent_only", *r.IdempotentOnly, false},
		{"max_attempts", r.MaxAttempts, 3},
		{"balancer", c.Pools[0].Balancer, BalancerRandom},
		{"weight 0 kept for Validate to reject", *c.Pools[0].Endpoints[0].Weight, 0},
		{"dial_timeout", c.Pools[0].Transport.DialTimeout.Std(), 250 * time.Millisecond},
		{"cache enabled", *c.Cache[0].Enabled, false},
		{"cache auth_aware", *c.Cache[0].AuthAware, false},
		{"access_log", *c.Logging.AccessLog, false},
		{"redact_headers", strings.Join(c.Logging.RedactHeaders, ","), "X-Secret"},
		{"metrics enabled", *c.Metrics.Enabled, false},
		{"metrics path", c.Metrics.Path, "/m"},
		{"sample_ratio", *c.Tracing.SampleRatio, 0.0},
		{"drain_delay", c.Shutdown.DrainDelay.Std(), time.Duration(0)},
		{"grace_period", c.Shutdown.GracePeriod.Std(), time.Second},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestApplyDefaultsIdempotent(t *testing.T) {
	t.Parallel()
	for _, path := range []string{examplesDir + "/basic.yaml", examplesDir + "/full.yaml"} {
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		once := c.Clone()
		c.ApplyDefaults()
		if !reflect.DeepEqual(c, once) {
			t.Errorf("ApplyDefaults on %s changed an already-defaulted config", path)
		}
	}
	// A config built in code, not parsed, gets the same defaults.
	var c Config
	c.ApplyDefaults()
	if got, want := c.Version(), mustParse(t, "").Version(); got != want {
		t.Errorf("(&Config{}).ApplyDefaults() version = %s, want %s", got, want)
	}
}
