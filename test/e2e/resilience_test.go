package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryConnectFailureAndStatus(t *testing.T) {
	t.Parallel()
	var flaky atomic.Int64
	good := newUpstream(t, "good", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "good %s %d", r.Method, len(b))
	})
	bad := newUpstream(t, "bad", func(w http.ResponseWriter, r *http.Request) {
		flaky.Add(1)
		io.ReadAll(r.Body)
		w.WriteHeader(503)
	})
	refused := freeAddr(t)
	cfg := fmt.Sprintf(`
routes:
  - {id: refuse, path_prefix: /refuse, pool: refusing, policy: retry}
  - {id: flaky, path_prefix: /flaky, pool: flaky, policy: retry}
  - {id: post, path_prefix: /post, pool: flaky, policy: retry}
  - {id: noretry, path_prefix: /noretry, pool: flaky}
policies:
  - id: retry
    retries: {max_attempts: 2, retry_on: [connect_failure, "503"], budget_burst: 1000}
pools:
  - {id: refusing, balancer: round_robin, endpoints: [{address: "%s"}, {address: "%s"}]}
  - {id: flaky, balancer: round_robin, endpoints: [{address: "%s"}, {address: "%s"}]}
`, refused, good.addr, bad.addr, good.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)

	for i := range 10 {
		if resp, b := do(t, c, "GET", p.url("/refuse/x"), "", nil, nil); resp.StatusCode != 200 || !strings.HasPrefix(string(b), "good") {
			t.Fatalf("GET /refuse #%d = %d %q, want 200 from good (a refused connection is retried on the other endpoint)", i, resp.StatusCode, b)
		}
		if resp, b := do(t, c, "GET", p.url("/flaky/x"), "", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("GET /flaky #%d = %d %q, want 200 (503 retried)", i, resp.StatusCode, b)
		}
	}
	// A replayable body is sent again, whole, on the retry.
	body := strings.Repeat("x", 1000)
	if resp, b := do(t, c, "PUT", p.url("/flaky/put"), "", nil, strings.NewReader(body)); resp.StatusCode != 200 || string(b) != "good PUT 1000" {
		// PUT is idempotent; the first attempt may land on either
		// endpoint, so one of two requests proves the replay.
		if resp2, b2 := do(t, c, "PUT", p.url("/flaky/put"), "", nil, strings.NewReader(body)); resp2.StatusCode != 200 || string(b2) != "good PUT 1000" {
			t.Fatalf("PUT with a body = %d %q / %d %q, want the body replayed to good", resp.StatusCode, b, resp2.StatusCode, b2)
		}
	}
	// POST is not idempotent: not retried by default.
	flaky.Store(0)
	sawPost503 := false
	for range 4 {
		resp, _ := do(t, c, "POST", p.url("/post/x"), "", nil, strings.NewReader("y"))
		sawPost503 = sawPost503 || resp.StatusCode == 503
	}
	if !sawPost503 || flaky.Load() != 2 {
		t.Fatalf("POST: saw 503 %v, bad contacted %d times for 4 round-robin POSTs; want 503s passed through and 2 contacts (no retries)", sawPost503, flaky.Load())
	}
	// Without a retry policy the 503 goes back as is.
	sawNoRetry503 := false
	for range 4 {
		resp, _ := do(t, c, "GET", p.url("/noretry/x"), "", nil, nil)
		sawNoRetry503 = sawNoRetry503 || resp.StatusCode == 503
	}
	if !sawNoRetry503 {
		t.Fatalf("a route without retries never passed a 503 through")
	}

	eventually(t, 5*time.Second, func() error {
		recs := p.accessLog()
		retried := 0
		for _, r := range recs {
			if n, _ := r["retries"].(float64); n > 0 && r["route"] == "refuse" {
				retried++
			}
		}
		if retried == 0 {
			return fmt.Errorf("no access-log record of route refuse shows retries > 0")
		}
		return nil
	})
	m := p.metrics(t)
	if got := sumSamples(m, "proxy_retries_total", map[string]string{"route": "flaky", "outcome": "success"}); got < 1 {
		t.Fatalf("proxy_retries_total{route=flaky,outcome=success} = %v, want >= 1", got)
	}
}

