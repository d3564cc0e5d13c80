package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/snapshot"
)

func TestAdminEndpoints(t *testing.T) {
	var h snapshot.Holder
	var draining atomic.Bool
	m := obs.NewMetrics()
	m.SetConfigVersion("v1")
	srv := New(Options{Snapshots: &h, Metrics: m, Draining: &draining, ServeMetrics: true})

	get := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}

	if code, _ := get("GET", "/ready"); code != 503 {
		t.Errorf("/ready with no snapshot = %d, want 503", code)
	}
	h.Swap(&snapshot.Snapshot{Version: "abc"})
	tests := []struct {
		method, path string
		wantCode     int
		wantBody     string
	}{
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/ready", 200, `"version": "abc"`},
		{"GET", "/metrics", 200, `proxy_config_version_info{version="v1"} 1`},
		{"POST", "/healthz", 405, ""},
		{"GET", "/nope", 404, ""},
	}
	for _, tt := range tests {
		code, body := get(tt.method, tt.path)
		if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
			t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, code, body, tt.wantCode, tt.wantBody)
		}
	}

	draining.Store(true)
	if code, body := get("GET", "/ready"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/ready while draining = %d %q, want 503 draining", code, body)
	}
}

func TestMetricsHandlerFollowsSnapshot(t *testing.T) {
	var h snapshot.Holder
	m := obs.NewMetrics()
	mh := MetricsHandler(&h, m, http.NotFoundHandler())
	code := func(path string) int {
		rec := httptest.NewRecorder()
		mh.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code
	}
	if code("/metrics") != 200 {
		t.Errorf("default /metrics != 200")
	}
	h.Swap(&snapshot.Snapshot{MetricsPath: "/internal/metrics"})
	if code("/metrics") != 404 || code("/internal/metrics") != 200 {
		t.Errorf("metrics.path not followed: /metrics=%d /internal/metrics=%d", code("/metrics"), code("/internal/metrics"))
	}
	h.Swap(&snapshot.Snapshot{MetricsDisabled: true})
	if code("/metrics") != 404 {
		t.Errorf("metrics.enabled=false still serves /metrics")
	}
}

func TestMetricsToken(t *testing.T) {
	var h snapshot.Holder
	h.Swap(&snapshot.Snapshot{MetricsToken: "scrape"})
	mh := MetricsHandler(&h, obs.NewMetrics(), http.NotFoundHandler())
	tests := []struct {
		auth string
		want int
	}{
		{"", 401},
		{"Bearer wrong", 401},
		{"Bearer scrape", 200},
		{"bearer scrape", 200}, // the scheme is case-insensitive
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		rec := httptest.NewRecorder()
		mh.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("Authorization %q: %d, want %d", tt.auth, rec.Code, tt.want)
		}
	}
}
