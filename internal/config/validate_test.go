package config

import (
	"reflect"
	"strings"
	"testing"
)

// basePools is prepended to validation cases that do not define pools.
const basePools = `pools:
  - {id: p1, endpoints: [{address: "127.0.0.1:8001"}]}
  - {id: p2, endpoints: [{address: "127.0.0.1:8002"}]}
`

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		// want lists "path|message substring" for every expected error;
		// an empty list means the config is valid.
		want []string
	}{
		{"valid minimal", "routes: [{id: r, pool: p1}]", nil},

		// ids
		{"route id required", "routes: [{pool: p1}]", []string{"routes[0].id|required"}},
		{"route id charset", "routes: [{id: 'a b', pool: p1}]", []string{"routes[0].id|must match [A-Za-z0-9_.-]+"}},
		{"duplicate route id", "routes: [{id: r, path: /a, pool: p1}, {id: x, pool: p1}, {id: r, path: /b, pool: p1}]",
			[]string{`routes[2].id|duplicate id "r" (also routes[0])`}},
		{"duplicate pool id", "pools: [{id: p, endpoints: [{address: '127.0.0.1:1'}]}, {id: p, endpoints: [{address: '127.0.0.1:2'}]}]",
			[]string{`pools[1].id|duplicate id "p"`}},
		{"duplicate policy id", "policies: [{id: x}, {id: x}]", []string{`policies[1].id|duplicate id "x"`}},
		{"duplicate chain id", "middleware: [{id: m, stages: [{type: tracing}]}, {id: m, stages: [{type: tracing}]}]",
			[]string{`middleware[1].id|duplicate id "m"`}},
		{"duplicate plugin id", "plugins: [{id: x, type: builtin, name: a}, {id: x, type: builtin, name: b}]",
			[]string{`plugins[1].id|duplicate id "x"`, "plugins|not supported yet"}},

		// references
		{"unknown pool", "routes: [{id: r, pool: nope}]", []string{`routes[0].pool|unknown pool "nope"`}},
		{"pool required", "routes: [{id: r}]", []string{"routes[0].pool|required"}},
		{"pool from traffic plan", "routes: [{id: r}]\ntraffic_management: [{route: r, stable_pool: p1}]", nil},
		{"unknown policy", "routes: [{id: r, pool: p1, policy: nope}]", []string{`routes[0].policy|unknown policy "nope"`}},
		{"unknown chain", "routes: [{id: r, pool: p1, middleware: nope}]",
			[]string{`routes[0].middleware|unknown middleware chain "nope"`}},
		{"traffic refs", "routes: [{id: r, pool: p1}]\ntraffic_management: [{route: nope, stable_pool: x, canary_pool: y, cohort_routing: {header: X-C, mappings: {beta: z}}}]",
			[]string{`traffic_management[0].route|unknown route "nope"`, `traffic_management[0].stable_pool|unknown pool "x"`,
				`traffic_management[0].canary_pool|unknown pool "y"`, `traffic_management[0].cohort_routing.mappings.beta|unknown pool "z"`}},
		{"stage refs", "policies: [{id: nolimit}]\nmiddleware: [{id: m, stages: [{type: rate_limit, policy_ref: nope}, {type: plugin, plugin_ref: nope}, {type: rate_limit, policy_ref: nolimit}, {type: plugin}]}]",
			[]string{`middleware[0].stages[0].policy_ref|unknown policy "nope"`, `middleware[0].stages[1].plugin_ref|unknown plugin "nope"`,
				`middleware[0].stages[2].policy_ref|has no rate_limit`, "middleware[0].stages[3].plugin_ref|required",
				"middleware[0].stages[1].type|not supported yet", "middleware[0].stages[3].type|not supported yet"}},
		{"cache refs", "routes: [{id: r, pool: p1}]\ncache: [{route: nope}, {route: r}, {route: r}, {}]",
			[]string{`cache[0].route|unknown route "nope"`, `cache[2].route|already has an entry (cache[1])`, "cache[3].route|required", "cache|not supported yet"}},

		// route matchers
		{"bad path regex", "routes: [{id: r, pool: p1, path_regex: '/a(['}]", []string{"routes[0].path_regex|invalid regular expression"}},
		{"bad host regex", `routes: [{id: r, pool: p1, host: '(api\.example\.com'}]`, []string{"routes[0].host|invalid regular expression"}},
		{"host forms", `routes: [{id: a, pool: p1, host: api.example.com}, {id: b, pool: p1, host: '*.example.com'}, {id: c, pool: p1, host: '.*\.example\.com'}, {id: d, pool: p1, host: 10.0.0.1}]`, nil},
		{"host with port", "routes: [{id: r, pool: p1, host: 'api.example.com:8080'}]", []string{"routes[0].host|without the port"}},
		{"host with star inside", "routes: [{id: r, pool: p1, host: 'api*.example.com'}]", []string{"routes[0].host|invalid host"}},
		{"bad wildcard", "routes: [{id: r, pool: p1, host: '*.'}]", []string{"routes[0].host|invalid wildcard host"}},
		{"relative path", "routes: [{id: r, pool: p1, path: api}]", []string{`routes[0].path|must start with "/"`}},
		{"relative prefix", "routes: [{id: r, pool: p1, path_prefix: api/}]", []string{`routes[0].path_prefix|must start with "/"`}},
		{"two path matchers", "routes: [{id: r, pool: p1, path: /a, path_prefix: /b}]", []string{"routes[0]|set only one of path, path_prefix and path_regex"}},
		{"three path matchers", "routes: [{id: r, pool: p1, path: /a, path_prefix: /b, path_regex: /c}]", []string{"routes[0]|(got path, path_prefix, path_regex)"}},
		{"bad method", "routes: [{id: r, pool: p1, methods: [GET, 'GE T']}]", []string{"routes[0].methods[1]|invalid method"}},
		{"bad header name", "routes: [{id: r, pool: p1, headers: {'X Bad': v}}]", []string{"routes[0].headers.X Bad|invalid header name"}},
		{"empty query name", "routes: [{id: r, pool: p1, query: {'': v}}]", []string{"routes[0].query|must not be empty"}},
		{"rewrite regex", "routes: [{id: r, pool: p1, path_regex: /a.*, rewrite: {path_prefix: /}}]", []string{"routes[0].rewrite|cannot rewrite a path_regex"}},
		{"rewrite relative", "routes: [{id: r, pool: p1, path_prefix: /a, rewrite: {path_prefix: b}}]", []string{`routes[0].rewrite.path_prefix|must start with "/"`}},
		{"rewrite empty", "routes: [{id: r, pool: p1, path_prefix: /a, rewrite: {}}]", []string{"routes[0].rewrite.path_prefix|required"}},

		// shadowing
		{"shadowed route", "routes: [{id: a, pool: p1, path: /x}, {id: b, pool: p1, path: /y}, {id: c, pool: p2, path: /x}]",
			[]string{`routes[2]|unreachable: shadowed by routes[0] (id "a")`}},
		{"shadowed catch-all", "routes: [{id: a, pool: p1}, {id: b, pool: p2}]", []string{`routes[1]|shadowed by routes[0] (id "a")`}},
		{"shadowed same sets", `routes:
  - {id: a, pool: p1, host: API.example.com, path_prefix: /p, methods: [GET, POST], headers: {x-a: "1"}, query: {q: "1"}}
  - {id: b, pool: p1, host: api.example.com, path_prefix: /p, methods: [post, GET, GET], headers: {X-A: "1"}, query: {q: "1"}}`,
			[]string{`routes[1]|shadowed by routes[0] (id "a")`}},
		{"not shadowed: other kind", "routes: [{id: a, pool: p1, path: /x}, {id: b, pool: p1, path_prefix: /x}]", nil},
		{"not shadowed: other methods", "routes: [{id: a, pool: p1, path: /x, methods: [GET]}, {id: b, pool: p1, path: /x}]", nil},
		{"not shadowed: other header value", "routes: [{id: a, pool: p1, headers: {X: '1'}}, {id: b, pool: p1, headers: {X: '2'}}]", nil},
		{"not shadowed: other query", "routes: [{id: a, pool: p1, query: {q: '1'}}, {id: b, pool: p1}]", nil},
		{"not shadowed: regex case", "routes: [{id: a, pool: p1, host: '(A)\\.com'}, {id: b, pool: p1, host: '(a)\\.com'}]", nil},

		// pools
		{"no endpoints", "pools: [{id: p}]", []string{"pools[0].endpoints|at least one endpoint"}},
		{"bad addresses", `pools: [{id: p, endpoints: [{address: nohost}, {address: "127.0.0.1:0"}, {address: "127.0.0.1:70000"}, {address: "ftp://h:1"}, {address: "bad_host!:80"}, {address: ""}]}]`,
			[]string{"pools[0].endpoints[0].address|want host:port", "pools[0].endpoints[1].address|port must be 1-65535",
				"pools[0].endpoints[2].address|port must be 1-65535", "pools[0].endpoints[3].address|invalid address",
				"pools[0].endpoints[4].address|bad host", "pools[0].endpoints[5].address|invalid address"}},
		{"good addresses", `pools: [{id: p, endpoints: [{address: "http://127.0.0.1:1"}, {address: "[::1]:2"}, {address: "backend.internal:3"}]}]`, nil},
		{"https endpoint", `pools: [{id: p, endpoints: [{address: "https://127.0.0.1:443"}]}]`, nil},
		{"duplicate endpoint", `pools: [{id: p, endpoints: [{address: "127.0.0.1:1"}, {address: "http://127.0.0.1:1"}]}]`,
			[]string{"pools[0].endpoints[1].address|duplicate endpoint"}},
		{"weights", `pools: [{id: p, endpoints: [{address: "127.0.0.1:1", weight: 0}, {address: "127.0.0.1:2", weight: 10001}, {address: "127.0.0.1:3", weight: 10000}]}]`,
			[]string{"pools[0].endpoints[0].weight|between 1 and 10000, got 0", "pools[0].endpoints[1].weight|got 10001"}},
		{"balancer enum", `pools: [{id: p, balancer: fastest, endpoints: [{address: "127.0.0.1:1"}]}]`, []string{`pools[0].balancer|invalid balancer "fastest"`}},
		{"hash_key required", `pools: [{id: p, balancer: consistent_hash, endpoints: [{address: "127.0.0.1:1"}]}]`, []string{"pools[0].hash_key|required with balancer consistent_hash"}},
		{"hash_key only with consistent_hash", `pools: [{id: p, hash_key: client_ip, endpoints: [{address: "127.0.0.1:1"}]}]`, []string{"pools[0].hash_key|only used with balancer consistent_hash"}},
		{"hash_key forms", `pools:
  - {id: a, balancer: consistent_hash, hash_key: "header:", endpoints: [{address: "127.0.0.1:1"}]}
  - {id: b, balancer: consistent_hash, hash_key: route, endpoints: [{address: "127.0.0.1:1"}]}
  - {id: c, balancer: consistent_hash, hash_key: "cookie:sid", endpoints: [{address: "127.0.0.1:1"}]}
  - {id: d, balancer: consistent_hash, hash_key: client_ip, endpoints: [{address: "127.0.0.1:1"}]}`,
			[]string{`pools[0].hash_key|invalid key "header:"`, `pools[1].hash_key|invalid key "route"`}},
		{"protocol enum", `pools: [{id: p, protocol: http3, endpoints: [{address: "127.0.0.1:1"}]}]`, []string{`pools[0].protocol|invalid protocol "http3"`}},
		{"http2 needs tls", `pools: [{id: p, protocol: http2, endpoints: [{address: "127.0.0.1:1"}]}]`, []string{"pools[0].protocol|http2 needs TLS"}},
		{"pool tls pair", `pools: [{id: p, tls: {cert_file: /c}, endpoints: [{address: "127.0.0.1:1"}]}]`,
			[]string{"pools[0].tls|set cert_file and key_file together"}},
		{"pool tls", `pools: [{id: p, protocol: http2, tls: {server_name: b.internal, ca_file: /ca, cert_file: /c, key_file: /k}, endpoints: [{address: "127.0.0.1:1"}]}]`, nil},
		{"health checks", `pools: [{id: p, endpoints: [{address: "127.0.0.1:1"}], health: {active: {interval: 1s, timeout: 2s, path: health, expected_status: "ok", healthy_threshold: -1}}}]`,
			[]string{"pools[0].health.active.timeout|must not exceed interval", `pools[0].health.active.path|must start with "/"`,
				`pools[0].health.active.expected_status|invalid "ok"`, "pools[0].health.active.healthy_threshold|at least 1"}},
		{"pool breaker and outlier", `pools: [{id: p, endpoints: [{address: "127.0.0.1:1"}], circuit_breaker: {error_threshold_percent: 101}, outlier_detection: {max_ejection_percent: 101, error_rate_threshold: 101}}]`,
			[]string{"pools[0].circuit_breaker.error_threshold_percent|between 1 and 100, got 101",
				"pools[0].outlier_detection.max_ejection_percent|between 0 and 100", "pools[0].outlier_detection.error_rate_threshold|between 1 and 100"}},

		// policies
		{"retries", `policies: [{id: p, retries: {max_attempts: 11, budget_percent: 101, budget_burst: -1, retry_on: [502, "5xx", gateway, 600], backoff: {base: 1s, max: 100ms}}}]`,
			[]string{"policies[0].retries.max_attempts|between 1 and 10", "policies[0].retries.budget_percent|between 0 and 100",
				"policies[0].retries.budget_burst|at least 0", `policies[0].retries.retry_on[2]|invalid retry condition "gateway"`,
				`policies[0].retries.retry_on[3]|invalid retry condition "600"`, "policies[0].retries.backoff.max|must be at least backoff.base"}},
		{"hedging delay required", "policies: [{id: p, hedging: {max_hedges: 11}}]",
			[]string{"policies[0].hedging.delay|must be greater than 0", "policies[0].hedging.max_hedges|between 1 and 10"}},
		{"rate limit", "policies: [{id: p, rate_limit: {key: ip, scope: world}}, {id: q, rate_limit: {requests_per_second: 1, scope: global, key: 'header:X-User'}}]",
			[]string{"policies[0].rate_limit.requests_per_second|greater than 0", `policies[0].rate_limit.key|invalid key "ip"`,
				`policies[0].rate_limit.scope|invalid scope "world"`, "policies[0].rate_limit.burst|at least 1",
				"policies[1].rate_limit.scope|need a redis section",
			}},
		{"policy breaker", "policies: [{id: p, circuit_breaker: {error_threshold_percent: 101}}]",
			[]string{"policies[0].circuit_breaker.error_threshold_percent|between 1 and 100"}},

		// traffic management
		{"canary ranges", "routes: [{id: r, pool: p1}, {id: s, path: /s, pool: p1}]\ntraffic_management: [{route: r, canary_weight: 101, canary_pool: p2}, {route: s, canary_weight: 10}, {route: r}]",
			[]string{"traffic_management[0].canary_weight|between 0 and 100, got 101", "traffic_management[1].canary_pool|required when canary_weight",
				`traffic_management[2].route|route "r" already has an entry (traffic_management[0])`}},
		{"traffic details", "routes: [{id: r, pool: p1}]\ntraffic_management: [{route: r, sticky_key: 'session', auto_brake: {error_rate_multiplier: 0.5}, cohort_routing: {header: X-C, cookie: c, mappings: {}}, overload_protection: {}}]",
			[]string{`traffic_management[0].sticky_key|invalid key "session"`, "traffic_management[0].auto_brake|needs a canary_pool",
				"traffic_management[0].auto_brake.error_rate_multiplier|between 1 and", "traffic_management[0].cohort_routing|exactly one of header and cookie",
				"traffic_management[0].cohort_routing.mappings|at least one", "traffic_management[0].overload_protection.max_concurrent|at least 1"}},

		// middleware, plugins, cache
		{"stage types", "middleware: [{id: m, stages: [{type: bogus}, {type: auth}, {type: tracing, config: {add: {X-A: b}}}, {type: auth, config: {jwt: {jwks_url: 'ftp://x', jwks_file: /k, algorithms: [none], forward_claims: {sub: 'X User'}}}}]}, {id: n}]",
			[]string{`middleware[0].stages[0].type|invalid stage type "bogus"`, "middleware[0].stages[1].config.jwt|required for auth stages",
				"middleware[0].stages[2].config|only used by header_transform", "middleware[0].stages[3].config.jwt|exactly one of jwks_url and jwks_file",
				"middleware[0].stages[3].config.jwt.jwks_url|invalid URL", `middleware[0].stages[3].config.jwt.algorithms[0]|unsupported algorithm "none"`,
				"middleware[0].stages[3].config.jwt.forward_claims.sub|invalid header name", "middleware[1].stages|at least one stage"}},
		{"plugins", "plugins: [{id: a, type: wasm}, {id: b, type: external_grpc, fail_mode: maybe}, {id: c, type: builtin, address: 'h:1'}, {id: d, type: external_grpc, address: 'localhost:50051', name: x}]",
			[]string{`plugins[0].type|invalid plugin type "wasm"`, "plugins[1].address|required for external_grpc", `plugins[1].fail_mode|invalid fail_mode "maybe"`,
				"plugins[2].name|required for builtin", "plugins[2].address|only used by external_grpc", "plugins[3].name|only used by builtin",
				"plugins|not supported yet"}},
		{"cache sizes", "routes: [{id: r, pool: p1}]\ncache: [{route: r, max_size: 1MB, max_object_size: 2MB, vary_headers: ['Bad Header']}]",
			[]string{"cache[0].max_object_size|must not exceed max_size", "cache[0].vary_headers[0]|invalid header name", "cache|not supported yet"}},

		// tls, server, observability, rollout
		{"tls", "tls: {min_version: '1.1', certificates: [{sni: 'bad sni'}], mtls: {enabled: true}, acme: {directory_url: 'nope'}}",
			[]string{`tls.min_version|invalid "1.1"`, "tls.certificates[0].cert_file|required", "tls.certificates[0].key_file|required",
				"tls.certificates[0].sni|invalid server name", "tls.mtls.ca_file|required when mtls is enabled",
				"tls.acme.domains|at least one domain", "tls.acme.directory_url|invalid URL"}},
		{"tls 1.3 as a number", "tls: {min_version: 1.3}", nil},
		{"trusted proxies", "server: {trusted_proxies: [10.0.0.0/8, '::1', banana, 10.0.0.0/33]}",
			[]string{`server.trusted_proxies[2]|invalid trusted proxy "banana"`, `server.trusted_proxies[3]|invalid trusted proxy`}},
		{"server limits", "server: {max_header_bytes: 100, max_url_bytes: 10}",
			[]string{"server.max_header_bytes|at least 1024 bytes", "server.max_url_bytes|at least 256 bytes"}},
		{"observability", "metrics: {path: metrics, token_env: '1BAD'}\nlogging: {redact_headers: ['Bad Header']}\ntracing: {sample_ratio: 1.5}\nredis: {address: 'redis'}",
			[]string{`metrics.path|must start with "/"`, "metrics.token_env|invalid environment variable name", "logging.redact_headers[0]|invalid header name",
				"tracing.sample_ratio|between 0 and 1, got 1.5", "redis.address|want host:port"}},
		{"rollout", "rollout: {stages: [{name: a, fleet_percent: 50}, {name: a, fleet_percent: 10}, {fleet_percent: 0}], health_gates: [{metric: error_rate, threshold: 2}, {metric: p95_latency, threshold: 500}, {metric: cpu, threshold: 1}, {metric: p95_latency, threshold: 500ms}], auto_rollback: {error_budget_burn_rate: fast}}",
			[]string{`rollout.stages[1].name|duplicate stage name "a"`, "rollout.stages[1].fleet_percent|must not be below the previous stage's (50)",
				"rollout.stages[2].name|required", "rollout.stages[2].fleet_percent|between 1 and 100",
				"rollout.stages[2].fleet_percent|must not be below", `rollout.health_gates[0].threshold|invalid "2"`,
				`rollout.health_gates[1].threshold|invalid "500"`, `rollout.health_gates[2].metric|invalid metric "cpu"`,
				`rollout.auto_rollback.error_budget_burn_rate|invalid "fast"`, "rollout|not supported yet"}},
		{"rollout needs stages", "rollout: {auto_rollback: {error_budget_burn_rate: 10x}}", []string{"rollout.stages|at least one stage", "rollout|not supported yet"}},

		// the not-supported-yet gate on its own
		{"proxy protocol needs trusted proxies", "server: {proxy_protocol: true}\nroutes: [{id: r, pool: p1, require_mtls: true}]",
			[]string{"server.proxy_protocol|needs server.trusted_proxies"}},
		{"proxy protocol and mtls routes", "server: {proxy_protocol: true, trusted_proxies: [10.0.0.0/8]}\nroutes: [{id: r, pool: p1, require_mtls: true}]", nil},
		{"metrics token is built", "metrics: {require_token: true, token_env: SCRAPE_TOKEN}", nil},
		{"explicit false is not a feature", "server: {proxy_protocol: false}\nmetrics: {require_token: false}\nroutes: [{id: r, pool: p1, require_mtls: false}]", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := tt.doc
			if !strings.HasPrefix(doc, "pools:") && !strings.Contains(doc, "\npools:") {
				doc = basePools + doc
			}
			c := mustParse(t, doc)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %v", tt.want)
			}
			es := errorList(t, err)
			for _, w := range tt.want {
				path, msg, _ := strings.Cut(w, "|")
				if !hasError(es, path, msg) {
					t.Errorf("Validate() = %v\nwant an error at %q containing %q", es, path, msg)
				}
			}
			if len(es) != len(tt.want) {
				t.Errorf("Validate() returned %d errors, want %d:\n%s", len(es), len(tt.want), strings.ReplaceAll(es.Error(), "; ", "\n"))
			}
		})
	}
}