func TestNoRetryAfterResponseStarted(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	// Headers and part of the body, then the connection dies.
	mid := newRawServer(t, func(conn net.Conn) {
		hits.Add(1)
		br := bufio.NewReader(conn)
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
	})
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p, policy: retry}]
policies: [{id: retry, retries: {max_attempts: 3, retry_on: [reset, connect_failure, "5xx"]}}]
pools: [{id: p, endpoints: [{address: "%s"}]}]
`, mid.addr) + fastShutdown
	p := startProxy(t, cfg)
	// The response was committed (status and a partial body from the
	// upstream): the client sees an aborted stream, either before the
	// buffered head left the proxy or mid-body, and never a retry.
	resp, err := newClient(t, 10*time.Second).Get(p.url("/x"))
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Fatalf("got a complete response %d %q; want an aborted stream", resp.StatusCode, b)
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("upstream contacted %d times, want 1: nothing is retried once response bytes reached the client", hits.Load())
	}
}

func TestPerTryTimeoutRetriesElsewhere(t *testing.T) {
	t.Parallel()
	slow := newUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	fast := newUpstream(t, "fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p, policy: retry}]
policies: [{id: retry, retries: {max_attempts: 2, per_try_timeout: 200ms, retry_on: [timeout]}}]
pools: [{id: p, balancer: round_robin, endpoints: [{address: "%s"}, {address: "%s"}]}]
`, slow.addr, fast.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	for i := range 4 {
		start := time.Now()
		resp, b := do(t, c, "GET", p.url("/x"), "", nil, nil)
		if resp.StatusCode != 200 || string(b) != "fast" {
			t.Fatalf("GET #%d = %d %q, want 200 fast", i, resp.StatusCode, b)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("GET #%d took %v: the per-try timeout did not cut the slow attempt", i, d)
		}
	}
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	failing.Store(true)
	up := newUpstream(t, "u", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, "ok")
	})
	base := fmt.Sprintf(`
pools:
  - id: p
    endpoints: [{address: "%s"}]
    circuit_breaker: {error_threshold_percent: 50, min_requests: 5, open_duration: 1s, window: 10s, half_open_requests: 1}
`, up.addr) + fastShutdown
	p := startProxy(t, "routes: [{id: r, path_prefix: /, pool: p}]\n"+base)
	c := newClient(t, 10*time.Second)
	for i := range 5 {
		if resp, _ := do(t, c, "GET", p.url("/x"), "", nil, nil); resp.StatusCode != 500 {
			t.Fatalf("request %d = %d, want the upstream's 500 while the breaker counts", i, resp.StatusCode)
		}
	}
	before := up.hits.Load()
	resp, b := do(t, c, "GET", p.url("/x"), "", nil, nil)
	checkProxyError(t, resp, b, 503, "circuit_open")
	if got := resp.Header.Get("X-Proxy-Circuit-Open"); got != "p" {
		t.Fatalf("X-Proxy-Circuit-Open = %q, want the pool id p", got)
	}
	if up.hits.Load() != before {
		t.Fatalf("an open breaker contacted the upstream")
	}
	m := p.metrics(t)
	if sumSamples(m, "proxy_breaker_state", map[string]string{"pool": "p", "state": "open"}) != 1 ||
		sumSamples(m, "proxy_breaker_trips_total", map[string]string{"pool": "p"}) != 1 {
		t.Fatalf("breaker metrics: state open = %v, trips = %v; want 1 and 1",
			sumSamples(m, "proxy_breaker_state", map[string]string{"pool": "p", "state": "open"}),
			sumSamples(m, "proxy_breaker_trips_total", map[string]string{"pool": "p"}))
	}
	// An unrelated apply keeps the breaker (and its state).
	p.writeConfig(t, "routes: [{id: r, path_prefix: /, pool: p}, {id: other, path: /other, pool: p}]\n"+base)
	eventually(t, 5*time.Second, func() error {
		if _, v := p.readyVersion(t); v == "" {
			return fmt.Errorf("no version")
		}
		resp, _ := do(t, c, "GET", p.url("/other"), "", nil, nil)
		if resp.Header.Get("X-Proxy-Error") != "circuit_open" {
			return fmt.Errorf("after the apply, /other = %d %q; want circuit_open (state kept)", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
		}
		return nil
	})
	// The admin API shows it, in the breaker list and in explain.
	_, out := adminCall(t, p, "GET", "/api/v2/breakers", "", nil)
	if !strings.Contains(fmt.Sprint(out["breakers"]), "state:open") {
		t.Fatalf("/api/v2/breakers = %v, want the open breaker of p", out)
	}
	_, out = adminCall(t, p, "GET", "/api/v2/routes/match?path=/x", "", nil)
	if br, _ := out["breaker"].(map[string]any); br["state"] != "open" {
		t.Fatalf("explain breaker = %v, want state open", out["breaker"])
	}
	// The access log names the breaker state.
	eventually(t, 5*time.Second, func() error {
		for _, rec := range p.accessLog() {
			if rec["error"] == "circuit_open" && rec["breaker_state"] == "open" {
				return nil
			}
		}
		return fmt.Errorf("no access-log record with error circuit_open and breaker_state open")
	})
	// After open_duration a half-open probe goes through; success closes.
	failing.Store(false)
	eventually(t, 5*time.Second, func() error {
		resp, b := do(t, c, "GET", p.url("/x"), "", nil, nil)
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET = %d %q, want 200 once half-open lets a probe through", resp.StatusCode, b)
		}
		return nil
	})
	for range 5 {
		if resp, _ := do(t, c, "GET", p.url("/x"), "", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("after closing: %d", resp.StatusCode)
		}
	}
}

