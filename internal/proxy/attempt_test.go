package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// counting starts an upstream running h and returns its address and a
// counter of the requests it saw.
func counting(t *testing.T, h http.HandlerFunc) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	addr := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	})
	return addr, &n
}

func poolOf(addrs ...string) string {
	var b strings.Builder
	b.WriteString("[")
	for i, a := range addrs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{address: %q}", a)
	}
	b.WriteString("]")
	return b.String()
}

func TestRetries(t *testing.T) {
	bad, badHits := counting(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(503)
	})
	good, _ := counting(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})
	cfg := `
routes:
  - {id: r, path_prefix: /, pool: p, policy: retry}
policies:
  - {id: retry, retries: {max_attempts: 2, retry_on: ["503"], budget_burst: 100, backoff: {base: 1ms, max: 1ms}}}
pools:
  - {id: p, balancer: round_robin, endpoints: ` + poolOf(bad, good) + `}
`
	url := newProxy(t, cfg, "")
	tests := []struct {
		method, body string
		want         int
		wantBody     string
	}{
		{"GET", "", 200, "GET "},
		{"PUT", "payload", 200, "PUT payload"},        // idempotent, replayed
		{"DELETE", "", 200, "DELETE "},                // idempotent
		{"POST", "x", 503, ""},                        // not idempotent: never retried
		{"PUT", strings.Repeat("b", 70<<10), 503, ""}, // over 64 KiB: not replayable
	}
	for _, tt := range tests {
		// Round robin alternates; two requests make sure one starts on
		// the bad endpoint.
		for range 2 {
			req, _ := http.NewRequest(tt.method, url+"/x", strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 503 && tt.want == 503 {
				break
			}
			if resp.StatusCode != 200 || string(b) != tt.wantBody {
				if tt.want == 200 {
					t.Fatalf("%s = %d %q, want 200 %q", tt.method, resp.StatusCode, b, tt.wantBody)
				}
			}
		}
	}
	if badHits.Load() == 0 {
		t.Fatal("the failing endpoint was never tried")
	}
}

func TestRetryBudgetRefuses(t *testing.T) {
	bad, badHits := counting(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	cfg := `
routes: [{id: r, path_prefix: /, pool: p, policy: retry}]
policies: [{id: retry, retries: {max_attempts: 5, retry_on: ["503"], budget_percent: 0, budget_burst: 3, backoff: {base: 1ms, max: 1ms}}}]
pools: [{id: p, endpoints: ` + poolOf(bad) + `}]
`
	url := newProxy(t, cfg, "")
	for range 10 {
		resp, err := http.Get(url + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("status %d, want the upstream's 503", resp.StatusCode)
		}
	}
	// 10 first attempts plus at most the burst of 3 retries.
	if got := badHits.Load(); got != 13 {
		t.Fatalf("upstream saw %d requests, want 10 + 3 (burst) retries", got)
	}
}

func TestHedgingFirstResponseWins(t *testing.T) {
	var slowCancelled atomic.Int64
	slow, _ := counting(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			slowCancelled.Add(1)
		case <-time.After(5 * time.Second):
			io.WriteString(w, "slow")
		}
	})
	fast, fastHits := counting(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	cfg := `
routes: [{id: r, path_prefix: /, pool: p, policy: hedge}]
policies: [{id: hedge, hedging: {delay: 30ms, max_hedges: 1}}]
pools: [{id: p, balancer: round_robin, endpoints: ` + poolOf(slow, fast) + `}]
`
	url := newProxy(t, cfg, "")
	for i := range 4 {
		start := time.Now()
		resp, err := http.Get(url + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "fast" {
			t.Fatalf("GET #%d = %d %q, want the fast endpoint's answer", i, resp.StatusCode, b)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("GET #%d took %v: the hedge did not win", i, d)
		}
	}
	if fastHits.Load() < 4 {
		t.Fatalf("fast endpoint saw %d requests, want >= 4", fastHits.Load())
	}
	// Every slow attempt lost and was cancelled, not left running.
	deadline := time.Now().Add(3 * time.Second)
	for slowCancelled.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if slowCancelled.Load() < 2 {
		t.Fatalf("%d losing attempts saw their cancellation, want 2", slowCancelled.Load())
	}
}

func TestBreakerOpensWithoutContactingUpstream(t *testing.T) {
	bad, badHits := counting(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	cfg := `
routes: [{id: r, path_prefix: /, pool: p}]
pools:
  - id: p
    endpoints: ` + poolOf(bad) + `
    circuit_breaker: {min_requests: 4, error_threshold_percent: 50, open_duration: 1h}
`
	url := newProxy(t, cfg, "")
	for range 4 {
		resp, _ := http.Get(url + "/x")
		resp.Body.Close()
	}
	resp, err := http.Get(url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Proxy-Error") != "circuit_open" || resp.Header.Get("X-Proxy-Circuit-Open") != "p" {
		t.Fatalf("after 4 failures: %d %q %q, want 503 circuit_open for pool p", resp.StatusCode,
			resp.Header.Get("X-Proxy-Error"), resp.Header.Get("X-Proxy-Circuit-Open"))
	}
	if badHits.Load() != 4 {
		t.Fatalf("upstream saw %d requests, want 4 (none once open)", badHits.Load())
	}
}
