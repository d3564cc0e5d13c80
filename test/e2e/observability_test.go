package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// accessFields are the access-log fields of SPEC section 9.
var accessFields = []string{"timestamp", "request_id", "method", "path", "host", "route", "pool", "endpoint",
	"status", "duration_ms", "upstream_duration_ms", "retries", "cache", "breaker_state", "canary_variant",
	"bytes_in", "bytes_out", "client_ip", "error"}

func logConfig(addr, logging string) string {
	return fmt.Sprintf(`routes:
  - {id: log-route, path_prefix: /log, pool: log-pool}
pools:
  - {id: log-pool, endpoints: [{address: %s}]}
%s%s`, addr, logging, fastShutdown)
}

func newHelloUpstream(t *testing.T) *upstream {
	t.Helper()
	return newUpstream(t, "hello", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello world!")
	})
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	const authSecret, cookieSecret = "SECRET-TOKEN-123", "COOKIE-SECRET-456"
	up := newHelloUpstream(t)
	p := startProxy(t, logConfig(up.addr, ""), "-log-level", "debug")
	c := newClient(t, 10*time.Second)

	hdr := http.Header{
		"Authorization": {"Bearer " + authSecret},
		"Cookie":        {"session=" + cookieSecret},
		"X-Request-Id":  {"e2e-log-1"},
	}
	resp, b := do(t, c, http.MethodPost, p.url("/log/x?token=abc"), "log.test", hdr, strings.NewReader("hello proxy"))
	if resp.StatusCode != 200 || string(b) != "hello world!" {
		t.Fatalf("POST /log/x = %d %q, want 200 %q", resp.StatusCode, b, "hello world!")
	}
	resp, b = do(t, c, http.MethodGet, p.url("/nowhere"), "log.test", http.Header{"X-Request-Id": {"e2e-log-2"}}, nil)
	checkProxyError(t, resp, b, 404, "no_route")

	tests := []struct {
		id   string
		want map[string]any
	}{
		{"e2e-log-1", map[string]any{"method": "POST", "path": "/log/x?token=abc", "host": "log.test",
			"route": "log-route", "pool": "log-pool", "endpoint": up.addr, "status": 200.0,
			"bytes_in": 11.0, "bytes_out": 12.0, "client_ip": "127.0.0.1", "error": "", "retries": 0.0}},
		{"e2e-log-2", map[string]any{"method": "GET", "path": "/nowhere", "route": "", "endpoint": "",
			"status": 404.0, "error": "no_route", "client_ip": "127.0.0.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			recs := p.accessByID(t, tc.id)
			if len(recs) != 1 {
				t.Fatalf("access-log lines with request_id %q = %d, want exactly 1", tc.id, len(recs))
			}
			rec := recs[0]
			for _, f := range accessFields {
				if _, ok := rec[f]; !ok {
					t.Errorf("access log has no %q field: %v", f, rec)
				}
			}
			for k, want := range tc.want {
				if got := rec[k]; got != want {
					t.Errorf("access log %s = %#v, want %#v", k, got, want)
				}
			}
			ts, _ := rec["timestamp"].(string)
			if when, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(when) > time.Minute || time.Since(when) < 0 {
				t.Errorf("timestamp = %q (%v), want RFC 3339 within the last minute", ts, err)
			}
			d, _ := rec["duration_ms"].(float64)
			ud, _ := rec["upstream_duration_ms"].(float64)
			if d < 0 || ud < 0 || ud > d {
				t.Errorf("duration_ms = %v, upstream_duration_ms = %v, want 0 <= upstream <= total", d, ud)
			}
		})
	}
	t.Run("one line per request", func(t *testing.T) {
		if n := len(p.accessLog()); n != 2 {
			t.Errorf("access-log lines = %d, want 2 (one per request):\n%s", n, p.stdout)
		}
	})
	t.Run("no secrets in any output", func(t *testing.T) {
		for _, secret := range []string{authSecret, cookieSecret} {
			if strings.Contains(p.stdout.String(), secret) || strings.Contains(p.stderr.String(), secret) {
				t.Errorf("output contains %q, want it never logged", secret)
			}
		}
	})
}

