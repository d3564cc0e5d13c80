package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/keelproxy/keel/internal/config"
)

// diffParse parses a YAML document; Parse applies defaults but does not
// validate, so sections that Validate still rejects as "not supported
// yet" (traffic_management, cache, middleware, retries, ...) can be
// diffed here.
func diffParse(t *testing.T, doc string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(doc), config.FormatYAML)
	if err != nil {
		t.Fatalf("Parse(%q) = %v", doc, err)
	}
	return c
}

// wantChanges decodes changes written as the admin API's JSON, numbers as
// json.Number, which is exactly the form Diff promises for Before and
// After: comparing with reflect.DeepEqual checks values and their types.
func wantChanges(t *testing.T, lines ...string) []config.Change {
	t.Helper()
	var out []config.Change
	for _, l := range lines {
		dec := json.NewDecoder(strings.NewReader(l))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		var c config.Change
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("bad want %s: %v", l, err)
		}
		out = append(out, c)
	}
	return out
}

// showChanges prints changes one JSON object a line for failure messages.
func showChanges(cs []config.Change) string {
	var b strings.Builder
	for _, c := range cs {
		j, err := json.Marshal(c)
		if err != nil {
			j = []byte(err.Error())
		}
		fmt.Fprintf(&b, "\n\t%s", j)
	}
	if b.Len() == 0 {
		return "\n\t(none)"
	}
	return b.String()
}

func checkDiff(t *testing.T, from, to *config.Config, want []config.Change) {
	t.Helper()
	got := config.Diff(from, to)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff() =%s\nwant%s", showChanges(got), showChanges(want))
	}
}

const diffBase = `
routes:
  - {id: a, pool: p}
  - {id: b, pool: p}
  - {id: c, pool: p}
pools:
  - id: p
    endpoints: [{address: "127.0.0.1:9001"}]
`

func TestDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to string
		want     []string
	}{
		{
			name: "identical",
			from: diffBase,
			to:   diffBase,
		},
		{
			name: "explicit defaults equal omitted ones",
			from: `
routes:
  - {id: a, pool: p, methods: [get]}
policies:
  - {id: s, body_size_limit: 1048576}
pools:
  - id: p
    endpoints: [{address: "127.0.0.1:9001"}]
`,
			to: `
server: {idle_timeout: 60s, max_header_bytes: 64KB}
routes:
  - {id: a, pool: p, methods: [GET]}
policies:
  - {id: s, body_size_limit: 1MB}
pools:
  - id: p
    balancer: round_robin
    protocol: http1
    endpoints: [{address: "127.0.0.1:9001", weight: 1}]
shutdown: {drain_delay: 10s, grace_period: 30s}
`,
		},
		{
			name: "route field",
			from: diffBase,
			to:   strings.Replace(diffBase, "{id: b, pool: p}", "{id: b, pool: q}", 1),
			want: []string{`{"op":"change","path":"routes[b].pool","before":"p","after":"q"}`},
		},
		{
			name: "route added in the middle",
			from: diffBase,
			to:   strings.Replace(diffBase, "  - {id: b", "  - {id: new, path: /new, pool: p}\n  - {id: b", 1),
			want: []string{`{"op":"add","path":"routes[new]","after":{"id":"new","path":"/new","pool":"p"}}`},
		},
		{
			name: "route removed",
			from: diffBase,
			to:   strings.Replace(diffBase, "  - {id: b, pool: p}\n", "", 1),
			want: []string{`{"op":"remove","path":"routes[b]","before":{"id":"b","pool":"p"}}`},
		},
		{
			// x had no surviving predecessor, so it comes first; b
			// followed a, so it comes right after a's changes.
			name: "removed elements keep their place",
			from: `
routes:
  - {id: x, pool: p}
  - {id: a, pool: p}
  - {id: b, pool: p}
`,
			to: `
routes:
  - {id: c, pool: p}
  - {id: a, pool: q}
`,
			want: []string{
				`{"op":"remove","path":"routes[x]","before":{"id":"x","pool":"p"}}`,
				`{"op":"add","path":"routes[c]","after":{"id":"c","pool":"p"}}`,
				`{"op":"change","path":"routes[a].pool","before":"p","after":"q"}`,
				`{"op":"remove","path":"routes[b]","before":{"id":"b","pool":"p"}}`,
			},
		},
		{
			name: "routes reordered",
			from: diffBase,
			to: `
routes:
  - {id: c, pool: p}
  - {id: a, pool: p}
  - {id: b, pool: p}
pools:
  - id: p
    endpoints: [{address: "127.0.0.1:9001"}]
`,
			want: []string{`{"op":"change","path":"routes.order","before":["a","b","c"],"after":["c","a","b"]}`},
		},
		{
			name: "routes reordered, added and edited",
			from: `
routes:
  - {id: a, pool: p}
  - {id: b, pool: p}
`,
			to: `
routes:
  - {id: b, pool: q}
  - {id: n, pool: p}
  - {id: a, pool: p}
`,
			want: []string{
				`{"op":"change","path":"routes.order","before":["a","b"],"after":["b","n","a"]}`,
				`{"op":"change","path":"routes[b].pool","before":"p","after":"q"}`,
				`{"op":"add","path":"routes[n]","after":{"id":"n","pool":"p"}}`,
			},
		},
		{
			// Version covers the order of every list, so Diff reports it
			// everywhere (see Diff), not only for routes.
			name: "pools reordered",
			from: "pools: [{id: p, endpoints: [{address: \"h:1\"}]}, {id: q, endpoints: [{address: \"h:2\"}]}]",
			to:   "pools: [{id: q, endpoints: [{address: \"h:2\"}]}, {id: p, endpoints: [{address: \"h:1\"}]}]",
			want: []string{`{"op":"change","path":"pools.order","before":["p","q"],"after":["q","p"]}`},
		},
		{
			name: "endpoint weight keyed by address",
			from: "pools: [{id: backend, endpoints: [{address: \"127.0.0.1:9000\"}, {address: \"127.0.0.1:9001\", weight: 5}]}]",
			to:   "pools: [{id: backend, endpoints: [{address: \"127.0.0.1:9000\"}, {address: \"127.0.0.1:9001\", weight: 50}]}]",
			want: []string{`{"op":"change","path":"pools[backend].endpoints[127.0.0.1:9001].weight","before":5,"after":50}`},
		},
		{
			name: "endpoint added",
			from: "pools: [{id: backend, endpoints: [{address: \"127.0.0.1:9001\"}]}]",
			to:   "pools: [{id: backend, endpoints: [{address: \"127.0.0.1:9000\"}, {address: \"127.0.0.1:9001\"}]}]",
			want: []string{`{"op":"add","path":"pools[backend].endpoints[127.0.0.1:9000]","after":{"address":"127.0.0.1:9000","weight":1}}`},
		},
		{
			name: "IPv6 endpoint removed, quoted",
			from: "pools: [{id: backend, endpoints: [{address: \"[::1]:9000\"}, {address: \"127.0.0.1:9001\"}]}]",
			to:   "pools: [{id: backend, endpoints: [{address: \"127.0.0.1:9001\"}]}]",
			want: []string{`{"op":"remove","path":"pools[backend].endpoints[\"[::1]:9000\"]","before":{"address":"[::1]:9000","weight":1}}`},
		},
		{
			name: "policy gains a nested block",
			from: "policies: [{id: slow, timeout: 5s}]",
			to:   "policies: [{id: slow, timeout: 5s, retries: {max_attempts: 3, retry_on: [RESET]}}]",
			want: []string{`{"op":"add","path":"policies[slow].retries","after":{"max_attempts":3,"budget_percent":20,"budget_burst":10,"idempotent_only":true,"retry_on":["reset"],"backoff":{"base":"25ms","max":"250ms"}}}`},
		},
		{
			name: "policy loses a nested block, changes a scalar",
			from: "policies: [{id: slow, timeout: 5s, hedging: {delay: 50ms}}]",
			to:   "policies: [{id: slow, timeout: 10s}]",
			want: []string{
				`{"op":"change","path":"policies[slow].timeout","before":"5s","after":"10s"}`,
				`{"op":"remove","path":"policies[slow].hedging","before":{"delay":"50ms","max_hedges":1}}`,
			},
		},
		{
			name: "scalar member appears",
			from: "routes: [{id: api, pool: p}]",
			to:   "routes: [{id: api, pool: p, policy: slow}]",
			want: []string{`{"op":"add","path":"routes[api].policy","after":"slow"}`},
		},
		{
			name: "methods change as a whole list",
			from: "routes: [{id: api, pool: p, methods: [GET, HEAD]}]",
			to:   "routes: [{id: api, pool: p, methods: [GET, POST, HEAD]}]",
			want: []string{`{"op":"change","path":"routes[api].methods","before":["GET","HEAD"],"after":["GET","POST","HEAD"]}`},
		},
		{
			name: "server scalar list",
			from: "server: {trusted_proxies: [10.0.0.0/8]}",
			to:   "server: {trusted_proxies: [10.0.0.0/8, 192.168.0.0/16]}",
			want: []string{`{"op":"change","path":"server.trusted_proxies","before":["10.0.0.0/8"],"after":["10.0.0.0/8","192.168.0.0/16"]}`},
		},
		{
			name: "top-level version label",
			from: "version: one",
			to:   "version: two",
			want: []string{`{"op":"change","path":"version","before":"one","after":"two"}`},
		},
		{
			name: "traffic plan keyed by route",
			from: "traffic_management: [{route: api, canary_pool: v2, canary_weight: 10}]",
			to:   "traffic_management: [{route: api, canary_pool: v2, canary_weight: 25}]",
			want: []string{`{"op":"change","path":"traffic_management[api].canary_weight","before":10,"after":25}`},
		},
		{
			name: "first cache entry is added element by element",
			from: "routes: [{id: api, pool: p}]",
			to:   "routes: [{id: api, pool: p}]\ncache: [{route: api, ttl: 60s}]",
			want: []string{`{"op":"add","path":"cache[api]","after":{"route":"api","enabled":true,"ttl":"1m0s","max_size":10485760,"max_object_size":1048576,"auth_aware":true,"coalesce_timeout":"5s"}}`},
		},
		{
			name: "middleware stages by position",
			from: "middleware: [{id: auth, stages: [{type: request_id}, {type: tracing}]}]",
			to:   "middleware: [{id: auth, stages: [{type: access_log}, {type: tracing}, {type: request_id}]}]",
			want: []string{
				`{"op":"change","path":"middleware[auth].stages[0].type","before":"request_id","after":"access_log"}`,
				`{"op":"add","path":"middleware[auth].stages[2]","after":{"type":"request_id"}}`,
			},
		},
		{
			name: "rollout stages keyed by name",
			from: "rollout: {stages: [{name: canary, fleet_percent: 1}, {name: all, fleet_percent: 100}]}",
			to:   "rollout: {stages: [{name: canary, fleet_percent: 5}, {name: all, fleet_percent: 100}]}",
			want: []string{`{"op":"change","path":"rollout.stages[canary].fleet_percent","before":1,"after":5}`},
		},
		{
			name: "duplicate ids fall back to positions",
			from: "routes: [{id: a, pool: p}, {id: a, pool: q}]",
			to:   "routes: [{id: a, pool: p}, {id: a, pool: r}]",
			want: []string{`{"op":"change","path":"routes[1].pool","before":"q","after":"r"}`},
		},
		{
			name: "ids that need quoting",
			from: "routes: [{id: a.b, pool: p}, {id: \"x]y\", pool: p}, {id: \"7\", pool: p}]",
			to:   "routes: [{id: a.b, pool: q}, {id: \"x]y\", pool: q}, {id: \"7\", pool: q}]",
			want: []string{
				`{"op":"change","path":"routes[a.b].pool","before":"p","after":"q"}`,
				`{"op":"change","path":"routes[\"x]y\"].pool","before":"p","after":"q"}`,
				`{"op":"change","path":"routes[\"7\"].pool","before":"p","after":"q"}`,
			},
		},
		{
			name: "map keys, sorted, quoted when not plain",
			from: "traffic_management: [{route: api, cohort_routing: {header: X-Cohort, mappings: {zeta: p1, beta.v2: p2}}}]",
			to:   "traffic_management: [{route: api, cohort_routing: {header: X-Cohort, mappings: {zeta: p3, beta.v2: p4, alpha: p5}}}]",
			want: []string{
				`{"op":"add","path":"traffic_management[api].cohort_routing.mappings.alpha","after":"p5"}`,
				`{"op":"change","path":"traffic_management[api].cohort_routing.mappings[\"beta.v2\"]","before":"p2","after":"p4"}`,
				`{"op":"change","path":"traffic_management[api].cohort_routing.mappings.zeta","before":"p1","after":"p3"}`,
			},
		},
		{
			// Struct field order, not alphabetical: server before routes
			// before pools before logging before shutdown, and within a
			// route host, path_prefix, methods, pool.
			name: "struct field order",
			from: `
routes: [{id: r, host: a.example, path_prefix: /a, methods: [GET], pool: p}]
pools: [{id: p, endpoints: [{address: "h:1"}]}]
`,
			to: `
shutdown: {grace_period: 5s}
logging: {redact_query: true}
pools: [{id: p, balancer: random, endpoints: [{address: "h:1"}]}]
routes: [{id: r, host: b.example, path_prefix: /b, methods: [PUT], pool: q}]
server: {h2c: true}
`,
			want: []string{
				`{"op":"add","path":"server.h2c","after":true}`,
				`{"op":"change","path":"routes[r].host","before":"a.example","after":"b.example"}`,
				`{"op":"change","path":"routes[r].path_prefix","before":"/a","after":"/b"}`,
				`{"op":"change","path":"routes[r].methods","before":["GET"],"after":["PUT"]}`,
				`{"op":"change","path":"routes[r].pool","before":"p","after":"q"}`,
				`{"op":"change","path":"pools[p].balancer","before":"round_robin","after":"random"}`,
				`{"op":"add","path":"logging.redact_query","after":true}`,
				`{"op":"change","path":"shutdown.grace_period","before":"30s","after":"5s"}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkDiff(t, diffParse(t, tt.from), diffParse(t, tt.to), wantChanges(t, tt.want...))
		})
	}
}

func TestDiffNil(t *testing.T) {
	t.Parallel()
	c := diffParse(t, `
version: v1
routes: [{id: api, pool: p}]
pools: [{id: p, endpoints: [{address: "h:1"}]}]
`)
	added := wantChanges(t,
		`{"op":"add","path":"version","after":"v1"}`,
		`{"op":"add","path":"routes[api]","after":{"id":"api","pool":"p"}}`,
		`{"op":"add","path":"pools[p]","after":{"id":"p","endpoints":[{"address":"h:1","weight":1}],"balancer":"round_robin","protocol":"http1","transport":{"max_idle_per_endpoint":256,"idle_timeout":"1m30s","dial_timeout":"1s"}}}`,
	)
	removed := wantChanges(t,
		`{"op":"remove","path":"version","before":"v1"}`,
		`{"op":"remove","path":"routes[api]","before":{"id":"api","pool":"p"}}`,
		`{"op":"remove","path":"pools[p]","before":{"id":"p","endpoints":[{"address":"h:1","weight":1}],"balancer":"round_robin","protocol":"http1","transport":{"max_idle_per_endpoint":256,"idle_timeout":"1m30s","dial_timeout":"1s"}}}`,
	)
	tests := []struct {
		name     string
		from, to *config.Config
		want     []config.Change
	}{
		{"nil to nil", nil, nil, nil},
		{"nil is the empty document", nil, diffParse(t, ""), nil},
		{"nil is the zero config", &config.Config{}, nil, nil},
		{"nil from", nil, c, added},
		{"nil to", c, nil, removed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkDiff(t, tt.from, tt.to, tt.want)
		})
	}
}

// diffRich is a pair with changes in most sections, maps included, for
// the determinism and concurrency tests.
const (
	diffRichFrom = `
version: a
server: {trusted_proxies: [10.0.0.0/8]}
routes:
  - {id: r1, pool: p, headers: {X-A: "1", X-B: "2", X-C: "3"}, query: {a: "1", b: "2"}}
  - {id: r2, pool: p}
  - {id: r3, pool: p}
policies: [{id: s, timeout: 1s, rate_limit: {requests_per_second: 5}}]
pools: [{id: p, endpoints: [{address: "h:1"}, {address: "h:2"}, {address: "h:3"}]}]
traffic_management: [{route: r1, cohort_routing: {header: X, mappings: {a: p, b: p, c: p}}}]
`
	diffRichTo = `
version: b
server: {trusted_proxies: [10.0.0.0/8, 10.1.0.0/16]}
routes:
  - {id: r3, pool: q}
  - {id: r1, pool: p, headers: {X-A: "9", X-B: "8", X-D: "3"}, query: {a: "2", c: "2"}}
  - {id: r4, pool: p}
policies: [{id: s, timeout: 2s, rate_limit: {requests_per_second: 7.5}}]
pools: [{id: p, endpoints: [{address: "h:3", weight: 2}, {address: "h:4"}, {address: "h:1"}]}]
traffic_management: [{route: r1, cohort_routing: {header: X, mappings: {a: q, c: q, d: q}}}]
tracing: {sample_ratio: 0.5}
`
)

func TestDiffDeterministic(t *testing.T) {
	t.Parallel()
	from, to := diffParse(t, diffRichFrom), diffParse(t, diffRichTo)
	first := config.Diff(from, to)
	if len(first) < 20 {
		t.Fatalf("Diff() = %d changes, want at least 20 for this test to mean something:%s", len(first), showChanges(first))
	}
	for i := range 20 {
		// Parse afresh too, so that map iteration order inside the
		// configs differs between runs.
		got := config.Diff(diffParse(t, diffRichFrom), diffParse(t, diffRichTo))
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("run %d: Diff() =%s\nfirst run%s", i, showChanges(got), showChanges(first))
		}
	}
}

// TestDiffConcurrent runs Diff on shared configs from several goroutines;
// under -race it checks that Diff only reads its inputs.
func TestDiffConcurrent(t *testing.T) {
	t.Parallel()
	from, to := diffParse(t, diffRichFrom), diffParse(t, diffRichTo)
	fromCopy, toCopy := from.Clone(), to.Clone()
	want := config.Diff(from, to)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			if got := config.Diff(from, to); !reflect.DeepEqual(got, want) {
				errs <- showChanges(got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent Diff() =%s\nwant%s", e, showChanges(want))
	}
	if !reflect.DeepEqual(from, fromCopy) || !reflect.DeepEqual(to, toCopy) {
		t.Errorf("Diff modified its arguments")
	}
}

// TestDiffEmptyIffSameVersion checks, over every ordered pair of a set of
// configs, that Diff reports nothing exactly when the versions are equal.
// The set holds equal documents spelled differently, configs built in Go
// without defaults, and one-field changes across sections (the label,
// list order, a map value, a nested block) so that both directions of the
// "iff" are exercised.
func TestDiffEmptyIffSameVersion(t *testing.T) {
	t.Parallel()
	base := diffParse(t, diffRichFrom)
	mutations := []func(c *config.Config){
		func(c *config.Config) { c.Label = "other" },
		func(c *config.Config) { c.Label = "" },
		func(c *config.Config) { c.Routes[0], c.Routes[1] = c.Routes[1], c.Routes[0] },
		func(c *config.Config) {
			c.Pools[0].Endpoints[0], c.Pools[0].Endpoints[2] = c.Pools[0].Endpoints[2], c.Pools[0].Endpoints[0]
		},
		func(c *config.Config) { c.Routes[0].Headers["X-A"] = "changed" },
		func(c *config.Config) { c.Policies[0].Hedging = &config.Hedging{} },
		func(c *config.Config) { c.Policies[0].RateLimit.RequestsPerSecond = 5.000001 },
		func(c *config.Config) { c.Server.TrustedProxies = append(c.Server.TrustedProxies, "10.0.0.0/8") },
		func(c *config.Config) { c.Logging.AccessLog = new(bool) },
		func(c *config.Config) { c.Redis = &config.Redis{} },
		func(c *config.Config) { c.TrafficManagement = nil },
		func(c *config.Config) { c.Metrics.Path = "/metrics" }, // the default: same version
	}
	cfgs := []*config.Config{
		nil,
		{},
		diffParse(t, ""),
		diffParse(t, "server: {idle_timeout: 1m}"),
		diffParse(t, "routes: [{id: a, pool: p}]"),
		{Routes: []config.Route{{ID: "a", Pool: "p"}}},
		{Routes: []config.Route{{ID: "a", Pool: "p", Methods: []string{"get"}}}},
		diffParse(t, "routes: [{id: a, pool: p, methods: [GET]}]"),
		base,
		diffParse(t, diffRichTo),
	}
	for _, m := range mutations {
		c := base.Clone()
		m(c)
		cfgs = append(cfgs, c)
	}
	versions := make([]string, len(cfgs))
	for i, c := range cfgs {
		versions[i] = c.Version()
	}
	for i, a := range cfgs {
		for j, b := range cfgs {
			got := config.Diff(a, b)
			same := versions[i] == versions[j]
			if (len(got) == 0) != same {
				t.Errorf("configs %d, %d: Diff() =%s\nbut Version() equal = %v\n%s\n%s", i, j, showChanges(got), same, a.Canonical(), b.Canonical())
			}
		}
	}
}

func TestDiffChangeJSON(t *testing.T) {
	t.Parallel()
	// The admin API's shape (SPEC section 8): no "before" for an add, no
	// "after" for a remove.
	tests := []struct {
		c    config.Change
		want string
	}{
		{config.Change{Op: config.OpAdd, Path: "routes[a]", After: map[string]any{"id": "a"}}, `{"op":"add","path":"routes[a]","after":{"id":"a"}}`},
		{config.Change{Op: config.OpRemove, Path: "pools[p]", Before: map[string]any{"id": "p"}}, `{"op":"remove","path":"pools[p]","before":{"id":"p"}}`},
		{config.Change{Op: config.OpChange, Path: "server.h2c", Before: false, After: true}, `{"op":"change","path":"server.h2c","before":false,"after":true}`},
		{config.Change{Op: config.OpChange, Path: "version", Before: "", After: "x"}, `{"op":"change","path":"version","before":"","after":"x"}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.c)
		if err != nil || string(got) != tt.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", tt.c, got, err, tt.want)
		}
	}
}

