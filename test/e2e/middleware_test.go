package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMiddlewareChain(t *testing.T) {
	t.Parallel()
	up := newEcho(t, "u")
	cfg := fmt.Sprintf(`
logging: {access_log: false}
routes:
  - {id: api, path_prefix: /api, pool: p, middleware: api-chain}
  - {id: quiet, path_prefix: /quiet, pool: p}
middleware:
  - id: api-chain
    stages:
      - type: request_id
      - type: header_transform
        config: {add: {X-Proxy-Version: "1.0"}, remove: [X-Internal-Secret], response_add: {X-Served-By: keel}, response_remove: [X-Upstream-Secret]}
      - type: access_log
pools: [{id: p, endpoints: [{address: "%s"}]}]
`, up.addr) + fastShutdown
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)

	hdr := http.Header{"X-Internal-Secret": {"s3cret"}, "X-Request-Id": {"client-id-1"}}
	resp, b := do(t, c, "GET", p.url("/api/x"), "", hdr, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/x = %d %s", resp.StatusCode, b)
	}
	echo := decodeEcho(t, b)
	if got := echo.Header.Get("X-Request-Id"); got != "client-id-1" {
		t.Errorf("upstream X-Request-Id = %q, want the client's valid id", got)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "client-id-1" {
		t.Errorf("response X-Request-Id = %q, want client-id-1", got)
	}
	if echo.Header.Get("X-Proxy-Version") != "1.0" || echo.Header.Get("X-Internal-Secret") != "" {
		t.Errorf("upstream headers: X-Proxy-Version %q, X-Internal-Secret %q; want 1.0 and removed",
			echo.Header.Get("X-Proxy-Version"), echo.Header.Get("X-Internal-Secret"))
	}
	if resp.Header.Get("X-Served-By") != "keel" {
		t.Errorf("response X-Served-By = %q, want keel", resp.Header.Get("X-Served-By"))
	}
	// An invalid incoming id is replaced by a generated one.
	resp, b = do(t, c, "GET", p.url("/api/y"), "", http.Header{"X-Request-Id": {"bad id with spaces"}}, nil)
	if id := resp.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") || decodeEcho(t, b).Header.Get("X-Request-Id") != id {
		t.Errorf("generated id %q (upstream saw %q): want one valid id on both sides", id, decodeEcho(t, b).Header.Get("X-Request-Id"))
	}
	// A route without the chain forwards no id and is not logged
	// (logging.access_log false); the chained route is logged anyway.
	resp, b = do(t, c, "GET", p.url("/quiet/z"), "", nil, nil)
	if resp.Header.Get("X-Request-Id") != "" || decodeEcho(t, b).Header.Get("X-Request-Id") != "" {
		t.Errorf("route without request_id stage sent an id")
	}
	eventually(t, 5*time.Second, func() error {
		routes := map[string]int{}
		for _, rec := range p.accessLog() {
			routes[fmt.Sprint(rec["route"])]++
		}
		if routes["api"] != 2 || routes["quiet"] != 0 {
			return fmt.Errorf("access log routes %v, want api twice and quiet never", routes)
		}
		return nil
	})
}

// TestHeaderTransformOnProxyErrors: response transforms apply to answers
// the proxy generates, too.
func TestHeaderTransformOnProxyErrors(t *testing.T) {
	t.Parallel()
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p, middleware: m}]
middleware: [{id: m, stages: [{type: header_transform, config: {response_add: {X-Served-By: keel}}}]}]
pools: [{id: p, endpoints: [{address: "%s"}]}]
`, freeAddr(t)) + fastShutdown
	p := startProxy(t, cfg)
	resp, b := do(t, newClient(t, 10*time.Second), "GET", p.url("/x"), "", nil, nil)
	checkProxyError(t, resp, b, 502, "upstream_connect_failed")
	if resp.Header.Get("X-Served-By") != "keel" {
		t.Fatalf("X-Served-By on a proxy error = %q, want keel", resp.Header.Get("X-Served-By"))
	}
}
