package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

type getResult struct {
	code int
	body string
	err  error
}

// startGets starts n concurrent GETs (each on its own connection) and
// returns where their results arrive.
func startGets(c *http.Client, url string, n int) <-chan getResult {
	out := make(chan getResult, n)
	for range n {
		go func() {
			resp, err := c.Get(url)
			if err != nil {
				out <- getResult{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			out <- getResult{code: resp.StatusCode, body: string(b), err: err}
		}()
	}
	return out
}

// waitStarted waits for n signals on ch.
func waitStarted(t *testing.T, ch <-chan struct{}, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("upstream got %d of %d requests", i, n)
		}
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	const n = 5
	started := make(chan struct{}, n)
	up := newUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-time.After(time.Second):
			io.WriteString(w, "done")
		case <-r.Context().Done():
		}
	})
	p := startProxy(t, oneRoute(up.addr, "shutdown: {drain_delay: 300ms, grace_period: 5s}\n"))
	c := newClient(t, 10*time.Second)
	results := startGets(c, p.url("/slow"), n)
	waitStarted(t, started, n)

	t0 := time.Now()
	p.signal(t, syscall.SIGTERM)
	eventually(t, 250*time.Millisecond, func() error {
		resp, err := p.client.Get("http://" + p.admin + "/ready")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"draining"`) {
			return fmt.Errorf("GET /ready = %d %q, want 503 draining", resp.StatusCode, b)
		}
		return nil
	})

	// After the drain delay, while the 5 requests are still running, the
	// data listener must refuse new connections.
	time.Sleep(time.Until(t0.Add(650 * time.Millisecond)))
	if p.exited() {
		t.Fatalf("proxy exited %v after SIGTERM with 5 requests in flight, want it to wait for them", time.Since(t0))
	}
	if conn, err := net.DialTimeout("tcp", p.data, time.Second); err == nil {
		conn.Close()
		t.Errorf("new connection accepted %v after SIGTERM (drain_delay 300ms), want refused", time.Since(t0))
	}

	for range n {
		r := <-results
		if r.err != nil || r.code != 200 || r.body != "done" {
			t.Errorf("in-flight request = %d %q (err %v), want 200 %q", r.code, r.body, r.err, "done")
		}
	}
	code, ok := p.wait(5 * time.Second)
	if !ok {
		t.Fatalf("proxy still running %v after SIGTERM, want exited", time.Since(t0))
	}
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

func TestShutdownGraceExpires(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	up := newUpstream(t, "stuck", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-time.After(30 * time.Second):
			io.WriteString(w, "too late")
		case <-r.Context().Done():
		}
	})
	const grace = time.Second
	p := startProxy(t, oneRoute(up.addr, "shutdown: {drain_delay: 0s, grace_period: 1s}\n"))
	c := newClient(t, 20*time.Second)
	results := startGets(c, p.url("/stuck"), 1)
	waitStarted(t, started, 1)

	t0 := time.Now()
	p.signal(t, syscall.SIGTERM)
	code, ok := p.wait(grace + time.Second)
	if !ok {
		t.Fatalf("proxy still running %v after SIGTERM (grace_period %v), want exited within grace+1s", time.Since(t0), grace)
	}
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	if took := time.Since(t0); took < grace-100*time.Millisecond {
		t.Errorf("proxy exited %v after SIGTERM, want it to give the request its %v grace period", took, grace)
	}
	select {
	case r := <-results:
		if r.err == nil && r.code == 200 {
			t.Errorf("request longer than the grace period = 200 %q, want it cut", r.body)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("client still waiting 5s after the proxy exited, want its connection closed")
	}
}