// TestRetryStormStaysWithinBudget: with half the endpoints failing under
// load, upstream requests stay within (1 + budget) of client requests.
func TestRetryStormStaysWithinBudget(t *testing.T) {
	t.Parallel()
	const workers, budgetPercent, burst = 20, 20, 10
	var upstreamReqs atomic.Int64
	mk := func(name string, fail bool) *upstream {
		return newUpstream(t, name, func(w http.ResponseWriter, r *http.Request) {
			upstreamReqs.Add(1)
			if fail {
				w.WriteHeader(503)
				return
			}
			io.WriteString(w, "ok")
		})
	}
	a, b, c2, d := mk("a", true), mk("b", true), mk("c", false), mk("d", false)
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p, policy: retry}]
policies: [{id: retry, retries: {max_attempts: 3, retry_on: ["503"], budget_percent: %d, budget_burst: %d, backoff: {base: 1ms, max: 2ms}}}]
pools: [{id: p, balancer: round_robin, endpoints: [{address: "%s"}, {address: "%s"}, {address: "%s"}, {address: "%s"}]}]
`, budgetPercent, burst, a.addr, b.addr, c2.addr, d.addr) + fastShutdown
	p := startProxy(t, cfg)
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var clientReqs atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				resp, err := c.Get(p.url("/x"))
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				clientReqs.Add(1)
			}
		})
	}
	wg.Wait()
	cr, ur := clientReqs.Load(), upstreamReqs.Load()
	// Retries are at most budget_percent of successes in the window plus
	// the burst; successes are at most the client requests.
	limit := float64(cr)*(1+budgetPercent/100.0) + burst
	t.Logf("%d client requests, %d upstream requests (limit %.0f)", cr, ur, limit)
	if float64(ur) > limit {
		t.Fatalf("%d upstream requests for %d client requests: over (1 + %d%%) + %d", ur, cr, budgetPercent, burst)
	}
	m := p.metrics(t)
	if got := sumSamples(m, "proxy_retries_total", map[string]string{"route": "r", "outcome": "budget"}); got == 0 {
		t.Fatalf("proxy_retries_total{outcome=budget} = 0: the budget never refused a retry under a storm")
	}
	if len(findSamples(m, "proxy_retry_budget_tokens", map[string]string{"route": "r"})) != 1 {
		t.Fatalf("proxy_retry_budget_tokens{route=r} missing")
	}
}

func TestActiveHealthChecks(t *testing.T) {
	t.Parallel()
	var sick atomic.Bool
	mk := func(name string, flaky bool) *upstream {
		return newUpstream(t, name, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				if flaky && sick.Load() {
					w.WriteHeader(500)
				}
				return
			}
			io.WriteString(w, name)
		})
	}
	a, b := mk("a", true), mk("b", false)
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p}]
pools:
  - id: p
    balancer: round_robin
    endpoints: [{address: "%s"}, {address: "%s"}]
    health: {active: {interval: 100ms, timeout: 50ms, path: /health, healthy_threshold: 2, unhealthy_threshold: 2}}
`, a.addr, b.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	served := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			resp, _ := do(t, c, "GET", p.url("/x"), "", nil, nil)
			got[resp.Header.Get("X-Upstream")]++
		}
		return got
	}
	if got := served(10); got["a"] == 0 || got["b"] == 0 {
		t.Fatalf("both healthy: served %v, want both", got)
	}
	sick.Store(true)
	eventually(t, 5*time.Second, func() error {
		_, out := adminCall(t, p, "GET", "/api/v2/pools/p/health", "", nil)
		if out["healthy"] != float64(1) {
			return fmt.Errorf("pool health %v, want 1 healthy", out)
		}
		return nil
	})
	if got := served(10); got["a"] != 0 {
		t.Fatalf("a failing its health checks still served %d of 10", got["a"])
	}
	if v := sumSamples(p.metrics(t), "proxy_pool_healthy_endpoints", map[string]string{"pool": "p"}); v != 1 {
		t.Fatalf("proxy_pool_healthy_endpoints{pool=p} = %v, want 1", v)
	}
	// An unrelated apply keeps the checkers and their verdicts: a is
	// still out right after it (a restarted checker would start it
	// healthy again).
	_, before := p.readyVersion(t)
	p.writeConfig(t, cfg+"\nversion: unrelated\n")
	eventually(t, 5*time.Second, func() error {
		if _, v := p.readyVersion(t); v == before {
			return fmt.Errorf("config not applied yet")
		}
		return nil
	})
	if got := served(10); got["a"] != 0 {
		t.Fatalf("after an unrelated apply, a failing its checks served %d of 10", got["a"])
	}
	sick.Store(false)
	eventually(t, 5*time.Second, func() error {
		if got := served(6); got["a"] == 0 {
			return fmt.Errorf("a healthy again but served %v", got)
		}
		return nil
	})
}

