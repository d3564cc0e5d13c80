package control

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/router"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/upstream"
)

// The size of the control-plane performance bar: apply (validate, compile,
// swap) of this many routes and pools in under 1 s, validate alone in
// under 500 ms (docs/PERFORMANCE.md, "Control plane").
const (
	benchRoutes = 10000
	benchPools  = 1000
	benchHosts  = 100
)

// largeConfig returns a realistic document of benchRoutes routes over
// benchPools pools, as the value encoding/json and YAML marshal to the same
// document. label is the config's "version" key, so two calls with
// different labels give configs with different versions and the same
// shape.
//
// It only uses sections that validation accepts in this release
// (config/unsupported.go): pools with 2-3 plaintext endpoints on 127.0.0.1
// (never dialled), every balancer, some h2c and transport settings; four
// policies of timeouts, body limits and require_tls; routes over 100 hosts
// (exact, wildcard, one regex host and one any-host group) with exact
// paths, prefixes (some rewritten), about 5% path regexes, methods, header
// and query matches.
func largeConfig(label string) map[string]any {
	pools := make([]any, benchPools)
	for i := range pools {
		pools[i] = benchPool(i)
	}
	routes := make([]any, benchRoutes)
	for i := range routes {
		routes[i] = benchRoute(i)
	}
	return map[string]any{
		"version": label,
		"server": map[string]any{
			"max_header_bytes": "64KB",
			"idle_timeout":     "90s",
			"trusted_proxies":  []any{"10.0.0.0/8", "192.0.2.1"},
		},
		"logging": map[string]any{"redact_headers": []any{"Authorization", "Cookie", "X-Api-Key"}},
		"policies": []any{
			map[string]any{"id": "default", "timeout": "30s"},
			map[string]any{"id": "strict", "timeout": "5s", "body_size_limit": "1MB", "require_tls": true},
			map[string]any{"id": "upload", "timeout": "5m", "body_size_limit": "100MB"},
			map[string]any{"id": "fast", "timeout": "500ms", "body_size_limit": 65536},
		},
		"pools":  pools,
		"routes": routes,
	}
}

func benchPool(i int) map[string]any {
	n := 2 + i%2
	eps := make([]any, n)
	for j := range eps {
		ep := map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", 20000+3*i+j)}
		if i%10 == 6 {
			ep["weight"] = 1 + j*2
		}
		eps[j] = ep
	}
	p := map[string]any{"id": fmt.Sprintf("pool-%04d", i), "endpoints": eps}
	switch i % 10 {
	case 6:
		p["balancer"] = "weighted_round_robin"
	case 7:
		p["balancer"] = "least_request"
	case 8:
		p["balancer"] = "random"
	case 9:
		p["balancer"] = "consistent_hash"
		p["hash_key"] = "client_ip"
		if i%20 == 9 {
			p["hash_key"] = "header:X-User"
		}
	}
	if i%50 == 0 {
		p["protocol"] = "h2c"
	}
	if i%4 == 1 {
		p["transport"] = map[string]any{"dial_timeout": "2s", "max_idle_per_endpoint": 64, "response_header_timeout": "10s"}
	}
	return p
}

// benchHost is the host of the routes of group h: mostly exact names, some
// wildcards, one regex and one group without a host.
func benchHost(h int) string {
	switch {
	case h == benchHosts-1:
		return ""
	case h == benchHosts-2:
		return `api-[0-9]+\.example\.org`
	case h >= benchHosts-10:
		return fmt.Sprintf("*.tenant-%02d.example.net", h)
	}
	return fmt.Sprintf("svc-%02d.example.com", h)
}

func benchRoute(i int) map[string]any {
	h, k := i/(benchRoutes/benchHosts), i%(benchRoutes/benchHosts)
	r := map[string]any{
		"id":   fmt.Sprintf("r-%05d", i),
		"pool": fmt.Sprintf("pool-%04d", (i*7)%benchPools),
	}
	if host := benchHost(h); host != "" {
		r["host"] = host
	}
	switch {
	case k%20 == 8:
		// Distinct per host, so that no cache of compiled regexes
		// makes the benchmark look better than real configs.
		r["path_regex"] = fmt.Sprintf(`/users/[0-9]+/items-%d-%d(/[a-z]+)?`, h, k)
	case k%10 < 5:
		r["path"] = fmt.Sprintf("/api/v1/orders/%d/status", k)
	case k%10 < 8:
		r["path_prefix"] = fmt.Sprintf("/api/v2/catalog-%d/", k)
		if k%20 == 5 {
			r["rewrite"] = map[string]any{"path_prefix": "/v2/"}
		}
	default:
		r["path"] = fmt.Sprintf("/internal/tenant/%d", k)
		r["headers"] = map[string]any{"X-Tenant": fmt.Sprintf("t-%d", k)}
	}
	switch {
	case k%3 == 0:
		r["methods"] = []any{"GET", "HEAD"}
	case k%7 == 0:
		r["methods"] = []any{"post"}
	}
	if k%25 == 3 {
		r["query"] = map[string]any{"beta": "1"}
	}
	if p := []string{"", "default", "strict", "upload", "fast"}[i%5]; p != "" {
		r["policy"] = p
	}
	return r
}

