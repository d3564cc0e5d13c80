package obs

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// series returns the series of the metric family name as "k=v,k=v" (labels
// sorted by name) -> value; histograms report their sample count.
func series(t *testing.T, m *Metrics, name string) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather() error = %v", err)
	}
	got := make(map[string]float64)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got[labelKey(mt.GetLabel())] = value(mt)
		}
	}
	return got
}

func labelKey(lps []*dto.LabelPair) string {
	parts := make([]string, 0, len(lps))
	for _, lp := range lps {
		parts = append(parts, lp.GetName()+"="+lp.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func value(mt *dto.Metric) float64 {
	switch {
	case mt.Counter != nil:
		return mt.Counter.GetValue()
	case mt.Gauge != nil:
		return mt.Gauge.GetValue()
	case mt.Histogram != nil:
		return float64(mt.Histogram.GetSampleCount())
	}
	return -1
}

func equalSeries(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if gv, ok := got[k]; !ok || gv != v {
			return false
		}
	}
	return true
}

// TestExposition checks that every instrument Metrics owns is served under
// its SPEC section 9 name with exactly the SPEC labels.
func TestExposition(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	m.ForRoute("r1", "p1").Observe("", 200, 20*time.Millisecond, 10, 2000)
	m.ForEndpoint("p1", "10.0.0.1:80").Observe(5 * time.Millisecond)
	m.SetPoolEndpoints("p1", 1, 2)
	m.SetConfigVersion("v1")
	m.ConfigApplied("accepted")
	m.LogDropped(3)
	m.ProxyError("no_route")

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics status = %d, want 200", resp.StatusCode)
	}
	text := string(body)
	for _, want := range []string{
		`proxy_requests_total{pool="p1",route="r1",status="200"} 1`,
		`proxy_request_duration_seconds_count{pool="p1",route="r1"} 1`,
		`proxy_request_size_bytes_count{route="r1"} 1`,
		`proxy_response_size_bytes_count{route="r1"} 1`,
		`proxy_upstream_requests_total{endpoint="10.0.0.1:80",pool="p1"} 1`,
		`proxy_upstream_duration_seconds_count{endpoint="10.0.0.1:80",pool="p1"} 1`,
		`proxy_pool_healthy_endpoints{pool="p1"} 1`,
		`proxy_pool_total_endpoints{pool="p1"} 2`,
		`proxy_config_version_info{version="v1"} 1`,
		`proxy_config_applies_total{result="accepted"} 1`,
		`proxy_access_log_dropped_total 3`,
		`proxy_errors_total{category="no_route"} 1`,
		`go_goroutines `,
		`# TYPE proxy_request_duration_seconds histogram`,
		`# TYPE proxy_upstream_duration_seconds histogram`,
		`# TYPE proxy_request_size_bytes histogram`,
		`# TYPE proxy_response_size_bytes histogram`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

func TestRouteMetricsObserve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc         string
		pool         string
		status       int
		wantRequests map[string]float64
		wantDuration map[string]float64
	}{
		{
			desc: "default pool", pool: "", status: 503,
			wantRequests: map[string]float64{"pool=stable,route=r,status=503": 1},
			wantDuration: map[string]float64{"pool=stable,route=r": 1},
		},
		{
			desc: "default pool named", pool: "stable", status: 200,
			wantRequests: map[string]float64{"pool=stable,route=r,status=200": 1},
			wantDuration: map[string]float64{"pool=stable,route=r": 1},
		},
		{
			desc: "canary pool", pool: "canary", status: 200,
			wantRequests: map[string]float64{"pool=canary,route=r,status=200": 1},
			// ForRoute resolves the default pool's histogram up front,
			// so it is exported with no samples.
			wantDuration: map[string]float64{"pool=canary,route=r": 1, "pool=stable,route=r": 0},
		},
		{
			desc: "status outside 100..599", pool: "", status: 0,
			wantRequests: map[string]float64{"pool=stable,route=r,status=0": 1},
			wantDuration: map[string]float64{"pool=stable,route=r": 1},
		},
		{
			desc: "status 599", pool: "", status: 599,
			wantRequests: map[string]float64{"pool=stable,route=r,status=599": 1},
			wantDuration: map[string]float64{"pool=stable,route=r": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			m := NewMetrics()
			rm := m.ForRoute("r", "stable")
			rm.Observe(tt.pool, tt.status, time.Millisecond, 1, 1)
			if got := series(t, m, "proxy_requests_total"); !equalSeries(got, tt.wantRequests) {
				t.Errorf("proxy_requests_total = %v, want %v", got, tt.wantRequests)
			}
			if got := series(t, m, "proxy_request_duration_seconds"); !equalSeries(got, tt.wantDuration) {
				t.Errorf("proxy_request_duration_seconds = %v, want %v", got, tt.wantDuration)
			}
			wantSize := map[string]float64{"route=r": 1}
			if got := series(t, m, "proxy_request_size_bytes"); !equalSeries(got, wantSize) {
				t.Errorf("proxy_request_size_bytes = %v, want %v", got, wantSize)
			}
		})
	}
}

// TestRouteMetricsConcurrent races the lazy per-status counter resolution;
// no increment may be lost to it.
func TestRouteMetricsConcurrent(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	rm := m.ForRoute("r", "p")
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range each {
				rm.Observe("", 200+i%2, time.Millisecond, 0, 0)
			}
		})
	}
	wg.Wait()
	want := map[string]float64{
		"pool=p,route=r,status=200": workers * each / 2,
		"pool=p,route=r,status=201": workers * each / 2,
	}
	if got := series(t, m, "proxy_requests_total"); !equalSeries(got, want) {
		t.Errorf("proxy_requests_total = %v, want %v", got, want)
	}
}