func TestPassiveEjectionAndNoHealthyUpstream(t *testing.T) {
	t.Parallel()
	var aDown atomic.Bool
	aDown.Store(true)
	a := newUpstream(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if aDown.Load() {
			w.WriteHeader(502)
			return
		}
		io.WriteString(w, "a")
	})
	b := newUpstream(t, "b", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	cfg := fmt.Sprintf(`
routes:
  - {id: r, path_prefix: /, pool: p}
  - {id: solo, path_prefix: /solo, pool: solo}
pools:
  - id: p
    balancer: round_robin
    endpoints: [{address: "%s"}, {address: "%s"}]
    health: {passive: {consecutive_failures: 3, ejection_duration: 30s}}
  - id: solo
    endpoints: [{address: "%s"}]
    health: {passive: {consecutive_failures: 2, ejection_duration: 30s}}
`, a.addr, b.addr, a.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	for range 6 { // three failures reach a
		do(t, c, "GET", p.url("/x"), "", nil, nil)
	}
	before := a.hits.Load()
	for i := range 10 {
		if resp, _ := do(t, c, "GET", p.url("/x"), "", nil, nil); resp.Header.Get("X-Upstream") != "b" {
			t.Fatalf("request %d after a's ejection went to %q, want b", i, resp.Header.Get("X-Upstream"))
		}
	}
	if a.hits.Load() != before {
		t.Fatalf("ejected endpoint a was contacted")
	}
	_, out := adminCall(t, p, "GET", "/api/v2/pools/p/health", "", nil)
	eps := fmt.Sprint(out["endpoints"])
	if !strings.Contains(eps, "ejected:true") {
		t.Fatalf("pool health = %v, want a ejected", out)
	}

	// A pool whose only endpoint is out: no_healthy_upstream, except at
	// most one request per second that trickles through.
	for range 2 {
		do(t, c, "GET", p.url("/solo/x"), "", nil, nil)
	}
	soloBefore := a.hits.Load()
	noHealthy := 0
	start := time.Now()
	for range 20 {
		resp, b := do(t, c, "GET", p.url("/solo/x"), "", nil, nil)
		if resp.Header.Get("X-Proxy-Error") == "no_healthy_upstream" {
			checkProxyError(t, resp, b, 503, "no_healthy_upstream")
			noHealthy++
		}
	}
	elapsed := time.Since(start)
	trickled := a.hits.Load() - soloBefore
	if maxTrickle := int64(elapsed/time.Second) + 1; trickled > maxTrickle || noHealthy < 20-int(maxTrickle) {
		t.Fatalf("all down for %v: %d requests trickled to the upstream, %d no_healthy_upstream; want at most %d trickled", elapsed, trickled, noHealthy, maxTrickle)
	}
}

func TestHedgingCutsTail(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	// Every third request stalls for 2s: the tail the hedge should cut.
	up := newUpstream(t, "u", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "ok")
	})
	up2 := newUpstream(t, "u2", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p, policy: hedge}]
