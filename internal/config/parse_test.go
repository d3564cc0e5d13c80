package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// errorPaths returns the "path: message" strings of an Errors value, or
// fails the test when err is not one.
func errorList(t *testing.T, err error) Errors {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %v (%T) is not an Errors", err, err)
	}
	return es
}

// hasError reports whether es holds an error at path whose message
// contains substr.
func hasError(es Errors, path, substr string) bool {
	for _, e := range es {
		if e.Path == path && strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

func TestParseValues(t *testing.T) {
	t.Parallel()
	yamlDoc := `
version: v1
server:
  h2c: true
  max_header_bytes: 32KB
  max_url_bytes: 4096
  idle_timeout: 2m
  trusted_proxies: [10.0.0.0/8]
routes:
  - id: r
    host: api.example.com
    path_prefix: /api/
    methods: [get, Post]
    headers: {X-Version: 2, X-Flag: true}
    query: {beta: "1"}
    pool: p
policies:
  - id: pol
    timeout: 1.5s
    body_size_limit: 1mb
    retries:
      retry_on: [502, "5xx", connect_failure]
      per_try_timeout: 0
pools:
  - id: p
    endpoints: [{address: "127.0.0.1:8080", weight: 7}]
    health: {active: {expected_status: 200}}
tracing: {sample_ratio: 0.5}
tls: {min_version: 1.3}
`
	jsonDoc := `{
	"version": "v1",
	"server": {"h2c": true, "max_header_bytes": "32KB", "max_url_bytes": 4096, "idle_timeout": "2m",
		"trusted_proxies": ["10.0.0.0/8"]},
	"routes": [{"id": "r", "host": "api.example.com", "path_prefix": "/api/", "methods": ["get", "Post"],
		"headers": {"X-Version": 2, "X-Flag": true}, "query": {"beta": "1"}, "pool": "p"}],
	"policies": [{"id": "pol", "timeout": "1.5s", "body_size_limit": "1mb",
		"retries": {"retry_on": [502, "5xx", "connect_failure"], "per_try_timeout": 0}}],
	"pools": [{"id": "p", "endpoints": [{"address": "127.0.0.1:8080", "weight": 7}],
		"health": {"active": {"expected_status": 200}}}],
	"tracing": {"sample_ratio": 0.5},
	"tls": {"min_version": 1.3}
}`
	for _, tc := range []struct {
		name string
		doc  string
		f    Format
	}{{"yaml", yamlDoc, FormatYAML}, {"json", jsonDoc, FormatJSON}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tc.doc), tc.f)
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			checks := []struct {
				name      string
				got, want any
			}{
				{"label", c.Label, "v1"},
				{"h2c", c.Server.H2C, true},
				{"max_header_bytes", c.Server.MaxHeaderBytes, Size(32 << 10)},
				{"max_url_bytes", c.Server.MaxURLBytes, Size(4096)},
				{"idle_timeout", c.Server.IdleTimeout.Std(), 2 * time.Minute},
				{"trusted_proxies", strings.Join(c.Server.TrustedProxies, ","), "10.0.0.0/8"},
				{"methods", strings.Join(c.Routes[0].Methods, ","), "GET,POST"},
				{"header number", c.Routes[0].Headers["X-Version"], "2"},
				{"header bool", c.Routes[0].Headers["X-Flag"], "true"},
				{"query", c.Routes[0].Query["beta"], "1"},
				{"timeout", c.Policies[0].Timeout.Std(), 1500 * time.Millisecond},
				{"body_size_limit", c.Policies[0].BodySizeLimit, Size(1 << 20)},
				{"retry_on", len(c.Policies[0].Retries.RetryOn), 3},
				{"retry_on[0]", c.Policies[0].Retries.RetryOn[0], Scalar("502")},
				{"retry_on[1]", c.Policies[0].Retries.RetryOn[1], Scalar("5xx")},
				{"weight", *c.Pools[0].Endpoints[0].Weight, 7},
				{"expected_status", c.Pools[0].Health.Active.ExpectedStatus, Scalar("200")},
				{"sample_ratio", *c.Tracing.SampleRatio, 0.5},
				{"min_version", c.TLS.MinVersion, Scalar("1.3")},
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		f    Format
		// want lists "path|message substring" entries that must all be
		// reported, and nothing else.
		want []string
	}{
		{"unknown top-level key", "serverr: {}", FormatYAML, []string{"serverr|unknown key"}},
		{"unknown route key", "routes: [{id: a}, {id: b}, {id: c, pathh: /x}]", FormatYAML,
			[]string{"routes[2].pathh|unknown key"}},
		{"unknown transport key", "pools: [{id: p, transport: {dial_timout: 1s}}]", FormatYAML,
			[]string{"pools[0].transport.dial_timout|unknown key"}},
		{"unknown endpoint key", "pools: [{id: p, endpoints: [{address: 'a:1'}, {adress: 'b:1'}]}]", FormatYAML,
			[]string{"pools[0].endpoints[1].adress|unknown key"}},
		{"unknown backoff key", "policies: [{id: x, retries: {backoff: {bse: 1s}}}]", FormatYAML,
			[]string{"policies[0].retries.backoff.bse|unknown key"}},
		{"unknown jwt key", "middleware: [{id: m, stages: [{type: auth, config: {jwt: {issuerr: x}}}]}]", FormatYAML,
			[]string{"middleware[0].stages[0].config.jwt.issuerr|unknown key"}},
		{"unknown key json", `{"routes": [{"id": "a", "pathh": "/"}]}`, FormatJSON,
			[]string{"routes[0].pathh|unknown key"}},
		{"unknown nested key json", `{"pools": [{"id": "p", "health": {"active": {"intervall": "1s"}}}]}`, FormatJSON,
			[]string{"pools[0].health.active.intervall|unknown key"}},
		{"several problems at once", "serverr: 1\nroutes: [{idd: a, pool: [x]}]\nshutdown: {grace_period: soon}", FormatYAML,
			[]string{"serverr|unknown key", "routes[0].idd|unknown key", "routes[0].pool|expected a string",
				"shutdown.grace_period|invalid duration"}},
		{"list expected", "routes: {id: a}", FormatYAML, []string{"routes|expected a list, got a mapping"}},
		{"mapping expected", "server: [1]", FormatYAML, []string{"server|expected a mapping, got a list"}},
		{"integer expected", "server: {max_header_count: many}", FormatYAML,
			[]string{"server.max_header_count|expected an integer"}},
		{"integer not float", "server: {max_header_count: 1.5}", FormatYAML,
			[]string{"server.max_header_count|expected an integer"}},
		{"bool expected", "server: {h2c: 'yes'}", FormatYAML, []string{"server.h2c|expected true or false"}},
		{"string expected", "routes: [{id: 5}]", FormatYAML, []string{"routes[0].id|expected a string, got number 5"}},
		{"string expected json", `{"routes": [{"id": true}]}`, FormatJSON, []string{"routes[0].id|expected a string"}},
		{"map value not scalar", "routes: [{headers: {X-A: [1]}}]", FormatYAML, []string{"routes[0].headers.X-A|expected a string"}},
		{"number expected", "tracing: {sample_ratio: lots}", FormatYAML, []string{"tracing.sample_ratio|expected a number"}},
		{"nan rejected", "tracing: {sample_ratio: .nan}", FormatYAML, []string{"tracing.sample_ratio|expected a number"}},
		{"negative duration", "server: {idle_timeout: -5s}", FormatYAML, []string{"server.idle_timeout|must not be negative"}},
		{"garbage duration", "policies: [{id: p, timeout: soon}]", FormatYAML, []string{"policies[0].timeout|invalid duration"}},
		{"duration without unit", "policies: [{id: p, timeout: 5}]", FormatYAML, []string{"policies[0].timeout|needs a unit"}},
		{"duration not a list", "policies: [{id: p, timeout: [1s]}]", FormatYAML, []string{"policies[0].timeout|expected a duration"}},
		{"bad size", "server: {max_header_bytes: 10XB}", FormatYAML, []string{"server.max_header_bytes|unknown unit"}},
		{"negative size", "server: {max_header_bytes: -1}", FormatYAML, []string{"server.max_header_bytes|non-negative"}},
		{"negative size json", `{"server": {"max_url_bytes": -1}}`, FormatJSON, []string{"server.max_url_bytes|non-negative"}},
		{"scalar not a list", "policies: [{id: p, retries: {retry_on: [[502]]}}]", FormatYAML,
			[]string{"policies[0].retries.retry_on[0]|expected a string or a number"}},
		{"int overflow", "server: {max_header_count: 99999999999999999999}", FormatYAML,
			[]string{"server.max_header_count|expected an integer"}},
		{"duplicate key yaml", "server: {h2c: true, h2c: false}", FormatYAML, []string{"server.h2c|duplicate key"}},
		{"duplicate key json", `{"server": {"h2c": true, "h2c": false}}`, FormatJSON, []string{"server.h2c|duplicate key"}},
		{"duplicate top-level json", `{"routes": [], "routes": []}`, FormatJSON, []string{"routes|duplicate key"}},
		{"duplicate map key json", `{"routes": [{"headers": {"A": "1", "A": "2"}}]}`, FormatJSON,
			[]string{"routes[0].headers.A|duplicate key"}},
		{"non-string key", "routes: [{? [a]\n  : b}]", FormatYAML, []string{"routes[0]|mapping keys must be strings"}},
		{"top level list", "- a\n- b", FormatYAML, []string{"|top level must be a mapping"}},
		{"top level scalar", "hello", FormatYAML, []string{"|top level must be a mapping"}},
		{"top level json array", "[1]", FormatJSON, []string{"|top level must be a mapping"}},
		{"two documents", "server: {}\n---\nroutes: []", FormatYAML, []string{"|exactly one document"}},
		{"yaml syntax", "routes: [", FormatYAML, []string{"|yaml:"}},
		{"json syntax", `{"routes": [}`, FormatJSON, []string{"|json: line 1"}},
		{"json trailing comma", `{"routes": [],}`, FormatJSON, []string{"|json:"}},
		{"json trailing data", `{} {}`, FormatJSON, []string{"|unexpected data"}},
		{"json is not yaml", `{routes: []}`, FormatJSON, []string{"|json:"}},
		{"json line number", "{\n\"server\": {\n\"h2c\": tru }}", FormatJSON, []string{"|json: line 3"}},
		{"unknown format", "{}", Format(0), []string{"|unknown config format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.doc), tt.f)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, nil; want errors %v", tt.doc, c, tt.want)
			}
			if c != nil {
				t.Errorf("Parse(%q) config = %+v, want nil on error", tt.doc, c)
			}
			es := errorList(t, err)
			for _, w := range tt.want {
				path, msg, _ := strings.Cut(w, "|")
				if !hasError(es, path, msg) {
					t.Errorf("Parse(%q) = %v; want an error at %q containing %q", tt.doc, es, path, msg)
				}
			}
			if len(es) != len(tt.want) {
				t.Errorf("Parse(%q) returned %d errors %v, want %d", tt.doc, len(es), es, len(tt.want))
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	want := (&Config{}).Version()
	tests := []struct {
		doc string
		f   Format
	}{
		{"", FormatYAML},
		{"  \n\n", FormatYAML},
		{"# only a comment\n", FormatYAML},
		{"---\n", FormatYAML},
		{"~", FormatYAML},
		{"{}", FormatYAML},
		{"", FormatJSON},
		{" \n", FormatJSON},
		{"null", FormatJSON},
		{"{}", FormatJSON},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.doc), tt.f)
		if err != nil {
			t.Errorf("Parse(%q, %v) = %v, want the empty config", tt.doc, tt.f, err)
			continue
		}
		if got := c.Version(); got != want {
			t.Errorf("Parse(%q, %v).Version() = %s, want %s (the empty config)", tt.doc, tt.f, got, want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Parse(%q, %v).Validate() = %v, want nil", tt.doc, tt.f, err)
		}
	}
}

func TestParseNullMeansAbsent(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("tls: ~\nroutes:\nserver: {trusted_proxies: null}\npolicies: [{id: p, retries: null}]"), FormatYAML)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if c.TLS != nil || c.Routes != nil || c.Server.TrustedProxies != nil || c.Policies[0].Retries != nil {
		t.Errorf("null values decoded to %+v, want them absent", c)
	}
}

func TestParseAnchorsAndMerges(t *testing.T) {
	t.Parallel()
	doc := `
pools:
  - &base
    id: a
    balancer: random
    endpoints: [{address: "127.0.0.1:1"}]
    transport: {dial_timeout: 2s}
  - <<: *base
    id: b
    transport: {idle_timeout: 5s}
routes:
  - {id: r1, path: /a, pool: a, headers: &h {X-A: "1"}}
  - {id: r2, path: /b, pool: b, headers: *h}
`
	c, err := Parse([]byte(doc), FormatYAML)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	b := c.Pools[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"id", b.ID, "b"},
		{"merged balancer", b.Balancer, BalancerRandom},
		{"merged endpoints", b.Endpoints[0].Address, "127.0.0.1:1"},
		// An explicit key replaces the merged value as a whole, so the
		// merged dial_timeout does not survive: it is back to its default.
		{"explicit transport idle", b.Transport.IdleTimeout.Std(), 5 * time.Second},
		{"explicit transport dial", b.Transport.DialTimeout.Std(), time.Second},
		{"aliased headers", c.Routes[1].Headers["X-A"], "1"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	// The alias target must not be shared: mutating one copy leaves the
	// other alone.
	c.Routes[1].Headers["X-A"] = "2"
	if c.Routes[0].Headers["X-A"] != "1" {
		t.Errorf("aliased maps are shared between routes")
	}
}

func TestParseAliasBomb(t *testing.T) {
	t.Parallel()
	// Each level multiplies the work by k through aliases; the decoder's
	// budget must stop it long before it expands k^3 nodes.
	const k = 100
	var b strings.Builder
	b.WriteString("middleware:\n  - &c\n    id: c\n    stages:\n      - &s\n        type: header_transform\n        config:\n          add: &m {")
	for i := range k {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("h" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ": v")
	}
	b.WriteString("}\n")
	for range k {
		b.WriteString("      - *s\n")
	}
	for range k {
		b.WriteString("  - *c\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), FormatYAML)
	if err == nil || !strings.Contains(err.Error(), "too large after alias expansion") {
		t.Fatalf("Parse(alias bomb) = %v, want an alias expansion error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse(alias bomb) took %v, want well under 5s", d)
	}
}

func TestFormatFromPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path    string
		want    Format
		wantErr bool
	}{
		{path: "a.yaml", want: FormatYAML},
		{path: "/etc/proxy/a.yml", want: FormatYAML},
		{path: "A.YAML", want: FormatYAML},
		{path: "a.json", want: FormatJSON},
		{path: "a.toml", wantErr: true},
		{path: "yaml", wantErr: true},
		{path: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := FormatFromPath(tt.path)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("FormatFromPath(%q) = %v, %v; want %v, error %v", tt.path, got, err, tt.want, tt.wantErr)
		}
	}
	if got, want := FormatJSON.String(), "json"; got != want {
		t.Errorf("FormatJSON.String() = %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"routes": [{"id": "r", "pool": "p"}], "pools": [{"id": "p", "endpoints": [{"address": "127.0.0.1:1"}]}]}`)
	c, err := Load(good)
	if err != nil || len(c.Routes) != 1 {
		t.Fatalf("Load(%q) = %+v, %v; want one route", good, c, err)
	}
	bad := write("bad.yaml", "routes: [{pathh: /}]")
	_, err = Load(bad)
	if es := errorList(t, err); !hasError(es, "routes[0].pathh", "unknown key") || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(%q) = %v, want the file name and routes[0].pathh", bad, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
	if _, err := Load(write("c.ini", "")); err == nil {
		t.Errorf("Load(c.ini) = nil error, want unsupported extension")
	}
}
func TestParseDeepNesting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		f    Format
	}{
		{"yaml flow lists", "routes: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000), FormatYAML},
		{"yaml flow maps", "server: " + strings.Repeat("{a: ", 100000) + strings.Repeat("}", 100000), FormatYAML},
		{"json lists", `{"routes": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}", FormatJSON},
		{"json unknown key nesting", `{"x": ` + strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000) + "}", FormatJSON},
	}
	for _, tt := range tests {
		start := time.Now()
		_, err := Parse([]byte(tt.doc), tt.f)
		if err == nil {
			t.Errorf("%s: Parse() = nil error, want one", tt.name)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: Parse() took %v, want well under 5s", tt.name, d)
		}
	}
}
