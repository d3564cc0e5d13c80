package proxy_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keelproxy/keel/internal/compile"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/server/h1"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/tracing"
	"github.com/keelproxy/keel/internal/upstream"
)

// BenchmarkProxySmallGET measures one keep-alive GET with a 16-byte body
// through the whole data plane: our h1 server, Handler, router, Forwarder,
// the endpoint transport, and back. The client and upstream run in the
// same process, so ns/op is the sum of all three; allocs/op is what to
// watch. "resilience" turns on everything of SPEC section 7 that costs on
// the request path (breaker, retries with budget and per-try timeout,
// active and passive health, outlier detection), for the bar of
// staying within 10% of "core".
func BenchmarkProxySmallGET(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("0123456789abcdef"))
	}))
	defer up.Close()
	for _, tc := range []struct{ name, cfg string }{
		{"core", `
routes: [{id: r, path_prefix: /, pool: p}]
pools: [{id: p, endpoints: [{address: "@UP@"}]}]
`},
		{"resilience", `
routes: [{id: r, path_prefix: /, pool: p, policy: pol}]
policies:
  - id: pol
    retries: {max_attempts: 2, per_try_timeout: 1s, retry_on: [connect_failure, reset, "503"]}
pools:
  - id: p
    endpoints: [{address: "@UP@"}]
    health: {active: {interval: 1s, path: /}, passive: {consecutive_failures: 5}}
    circuit_breaker: {min_requests: 20}
    outlier_detection: {consecutive_failures: 5}
`},
	} {
		b.Run(tc.name, func(b *testing.B) { benchmarkSmallGET(b, tc.cfg, up.Listener.Addr().String()) })
	}
}

func benchmarkSmallGET(b *testing.B, cfgYAML, upAddr string) {
	url := serveBench(b, strings.ReplaceAll(cfgYAML, "@UP@", upAddr), nil)
	req, _ := http.NewRequest("GET", url+"/x", nil)
	runGETs(b, req)
}

// serveBench compiles the YAML config doc and serves it through our h1
// server and a Handler (tracing with tr; nil traces nothing) until the
// benchmark ends. It returns the proxy's base URL.
func serveBench(b *testing.B, doc string, tr *tracing.Provider) string {
	b.Helper()
	cfg, err := config.Parse([]byte(doc), config.FormatYAML)
	if err != nil {
		b.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	st := upstream.NewState(nil)
	b.Cleanup(st.Close)
	snap, err := compile.Snapshot(cfg, compile.Deps{State: st, Tracing: tr})
	if err != nil {
		b.Fatal(err)
	}
	st.Commit(snap.PoolList)
	var h snapshot.Holder
	h.Swap(snap)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &h1.Server{Handler: proxy.NewHandler(&h, proxy.Options{Tracing: tr})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// runGETs sends req b.N times over keep-alive connections and fails on any
// status but 200.
func runGETs(b *testing.B, req *http.Request) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