func TestForEndpointCap(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	const extra = 3
	for i := range MaxEndpointsPerPool + extra {
		m.ForEndpoint("big", fmt.Sprintf("10.0.0.%d:80", i)).Observe(time.Millisecond)
	}
	m.ForEndpoint("small", "10.9.9.9:80").Observe(time.Millisecond)

	got := series(t, m, "proxy_upstream_requests_total")
	if n, want := len(got), MaxEndpointsPerPool+1+1; n != want {
		t.Errorf("len(proxy_upstream_requests_total) = %d, want %d (cap + other + small pool)", n, want)
	}
	if v, want := got["endpoint=other,pool=big"], float64(extra); v != want {
		t.Errorf(`upstream_requests{pool="big",endpoint="other"} = %v, want %v`, v, want)
	}
	if v, want := got["endpoint=10.0.0.0:80,pool=big"], 1.0; v != want {
		t.Errorf(`upstream_requests{pool="big",endpoint="10.0.0.0:80"} = %v, want %v`, v, want)
	}
	if v, want := got["endpoint=10.9.9.9:80,pool=small"], 1.0; v != want {
		t.Errorf("the cap of one pool must not affect another: small = %v, want %v", v, want)
	}
	if a, b := m.ForEndpoint("big", "10.0.0.1:80"), m.ForEndpoint("big", "10.0.0.1:80"); a != b {
		t.Errorf("ForEndpoint returned %p then %p for the same pair, want one handle", a, b)
	}
}

func TestForgetPool(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	for _, pool := range []string{"gone", "kept"} {
		m.ForEndpoint(pool, "10.0.0.1:80").Observe(time.Millisecond)
		m.SetPoolEndpoints(pool, 1, 1)
		m.ForRoute("r-"+pool, pool).Observe("", 200, time.Millisecond, 0, 0)
	}
	m.ForRoute("r-kept", "kept").Observe("gone", 200, time.Millisecond, 0, 0) // canary traffic to "gone"

	m.ForgetPool("gone")

	for _, name := range []string{
		"proxy_upstream_requests_total", "proxy_upstream_duration_seconds",
		"proxy_pool_healthy_endpoints", "proxy_pool_total_endpoints",
		"proxy_requests_total", "proxy_request_duration_seconds",
	} {
		got := series(t, m, name)
		if len(got) == 0 {
			t.Errorf("%s: no series left, want those of pool kept", name)
		}
		for k := range got {
			if strings.Contains(k, "pool=gone") {
				t.Errorf("%s still has series %s after ForgetPool", name, k)
			}
		}
	}

	// The label budget starts afresh: the forgotten handle is not reused.
	m.ForEndpoint("gone", "10.0.0.2:80").Observe(time.Millisecond)
	want := map[string]float64{"endpoint=10.0.0.1:80,pool=kept": 1, "endpoint=10.0.0.2:80,pool=gone": 1}
	if got := series(t, m, "proxy_upstream_requests_total"); !equalSeries(got, want) {
		t.Errorf("after re-adding: proxy_upstream_requests_total = %v, want %v", got, want)
	}
}

