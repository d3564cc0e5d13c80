package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// The same config written five ways: YAML, JSON, keys reordered, defaults
// spelled out, and values in other spellings (sizes, durations, numbers
// for strings, lower-case methods).
const (
	versionYAML = `
routes:
  - id: r
    host: api.example.com
    path_prefix: /api/
    methods: [GET, POST]
    headers: {X-A: "1", X-B: "2"}
    pool: p
    policy: pol
policies:
  - id: pol
    timeout: 3s
    body_size_limit: 1MB
    retries: {retry_on: ["502", "5xx"]}
pools:
  - id: p
    endpoints: [{address: "127.0.0.1:8001"}, {address: "127.0.0.1:8002", weight: 5}]
`
	versionJSON = `{
  "routes": [{"id": "r", "host": "api.example.com", "path_prefix": "/api/", "methods": ["GET", "POST"],
              "headers": {"X-A": "1", "X-B": "2"}, "pool": "p", "policy": "pol"}],
  "policies": [{"id": "pol", "timeout": "3s", "body_size_limit": "1MB", "retries": {"retry_on": ["502", "5xx"]}}],
  "pools": [{"id": "p", "endpoints": [{"address": "127.0.0.1:8001"}, {"address": "127.0.0.1:8002", "weight": 5}]}]
}`
	versionReordered = `
pools:
  - endpoints: [{address: "127.0.0.1:8001"}, {weight: 5, address: "127.0.0.1:8002"}]
    id: p
policies:
  - retries: {retry_on: ["502", "5xx"]}
    body_size_limit: 1MB
    timeout: 3s
    id: pol
routes:
  - policy: pol
    pool: p
    headers: {X-B: "2", X-A: "1"}
    methods: [GET, POST]
    path_prefix: /api/
    host: api.example.com
    id: r
`
	versionExplicitDefaults = versionYAML + `
server:
  h2c: false
  max_header_bytes: 64KB
  max_header_count: 100
  max_url_bytes: 8KB
  read_header_timeout: 10s
  idle_timeout: 60s
  slow_client_timeout: 30s
  proxy_protocol: false
logging: {access_log: true, redact_query: false, redact_headers: [Authorization, Cookie]}
metrics: {enabled: true, path: /metrics, require_token: false, token_env: METRICS_TOKEN}
shutdown: {drain_delay: 10s, grace_period: 30s}
`
	versionSpelling = `
routes:
  - id: r
    host: api.example.com
    path_prefix: /api/
    methods: [get, Post]
    headers: {X-A: 1, X-B: 2}
    pool: p
    policy: pol
policies:
  - id: pol
    timeout: 3000ms
    body_size_limit: 1048576
    retries: {retry_on: [502, 5XX], max_attempts: 2, budget_percent: 20, idempotent_only: true, backoff: {base: 25ms, max: 0.25s}}
pools:
  - id: p
    balancer: round_robin
    protocol: http1
    endpoints: [{address: "127.0.0.1:8001", weight: 1}, {address: "127.0.0.1:8002", weight: 5}]
    transport: {max_idle_per_endpoint: 256, idle_timeout: 1m30s, dial_timeout: 1000ms, response_header_timeout: 0}
`
)

func TestVersionStable(t *testing.T) {
	t.Parallel()
	parse := func(doc string, f Format) *Config {
		t.Helper()
		c, err := Parse([]byte(doc), f)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", doc, err)
		}
		return c
	}
	base := parse(versionYAML, FormatYAML)
	want := base.Version()
	if len(want) != 16 {
		t.Errorf("Version() = %q, want 16 hex digits", want)
	}
	tests := []struct {
		name string
		doc  string
		f    Format
	}{
		{"json", versionJSON, FormatJSON},
		{"reordered keys", versionReordered, FormatYAML},
		{"explicit defaults", versionExplicitDefaults, FormatYAML},
		{"other spellings", versionSpelling, FormatYAML},
		{"canonical form itself", string(base.Canonical()), FormatJSON},
	}
	for _, tt := range tests {
		c := parse(tt.doc, tt.f)
		if got := c.Version(); got != want {
			t.Errorf("%s: Version() = %s, want %s\ngot  %s\nwant %s", tt.name, got, want, c.Canonical(), base.Canonical())
		}
	}
}