// benchDocs returns two encodings in format f of the large config that
// differ only in their label.
func benchDocs(tb testing.TB, f config.Format) [2][]byte {
	tb.Helper()
	var docs [2][]byte
	for i, label := range []string{"bench-a", "bench-b"} {
		var err error
		if f == config.FormatJSON {
			docs[i], err = json.Marshal(largeConfig(label))
		} else {
			docs[i], err = yaml.Marshal(largeConfig(label))
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return docs
}

// newBenchApplier returns an Applier with metrics, as the proxy runs it.
func newBenchApplier(tb testing.TB) (*Applier, *snapshot.Holder) {
	tb.Helper()
	var h snapshot.Holder
	st := upstream.NewState(nil)
	tb.Cleanup(st.Close)
	return NewApplier(&h, st, obs.NewMetrics(), nil), &h
}

// benchApply applies the two documents alternately, so that every
// iteration parses, validates, compiles and swaps (the same document twice
// in a row would take the "unchanged" shortcut).
func benchApply(b *testing.B, f config.Format) {
	docs := benchDocs(b, f)
	a, _ := newBenchApplier(b)
	// Warm up: the first apply creates every endpoint entry; later ones
	// reuse them, as the applies of a running proxy do.
	if _, err := a.ApplyBytes(docs[1], f, SourceAdmin); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(docs[0])))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		res, err := a.ApplyBytes(docs[i%2], f, SourceAdmin)
		if err != nil {
			b.Fatal(err)
		}
		if res.Unchanged {
			b.Fatal("apply was a no-op")
		}
	}
}

// BenchmarkApply10000 measures Applier.ApplyBytes of a 10,000-route,
// 1,000-pool JSON document (what the admin API receives): parse, validate,
// compile, swap, commit.
func BenchmarkApply10000(b *testing.B) { benchApply(b, config.FormatJSON) }

// BenchmarkApply10000YAML is BenchmarkApply10000 for the YAML form (what
// the config file holds).
func BenchmarkApply10000YAML(b *testing.B) { benchApply(b, config.FormatYAML) }

// BenchmarkValidate10000 measures what POST /config/validate does with the
// JSON document: config.Parse then Applier.Validate, which compiles against
// scratch state and swaps nothing.
func BenchmarkValidate10000(b *testing.B) {
	docs := benchDocs(b, config.FormatJSON)
	a, _ := newBenchApplier(b)
	b.SetBytes(int64(len(docs[0])))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cfg, err := config.Parse(docs[i%2], config.FormatJSON)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Validate(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestApply10000Works guards the benchmarks: the generated config is valid
// and applies completely.
func TestApply10000Works(t *testing.T) {
	docs := benchDocs(t, config.FormatJSON)
	a, h := newBenchApplier(t)
	if _, err := a.ApplyBytes(docs[0], config.FormatJSON, SourceAdmin); err != nil {
		t.Fatalf("apply: %v", err)
	}
	s := h.Load()
	if len(s.Routes) != benchRoutes || len(s.PoolList) != benchPools || s.Router.Len() != benchRoutes {
		t.Fatalf("snapshot has %d routes (router %d), %d pools; want %d, %d",
			len(s.Routes), s.Router.Len(), len(s.PoolList), benchRoutes, benchPools)
	}
	for _, tc := range []struct {
		host, method, path, want string
	}{
		{"svc-03.example.com", "GET", "/api/v1/orders/0/status", "r-00300"},
		{"a.tenant-95.example.net", "GET", "/api/v2/catalog-5/x", "r-09505"},
		{"api-7.example.org", "GET", "/users/42/items-98-8/x", "r-09808"},
		{"anything.example", "PUT", "/api/v1/orders/1/status", "r-09901"},
	} {
		res := s.Router.Match(tc.host, tc.method, tc.path, "", http.Header{})
		if res.Status != router.Matched || res.Rule.Value.ID != tc.want {
			got := ""
			if res.Rule != nil {
				got = res.Rule.Value.ID
			}
			t.Errorf("Match(%q, %q, %q) = %v %q, want matched %q", tc.host, tc.method, tc.path, res.Status, got, tc.want)
		}
	}
}