func TestAccessLogRedactQuery(t *testing.T) {
	t.Parallel()
	const secret = "QUERY-SECRET-789"
	up := newHelloUpstream(t)
	p := startProxy(t, logConfig(up.addr, "logging: {redact_query: true}\n"), "-log-level", "debug")
	c := newClient(t, 10*time.Second)
	resp, _ := do(t, c, http.MethodGet, p.url("/log/y?token="+secret+"&x=1"), "", http.Header{"X-Request-Id": {"e2e-redact"}}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET = %d, want 200", resp.StatusCode)
	}
	recs := p.accessByID(t, "e2e-redact")
	if len(recs) != 1 {
		t.Fatalf("access-log lines = %d, want 1", len(recs))
	}
	if path, _ := recs[0]["path"].(string); !strings.HasPrefix(path, "/log/y") || strings.Contains(path, secret) {
		t.Errorf("logged path = %q, want /log/y without the query", path)
	}
	if strings.Contains(p.stdout.String(), secret) || strings.Contains(p.stderr.String(), secret) {
		t.Errorf("output contains the query secret %q, want it redacted everywhere", secret)
	}
}

func TestAccessLogDisabled(t *testing.T) {
	t.Parallel()
	up := newHelloUpstream(t)
	p := startProxy(t, logConfig(up.addr, "logging: {access_log: false}\n"))
	c := newClient(t, 10*time.Second)
	for i := range 3 {
		resp, _ := do(t, c, http.MethodGet, p.url(fmt.Sprintf("/log/%d", i)), "", http.Header{"X-Request-Id": {"e2e-off"}}, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET = %d, want 200", resp.StatusCode)
		}
	}
	time.Sleep(500 * time.Millisecond) // several flush intervals
	if recs := p.accessLog(); len(recs) != 0 {
		t.Errorf("access-log lines = %d with access_log: false, want 0: %v", len(recs), recs)
	}
	if strings.Contains(p.stdout.String(), "e2e-off") {
		t.Errorf("stdout mentions the requests, want nothing with access_log: false:\n%s", p.stdout)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	u0, u1 := newEcho(t, "m0"), newEcho(t, "m1")
	cfg := fmt.Sprintf(`routes:
  - {id: r, path_prefix: /r, pool: p}
pools:
  - id: p
    balancer: round_robin
    endpoints: [{address: %s}, {address: %s}]
%s`, u0.addr, u1.addr, fastShutdown)
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)
	const n = 7
	for i := range n {
		resp, _ := do(t, c, http.MethodGet, p.url(fmt.Sprintf("/r/unique-e2e-path-%d", i)), "", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /r = %d, want 200", resp.StatusCode)
		}
	}
	resp, b := do(t, c, http.MethodGet, p.url("/not-routed"), "", nil, nil)
	checkProxyError(t, resp, b, 404, "no_route")

	var m []sample
	// Metrics are recorded as the request finishes, just after the client
	// has its response.
	eventually(t, 2*time.Second, func() error {
		m = p.metrics(t)
		if got := sumSamples(m, "proxy_requests_total", map[string]string{"route": "r", "pool": "p", "status": "200"}); got != n {
			return fmt.Errorf("proxy_requests_total{route=r,pool=p,status=200} = %v, want %d", got, n)
		}
		return nil
	})
	_, version := p.readyVersion(t)
	wantVersion := configVersion(t, cfg)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"proxy_request_duration_seconds_count", map[string]string{"route": "r", "pool": "p"}, n},
		{"proxy_pool_total_endpoints", map[string]string{"pool": "p"}, 2},
		{"proxy_pool_healthy_endpoints", map[string]string{"pool": "p"}, 2},
		{"proxy_config_version_info", map[string]string{"version": wantVersion}, 1},
		{"proxy_errors_total", map[string]string{"category": "no_route"}, 1},
	}
	for _, tc := range tests {
		got := findSamples(m, tc.name, tc.labels)
		if len(got) != 1 || got[0].value != tc.want {
			t.Errorf("%s%v = %v, want one series with %v", tc.name, tc.labels, got, tc.want)
		}
	}
	for _, ep := range []string{u0.addr, u1.addr} {
		// Round robin over 7 requests: 4+3 or 3+4.
		got := findSamples(m, "proxy_upstream_requests_total", map[string]string{"pool": "p", "endpoint": ep})
		if len(got) != 1 || got[0].value < 3 || got[0].value > 4 {
			t.Errorf("proxy_upstream_requests_total{pool=p,endpoint=%s} = %v, want one series with 3 or 4", ep, got)
		}
	}
	if got := sumSamples(m, "proxy_upstream_requests_total", map[string]string{"pool": "p"}); got != n {
		t.Errorf("proxy_upstream_requests_total{pool=p} sums to %v, want %d", got, n)
	}
	if version != wantVersion {
		t.Errorf("/ready version = %q, want %q (proxy -validate)", version, wantVersion)
	}
	if got := findSamples(m, "proxy_config_version_info", nil); len(got) != 1 {
		t.Errorf("proxy_config_version_info has %d series, want 1: %v", len(got), got)
	}
	if raw := fmt.Sprint(m); strings.Contains(raw, "unique-e2e-path") {
		t.Errorf("metrics contain request data (the request path), want labels from config ids only")
	}

	t.Run("after reload one version series", func(t *testing.T) {
		next := strings.Replace(cfg, "routes:\n", "routes:\n  - {id: r2, path: /r2, pool: p}\n", 1)
		nextVersion := configVersion(t, next)
		p.writeConfig(t, next)
		p.signal(t, syscall.SIGHUP)
		eventually(t, 3*time.Second, func() error {
			if _, v := p.readyVersion(t); v != nextVersion {
				return fmt.Errorf("/ready version = %q, want %q", v, nextVersion)
			}
			return nil
		})
		got := findSamples(p.metrics(t), "proxy_config_version_info", nil)
		if len(got) != 1 || got[0].labels["version"] != nextVersion || got[0].value != 1 {
			t.Errorf("proxy_config_version_info = %v, want exactly {version=%q} 1", got, nextVersion)
		}
	})
}