func TestValidateProgrammatic(t *testing.T) {
	t.Parallel()
	// Values the parser cannot produce (negative durations and sizes) can
	// still come from code; Validate must catch them.
	neg := Duration(-1)
	c := &Config{
		Policies: []Policy{{ID: "p", Timeout: -1, BodySizeLimit: -5, Hedging: &Hedging{Delay: 0}}},
		Pools: []Pool{{ID: "q", Endpoints: []Endpoint{{Address: "127.0.0.1:1"}},
			Transport: Transport{DialTimeout: -2, ResponseHeaderTimeout: -3, MaxIdlePerEndpoint: -1}}},
		Shutdown: Shutdown{DrainDelay: &neg, GracePeriod: -1},
	}
	before := c.Clone()
	es := errorList(t, c.Validate())
	want := []string{
		"policies[0].timeout|must not be negative",
		"policies[0].body_size_limit|at least 0 bytes",
		"policies[0].hedging.delay|must be greater than 0",
		"pools[0].transport.dial_timeout|must be greater than 0",
		"pools[0].transport.response_header_timeout|must not be negative",
		"pools[0].transport.max_idle_per_endpoint|at least 0",
		"shutdown.drain_delay|must not be negative",
		"shutdown.grace_period|must be greater than 0",
	}
	for _, w := range want {
		path, msg, _ := strings.Cut(w, "|")
		if !hasError(es, path, msg) {
			t.Errorf("Validate() = %v\nwant an error at %q containing %q", es, path, msg)
		}
	}
	if len(es) != len(want) {
		t.Errorf("Validate() returned %d errors, want %d: %v", len(es), len(want), es)
	}
	if !reflect.DeepEqual(c, before) {
		t.Errorf("Validate() modified its receiver")
	}
}

func TestValidateErrorsInDocumentOrder(t *testing.T) {
	t.Parallel()
	c := mustParse(t, basePools+"routes: [{id: a, pool: x}, {id: b, path: /b, pool: y}]\ncache: [{route: a}]")
	es := errorList(t, c.Validate())
	var got []string
	for _, e := range es {
		got = append(got, e.Path)
	}
	want := []string{"routes[0].pool", "routes[1].pool", "cache"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Validate() paths = %v, want %v", got, want)
	}
}
