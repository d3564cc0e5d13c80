package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestCanarySplitStickyCohort: a 10% canary over 10,000 requests lands on
// exactly 10% (the split is a counter, not a coin), a sticky key never
// flips, and a cohort header wins over the split.
func TestCanarySplitStickyCohort(t *testing.T) {
	t.Parallel()
	stable, canary, beta := newEcho(t, "stable"), newEcho(t, "canary"), newEcho(t, "beta")
	cfg := fmt.Sprintf(`
routes:
  - {id: split, path_prefix: /split, pool: stable}
  - {id: sticky, path_prefix: /sticky, pool: stable}
traffic_management:
  - {route: split, canary_pool: canary, canary_weight: 10, cohort_routing: {header: X-Cohort, mappings: {beta: beta}}}
  - {route: sticky, canary_pool: canary, canary_weight: 30, sticky_key: "header:X-User"}
pools:
  - {id: stable, endpoints: [{address: "%s"}]}
  - {id: canary, endpoints: [{address: "%s"}]}
  - {id: beta, endpoints: [{address: "%s"}]}
`, stable.addr, canary.addr, beta.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	const n = 10000
	got := map[string]int{}
	for range n {
		resp, _ := do(t, c, "GET", p.url("/split/x"), "", nil, nil)
		got[resp.Header.Get("X-Upstream")]++
	}
	if got["canary"] != n/10 || got["stable"] != n-n/10 {
		t.Fatalf("10%% canary over %d requests: %v, want exactly %d canary", n, got, n/10)
	}
	if got := sumSamples(p.metrics(t), "proxy_canary_requests_total", map[string]string{"route": "split", "variant": "canary"}); got != n/10 {
		t.Fatalf("proxy_canary_requests_total{route=split,variant=canary} = %v, want %d", got, n/10)
	}
	resp, _ := do(t, c, "GET", p.url("/split/x"), "", http.Header{"X-Cohort": {"beta"}}, nil)
	if resp.Header.Get("X-Upstream") != "beta" {
		t.Fatalf("cohort beta served by %q", resp.Header.Get("X-Upstream"))
	}
	// Sticky: each user always gets the same variant.
	canaryUsers := 0
	for u := range 50 {
		first := ""
		for range 5 {
			resp, _ := do(t, c, "GET", p.url("/sticky/x"), "", http.Header{"X-User": {fmt.Sprintf("user-%d", u)}}, nil)
			v := resp.Header.Get("X-Upstream")
			if first == "" {
				first = v
			} else if v != first {
				t.Fatalf("user-%d flipped from %s to %s", u, first, v)
			}
		}
		if first == "canary" {
			canaryUsers++
		}
	}
	if canaryUsers == 0 || canaryUsers == 50 {
		t.Fatalf("%d of 50 sticky users on the canary at 30%%: the key is not spread", canaryUsers)
	}
	// The variant is in the access log.
	eventually(t, 5*time.Second, func() error {
		variants := map[string]int{}
		for _, rec := range p.accessLog() {
			if rec["route"] == "split" {
				variants[fmt.Sprint(rec["canary_variant"])]++
			}
		}
		if variants["canary"] != n/10 {
			return fmt.Errorf("access-log canary_variant counts %v", variants)
		}
		return nil
	})
}

// TestCanaryBrake: a canary failing far more than stable is braked within
// one window: its traffic stops, the admin API says why, the audit log
// records it, and an explicit reset lifts it.
func TestCanaryBrake(t *testing.T) {
	t.Parallel()
	stable := newUpstream(t, "stable", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	canary := newUpstream(t, "canary", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	cfg := fmt.Sprintf(`
routes: [{id: api, path_prefix: /, pool: stable}]
traffic_management:
  - {route: api, canary_pool: canary, canary_weight: 50, auto_brake: {window: 30s, min_requests: 20, error_rate_multiplier: 2}}
pools:
  - {id: stable, endpoints: [{address: "%s"}]}
  - {id: canary, endpoints: [{address: "%s"}]}
`, stable.addr, canary.addr) + fastShutdown
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	writeFileAtomic(t, path, cfg)
	p := startProxyEnv(t, []string{"ADMIN_TOKEN=" + testToken}, path)
	c := newClient(t, 10*time.Second)
	for range 60 {
		do(t, c, "GET", p.url("/x"), "", nil, nil)
	}
	before := canary.hits.Load()
	for range 40 {
		if resp, _ := do(t, c, "GET", p.url("/x"), "", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("after the brake a request got %d", resp.StatusCode)
		}
	}
	if canary.hits.Load() != before {
		t.Fatalf("braked canary still received %d requests", canary.hits.Load()-before)
	}
	_, out := adminCall(t, p, "GET", "/api/v2/traffic/canary", testToken, nil)
	routes, _ := out["routes"].([]any)
	if len(routes) != 1 {
		t.Fatalf("canary view = %v", out)
	}
	view := routes[0].(map[string]any)
	if view["braked"] != true || view["effective_weight"] != float64(0) || view["configured_weight"] != float64(50) ||
		!strings.Contains(fmt.Sprint(view["brake_reason"]), "error rate") {
		t.Fatalf("canary view = %v, want braked with effective weight 0 and a reason", view)
	}
	_, out = adminCall(t, p, "GET", "/api/v2/audit", testToken, nil)
	if !strings.Contains(fmt.Sprint(out["records"]), "action:brake") {
		t.Fatalf("audit records lack the brake: %v", out["records"])
	}
	// Re-applying the same plan (a change elsewhere) keeps the brake.
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
		t.Fatal(err)
	}
	doc["version"] = "unrelated change"
	if resp, out := adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": doc}); resp.StatusCode != 200 {
		t.Fatalf("apply = %d %v", resp.StatusCode, out)
	}
	_, out = adminCall(t, p, "GET", "/api/v2/traffic/canary", testToken, nil)
	if out["routes"].([]any)[0].(map[string]any)["braked"] != true {
		t.Fatalf("an unchanged apply lifted the brake")
	}
	// An explicit reset lifts it.
	if resp, out := adminCall(t, p, "POST", "/api/v2/traffic/canary/api/reset", testToken, nil); resp.StatusCode != 200 {
		t.Fatalf("reset = %d %v", resp.StatusCode, out)
	}
	for range 10 {
		do(t, c, "GET", p.url("/x"), "", nil, nil)
	}
	if canary.hits.Load() == before {
		t.Fatalf("after the reset the canary gets no traffic")
	}
}

// TestOverloadProtection: at most max_concurrent requests reach the
// upstream, queue_size wait, the rest get 503 overloaded with Retry-After.
func TestOverloadProtection(t *testing.T) {
	t.Parallel()
	var inFlight, peak atomic.Int64
	release := make(chan struct{})
	up := newUpstream(t, "u", func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		io.WriteString(w, "ok")
	})
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p}]
traffic_management: [{route: r, overload_protection: {max_concurrent: 3, queue_size: 2, queue_timeout: 5s}}]
pools: [{id: p, endpoints: [{address: "%s"}]}]
`, up.addr) + fastShutdown
	p := startProxy(t, cfg)
	tr := &http.Transport{MaxIdleConnsPerHost: 20}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := ""
	for range 10 {
		wg.Go(func() {
			resp, err := c.Get(p.url("/x"))
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			if resp.StatusCode == 503 {
				retryAfter = resp.Header.Get("Retry-After")
			}
			mu.Unlock()
		})
	}
	// Let 3 in, 2 queue and 5 be shed, then release everyone.
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if codes[503] != 5 {
			return fmt.Errorf("codes so far %v, want 5 shed", codes)
		}
		return nil
	})
	close(release)
	wg.Wait()
	if codes[200] != 5 || codes[503] != 5 || peak.Load() != 3 || retryAfter == "" {
		t.Fatalf("codes %v, peak concurrency %d, Retry-After %q; want 5 served, 5 shed, peak 3", codes, peak.Load(), retryAfter)
	}
}