// TestMetricsConfig checks metrics.path and metrics.enabled on the admin
// listener.
func TestMetricsConfig(t *testing.T) {
	t.Parallel()
	up := newHelloUpstream(t)
	tests := []struct {
		name    string
		metrics string
		want    map[string]int // admin path -> status
	}{
		{"custom path", "metrics: {path: /custom-metrics}\n", map[string]int{"/custom-metrics": 200}},
		{"disabled", "metrics: {enabled: false}\n", map[string]int{"/metrics": 404}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, logConfig(up.addr, tc.metrics))
			c := newClient(t, 10*time.Second)
			if resp, _ := do(t, c, http.MethodGet, p.url("/log/1"), "", nil, nil); resp.StatusCode != 200 {
				t.Fatalf("GET /log/1 = %d, want 200", resp.StatusCode)
			}
			for path, want := range tc.want {
				resp, b := do(t, c, http.MethodGet, "http://"+p.admin+path, "", nil, nil)
				if resp.StatusCode != want {
					t.Errorf("admin GET %s = %d, want %d", path, resp.StatusCode, want)
				}
				if want == 200 && !strings.Contains(string(b), "proxy_requests_total") {
					t.Errorf("admin GET %s has no proxy_requests_total, want the metrics", path)
				}
				if want != 200 && strings.Contains(string(b), "proxy_requests_total") {
					t.Errorf("admin GET %s serves metrics, want none", path)
				}
			}
		})
	}
}