func TestVersionChanges(t *testing.T) {
	t.Parallel()
	base, err := Parse([]byte(versionYAML), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"label", func(c *Config) { c.Label = "v2" }},
		{"endpoint address", func(c *Config) { c.Pools[0].Endpoints[0].Address = "127.0.0.1:9999" }},
		{"weight", func(c *Config) { *c.Pools[0].Endpoints[1].Weight = 6 }},
		{"header value", func(c *Config) { c.Routes[0].Headers["X-A"] = "3" }},
		{"timeout", func(c *Config) { c.Policies[0].Timeout = Duration(4e9) }},
		{"access log off", func(c *Config) { c.Logging.AccessLog = ptr(false) }},
		{"drain delay zero", func(c *Config) { c.Shutdown.DrainDelay = ptr(Duration(0)) }},
		{"route order", func(c *Config) {
			c.Routes = append(c.Routes, Route{ID: "z", Pool: "p"})
			c.Routes[0], c.Routes[1] = c.Routes[1], c.Routes[0]
		}},
		{"method set", func(c *Config) { c.Routes[0].Methods = []string{"GET"} }},
		{"empty hedging block", func(c *Config) { c.Policies[0].Hedging = &Hedging{} }},
	}
	seen := map[string]string{base.Version(): "base"}
	for _, ch := range changes {
		c := base.Clone()
		ch.mutate(c)
		v := c.Version()
		if prev, dup := seen[v]; dup {
			t.Errorf("%s: Version() = %s, same as %s; want a new version", ch.name, v, prev)
		}
		seen[v] = ch.name
	}
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(versionYAML), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Canonical()
	if !bytes.Equal(got, c.Canonical()) {
		t.Errorf("Canonical() differs between calls")
	}
	if !json.Valid(got) || bytes.ContainsAny(got, "\n\t") {
		t.Errorf("Canonical() = %s, want compact JSON", got)
	}
	// Keys are sorted at every level: re-encoding through a map (which
	// encoding/json sorts) is a no-op.
	var v any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(v)
	if !bytes.Equal(got, again) {
		t.Errorf("Canonical() keys not sorted:\ngot  %s\nwant %s", got, again)
	}
	for _, want := range []string{`"body_size_limit":1048576`, `"timeout":"3s"`, `"retry_on":["502","5xx"]`, `"weight":1`} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("Canonical() = %s, want it to contain %s", got, want)
		}
	}
	// Canonical works on configs built in code and leaves them untouched.
	raw := &Config{Routes: []Route{{ID: "r", Pool: "p", Methods: []string{"get"}}}}
	rawCopy := raw.Clone()
	_ = raw.Canonical()
	if !reflect.DeepEqual(raw, rawCopy) {
		t.Errorf("Canonical() modified its receiver")
	}
}

func TestClone(t *testing.T) {
	t.Parallel()
	c, err := Load(examplesDir + "/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Tracing = &Tracing{SampleRatio: ptr(0.5)}
	cp := c.Clone()
	if !reflect.DeepEqual(c, cp) {
		t.Fatalf("Clone() is not equal to the original")
	}
	cp.Routes[1].Headers["X-API-Version"] = "changed"
	cp.Routes[0].Methods[0] = "PUT"
	*cp.Pools[1].Endpoints[0].Weight = 1234
	*cp.Tracing.SampleRatio = 1
	*cp.Logging.AccessLog = false
	cp.Server.TrustedProxies[0] = "1.2.3.4"
	if c.Routes[1].Headers["X-API-Version"] != "v2" || c.Routes[0].Methods[0] != "GET" ||
		*c.Pools[1].Endpoints[0].Weight != 90 || *c.Tracing.SampleRatio != 0.5 || !*c.Logging.AccessLog ||
		c.Server.TrustedProxies[0] != "10.0.0.0/8" {
		t.Errorf("mutating a Clone() changed the original")
	}
	if (*Config)(nil).Clone() != nil {
		t.Errorf("(*Config)(nil).Clone() != nil")
	}
	var nilConfig *Config
	if got, want := nilConfig.Version(), (&Config{}).Version(); got != want {
		t.Errorf("(*Config)(nil).Version() = %s, want %s (the empty config)", got, want)
	}
	if err := nilConfig.Validate(); err != nil {
		t.Errorf("(*Config)(nil).Validate() = %v, want nil", err)
	}
}