func TestForgetRoute(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	m.ForRoute("gone", "p").Observe("", 200, time.Millisecond, 1, 1)
	m.ForRoute("gone", "p").Observe("canary", 500, time.Millisecond, 1, 1)
	m.ForRoute("kept", "p").Observe("", 200, time.Millisecond, 1, 1)

	m.ForgetRoute("gone")

	for _, name := range []string{
		"proxy_requests_total", "proxy_request_duration_seconds",
		"proxy_request_size_bytes", "proxy_response_size_bytes",
	} {
		got := series(t, m, name)
		if len(got) != 1 {
			t.Errorf("%s = %v, want only the series of route kept", name, got)
		}
		for k := range got {
			if !strings.Contains(k, "route=kept") {
				t.Errorf("%s still has series %s after ForgetRoute", name, k)
			}
		}
	}
}

func TestSetConfigVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		versions []string
		want     map[string]float64
	}{
		{"one", []string{"a"}, map[string]float64{"version=a": 1}},
		{"replace", []string{"a", "b"}, map[string]float64{"version=b": 1}},
		{"same twice", []string{"a", "a"}, map[string]float64{"version=a": 1}},
		{"back and forth", []string{"a", "b", "a"}, map[string]float64{"version=a": 1}},
		{"empty then real", []string{"", "b"}, map[string]float64{"version=b": 1}},
		{"real then empty", []string{"a", ""}, map[string]float64{"version=": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			m := NewMetrics()
			for _, v := range tt.versions {
				m.SetConfigVersion(v)
			}
			if got := series(t, m, "proxy_config_version_info"); !equalSeries(got, tt.want) {
				t.Errorf("after SetConfigVersion(%q...): proxy_config_version_info = %v, want %v", tt.versions, got, tt.want)
			}
		})
	}
}

func TestCounters(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	m.ConfigApplied("accepted")
	m.ConfigApplied("accepted")
	m.ConfigApplied("rejected")
	m.LogDropped(2)
	m.LogDropped(5)
	m.ProxyError("upstream_timeout")

	tests := []struct {
		name string
		want map[string]float64
	}{
		{"proxy_config_applies_total", map[string]float64{"result=accepted": 2, "result=rejected": 1}},
		{"proxy_access_log_dropped_total", map[string]float64{"": 7}},
		{"proxy_errors_total", map[string]float64{"category=upstream_timeout": 1}},
	}
	for _, tt := range tests {
		if got := series(t, m, tt.name); !equalSeries(got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestNilMetrics checks that a nil *Metrics, and the nil handles it hands
// out, accept every call.
func TestNilMetrics(t *testing.T) {
	t.Parallel()
	var m *Metrics
	if got := m.Registry(); got != nil {
		t.Errorf("nil Metrics: Registry() = %v, want nil", got)
	}
	rm := m.ForRoute("r", "p")
	if rm != nil {
		t.Errorf("nil Metrics: ForRoute() = %v, want nil", rm)
	}
	rm.Observe("", 200, time.Second, 1, 1)
	(&RouteMetrics{}).Observe("x", 200, time.Second, 1, 1)
	em := m.ForEndpoint("p", "a:1")
	if em != nil {
		t.Errorf("nil Metrics: ForEndpoint() = %v, want nil", em)
	}
	em.Observe(time.Second)
	m.ForgetPool("p")
	m.ForgetRoute("r")
	m.SetPoolEndpoints("p", 1, 1)
	m.SetConfigVersion("v")
	m.ConfigApplied("accepted")
	m.LogDropped(1)
	m.ProxyError("no_route")

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics: Handler status = %d, want 404", rec.Code)
	}
}

func BenchmarkRouteMetricsObserve(b *testing.B) {
	rm := NewMetrics().ForRoute("r", "p")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rm.Observe("", 200, 3*time.Millisecond, 512, 4096)
		}
	})
}