func TestDiffFormatChanges(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 200)
	tests := []struct {
		name    string
		changes []config.Change
		want    string
	}{
		{"nil", nil, "no changes\n"},
		{"empty", []config.Change{}, "no changes\n"},
		{
			name: "each op",
			changes: []config.Change{
				{Op: config.OpAdd, Path: "routes[api]", After: map[string]any{"pool": "p", "id": "api", "path": "/a&b<c>"}},
				{Op: config.OpRemove, Path: "pools[old]", Before: map[string]any{"id": "old"}},
				{Op: config.OpChange, Path: "policies[slow].timeout", Before: "5s", After: "10s"},
				{Op: config.OpChange, Path: "pools[p].endpoints[h:1].weight", Before: json.Number("1"), After: json.Number("3")},
				{Op: config.OpChange, Path: "routes.order", Before: []any{"a", "b"}, After: []any{"b", "a"}},
				{Op: "rename", Path: "x"},
			},
			want: `+ routes[api]: {"id":"api","path":"/a&b<c>","pool":"p"}
- pools[old]
~ policies[slow].timeout: "5s" -> "10s"
~ pools[p].endpoints[h:1].weight: 1 -> 3
~ routes.order: ["a","b"] -> ["b","a"]
? x
`,
		},
		{
			name:    "long values are cut to 120 characters",
			changes: []config.Change{{Op: config.OpChange, Path: "version", Before: long, After: "é" + long}},
			want:    `~ version: "` + strings.Repeat("x", 118) + `… -> "é` + strings.Repeat("x", 117) + "…\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := config.FormatChanges(tt.changes); got != tt.want {
				t.Errorf("FormatChanges() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestDiffFormatChangesEndToEnd renders a real diff end to end.
func TestDiffFormatChangesEndToEnd(t *testing.T) {
	t.Parallel()
	from := diffParse(t, `
routes: [{id: api, pool: p}, {id: old, pool: p}]
pools: [{id: p, endpoints: [{address: "h:1"}]}]
`)
	to := diffParse(t, `
routes: [{id: api, pool: q}, {id: new, pool: q}]
pools: [{id: p, endpoints: [{address: "h:1", weight: 3}]}]
`)
	want := `~ routes[api].pool: "p" -> "q"
- routes[old]
+ routes[new]: {"id":"new","pool":"q"}
~ pools[p].endpoints[h:1].weight: 1 -> 3
`
	got := config.FormatChanges(config.Diff(from, to))
	if got != want {
		t.Errorf("FormatChanges(Diff()) =\n%s\nwant\n%s", got, want)
	}
	if !bytes.Equal([]byte(got), []byte(config.FormatChanges(config.Diff(from, to)))) {
		t.Errorf("FormatChanges(Diff()) differs between calls")
	}
}