policies: [{id: hedge, hedging: {delay: 50ms, max_hedges: 1}}]
pools: [{id: p, balancer: round_robin, endpoints: [{address: "%s"}, {address: "%s"}]}]
`, up.addr, up2.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	var worst time.Duration
	for range 12 {
		start := time.Now()
		resp, b := do(t, c, "GET", p.url("/x"), "", nil, nil)
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("GET = %d %q", resp.StatusCode, b)
		}
		worst = max(worst, time.Since(start))
	}
	if worst > time.Second {
		t.Fatalf("slowest hedged GET took %v; the 2s stalls were not cut", worst)
	}
}

// TestOutlierDetection: an endpoint failing half its requests is ejected
// at the end of the interval, but never more than max_ejection_percent of
// the pool, and ejections show in the admin API.
func TestOutlierDetection(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	mk := func(name string, failEvery int64) *upstream {
		return newUpstream(t, name, func(w http.ResponseWriter, r *http.Request) {
			if failEvery > 0 && n.Add(1)%failEvery == 0 {
				w.WriteHeader(500)
				return
			}
			io.WriteString(w, name)
		})
	}
	// a and b fail every other request; c and d never. With 50% max
	// ejection of 4 endpoints, at most 2 are out.
	a, b, c2, d := mk("a", 2), mk("b", 2), mk("c", 0), mk("d", 0)
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p}]
pools:
  - id: p
    balancer: round_robin
    endpoints: [{address: "%s"}, {address: "%s"}, {address: "%s"}, {address: "%s"}]
    outlier_detection: {consecutive_failures: 100, error_rate_threshold: 40, interval: 300ms, base_ejection_time: 30s, max_ejection_percent: 25}
`, a.addr, b.addr, c2.addr, d.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	eventually(t, 10*time.Second, func() error {
		for range 40 {
			do(t, c, "GET", p.url("/x"), "", nil, nil)
		}
		_, out := adminCall(t, p, "GET", "/api/v2/pools/p/health", "", nil)
		if out["healthy"] != float64(3) {
			return fmt.Errorf("pool health %v, want exactly 3 healthy (one ejected: 25%% of 4)", out["healthy"])
		}
		return nil
	})
	// The cap holds: the second bad endpoint stays in.
	for range 40 {
		do(t, c, "GET", p.url("/x"), "", nil, nil)
	}
	time.Sleep(700 * time.Millisecond)
	_, out := adminCall(t, p, "GET", "/api/v2/pools/p/health", "", nil)
	if out["healthy"] != float64(3) {
		t.Fatalf("after more intervals: %v healthy, want 3 (max_ejection_percent 25)", out["healthy"])
	}
	eps := fmt.Sprint(out["endpoints"])
	if !strings.Contains(eps, "times_ejected:1") {
		t.Fatalf("endpoints %s: want one ejection recorded", eps)
	}
}

// TestStallMidBody: an upstream that stalls after part of the body is cut
// by the route timeout; the client sees an aborted stream, the access log
// says request_timeout, the upstream was contacted once.
func TestStallMidBody(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	stall := newRawServer(t, func(conn net.Conn) {
		hits.Add(1)
		br := bufio.NewReader(conn)
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
		time.Sleep(3 * time.Second)
	})
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p, policy: pol}]
policies: [{id: pol, timeout: 300ms, retries: {max_attempts: 3, retry_on: [reset, timeout, "5xx"]}}]
pools: [{id: p, endpoints: [{address: "%s"}]}]
`, stall.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	req, _ := http.NewRequest("GET", p.url("/x"), nil)
	req.Header.Set("X-Request-Id", "stall-1")
	start := time.Now()
	resp, err := c.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatalf("a stalled body was completed")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the stall lasted %v: the route timeout did not cut it", d)
	}
	if hits.Load() != 1 {
		t.Fatalf("upstream contacted %d times, want 1", hits.Load())
	}
	eventually(t, 5*time.Second, func() error {
		recs := p.accessByID(t, "stall-1")
		if len(recs) != 1 || recs[0]["error"] != "request_timeout" {
			return fmt.Errorf("access log for stall-1 = %v, want error request_timeout", recs)
		}
		return nil
	})
}
