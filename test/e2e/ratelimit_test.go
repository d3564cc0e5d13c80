package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestRateLimits: a policy rate_limit keyed by a header admits the burst
// per key and then answers 429 rate_limited with Retry-After; a chain's
// rate_limit stage (policy_ref) limits the routes using it, each route on
// its own with key "route".
func TestRateLimits(t *testing.T) {
	t.Parallel()
	up := newEcho(t, "u")
	cfg := fmt.Sprintf(`
routes:
  - {id: perkey, path_prefix: /perkey, pool: p, policy: byuser}
  - {id: a, path_prefix: /a, pool: p, middleware: limited}
  - {id: b, path_prefix: /b, pool: p, middleware: limited}
policies:
  - {id: byuser, rate_limit: {requests_per_second: 0.5, burst: 3, key: "header:X-User"}}
  - {id: perroute, rate_limit: {requests_per_second: 0.5, burst: 2, key: route}}
middleware: [{id: limited, stages: [{type: rate_limit, policy_ref: perroute}]}]
pools: [{id: p, endpoints: [{address: "%s"}]}]
`, up.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	status := func(path, user string) (*http.Response, []byte) {
		hdr := http.Header{}
		if user != "" {
			hdr.Set("X-User", user)
		}
		return do(t, c, "GET", p.url(path), "", hdr, nil)
	}
	for i := range 3 {
		if resp, _ := status("/perkey/x", "alice"); resp.StatusCode != 200 {
			t.Fatalf("alice request %d = %d, want 200 within the burst of 3", i, resp.StatusCode)
		}
	}
	resp, b := status("/perkey/x", "alice")
	checkProxyError(t, resp, b, 429, "rate_limited")
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After = %q, want 1-2 s at 0.5 rps", resp.Header.Get("Retry-After"))
	}
	if resp, _ := status("/perkey/x", "bob"); resp.StatusCode != 200 {
		t.Fatalf("bob = %d: keys must not share a bucket", resp.StatusCode)
	}
	// The chain's stage: each route has its own bucket of 2.
	for _, route := range []string{"/a/x", "/b/x"} {
		for i := range 2 {
			if resp, _ := status(route, ""); resp.StatusCode != 200 {
				t.Fatalf("%s request %d = %d, want 200", route, i, resp.StatusCode)
			}
		}
		resp, b := status(route, "")
		checkProxyError(t, resp, b, 429, "rate_limited")
	}
	m := p.metrics(t)
	if got := sumSamples(m, "proxy_errors_total", map[string]string{"category": "rate_limited"}); got != 3 {
		t.Fatalf("proxy_errors_total{category=rate_limited} = %v, want 3", got)
	}
}

// startRedis runs a throwaway redis-server on a free loopback port for the
// test (make test installs it).
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("this test needs redis-server: run scripts/test-deps.sh (make test does): %v", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	})
	return addr
}

// TestGlobalRateLimitSharedByProxies: two proxies with the same global
// limit share one bucket per key through Redis.
func TestGlobalRateLimitSharedByProxies(t *testing.T) {
	t.Parallel()
	redis := startRedis(t)
	up := newEcho(t, "u")
	cfg := fmt.Sprintf(`
redis: {address: "%s"}
routes: [{id: r, path_prefix: /, pool: p, policy: g}]
policies: [{id: g, rate_limit: {requests_per_second: 0.1, burst: 4, key: "header:X-User", scope: global}}]
pools: [{id: p, endpoints: [{address: "%s"}]}]
`, redis, up.addr) + fastShutdown
	p1, p2 := startProxy(t, cfg), startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	ok, limited := 0, 0
	for i := range 8 {
		p := p1
		if i%2 == 1 {
			p = p2
		}
		resp, _ := do(t, c, "GET", p.url("/x"), "", http.Header{"X-User": {"carol"}}, nil)
		switch resp.StatusCode {
		case 200:
			ok++
		case 429:
			limited++
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if ok != 4 || limited != 4 {
		t.Fatalf("8 requests over two proxies sharing a burst of 4: %d admitted, %d limited; want 4 and 4", ok, limited)
	}
}
