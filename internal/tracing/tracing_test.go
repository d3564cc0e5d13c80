package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"

	"github.com/keelproxy/keel/internal/tracing"
)

// TestMain fails the package when a goroutine outlives its test: every
// Provider a test builds is shut down, and Shutdown must stop the batch
// processor and the exporter's connections.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// categoryError is how the proxy is expected to hand its error category
// to EndAttempt.
type categoryError string

func (e categoryError) Error() string     { return "upstream: " + string(e) }
func (e categoryError) ErrorType() string { return string(e) }

// TestExportRequestTree produces the spans of one proxied request the
// way the data plane will (server span, route match, a middleware stage,
// upstream selection, breaker, a failed attempt and a successful retry),
// exports them to an OTLP/HTTP receiver and checks the tree it receives.
func TestExportRequestTree(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	p := newProvider(t, rc, tracing.Options{SampleRatio: 1, NodeID: "node-7"})

	r := httptest.NewRequest(http.MethodGet, "http://api.example.com:8080/v1/users?token=secret", nil)
	ctx, srv := p.StartServer(r.Context(), r)

	_, match := p.StartInternal(ctx, tracing.SpanRouteMatch)
	match.End()
	tracing.SetRoute(srv, "users", "backend")

	mctx, mw := p.StartInternal(ctx, tracing.StageName("request_id"))
	_, sel := p.StartInternal(mctx, tracing.SpanUpstreamSelect, tracing.AttrPool.String("backend"))
	sel.End()
	_, br := p.StartInternal(mctx, tracing.SpanBreaker, tracing.AttrBreakerState.String("closed"))
	br.End()

	actx, a1 := p.StartAttempt(mctx, "10.0.0.1:8000", 1, false)
	h1 := http.Header{}
	p.Inject(actx, h1)
	tracing.EndAttempt(a1, 0, fmt.Errorf("dial 10.0.0.1:8000: %w", categoryError("connect_failed")))

	actx, a2 := p.StartAttempt(mctx, "10.0.0.2:8000", 2, false)
	h2 := http.Header{}
	p.Inject(actx, h2)
	tracing.EndAttempt(a2, 200, nil)
	mw.End()
	tracing.EndServer(srv, 200, "")

	shutdown(t, p)

	spans := rc.Spans()
	if len(spans) != 7 {
		t.Fatalf("received %d spans, want 7: %v", len(spans), names(spans))
	}
	traceID := hexID(spans[0].TraceId)
	for _, s := range spans {
		if got := hexID(s.TraceId); got != traceID {
			t.Errorf("span %q trace id = %s, want %s (one trace)", s.Name, got, traceID)
		}
	}
	var attempts []*tracepb.Span
	var others []*tracepb.Span
	for _, s := range spans {
		if s.Name == tracing.SpanAttempt {
			attempts = append(attempts, s)
		} else {
			others = append(others, s)
		}
	}
	if len(attempts) != 2 {
		t.Fatalf("received %d attempt spans, want 2", len(attempts))
	}
	slices.SortFunc(attempts, func(a, b *tracepb.Span) int {
		return int(attrMap(a.Attributes)["keel.attempt"].(int64) - attrMap(b.Attributes)["keel.attempt"].(int64))
	})
	m := byName(t, others)

	root := m["proxy GET users"]
	if root == nil {
		t.Fatalf("no span named %q; got %v", "proxy GET users", names(spans))
	}
	middleware := m["middleware request_id"]
	tests := []struct {
		span   *tracepb.Span
		name   string
		parent *tracepb.Span
		kind   tracepb.Span_SpanKind
		status tracepb.Status_StatusCode
		attrs  map[string]any
	}{
		{root, "proxy GET users", nil, tracepb.Span_SPAN_KIND_SERVER, tracepb.Status_STATUS_CODE_UNSET, map[string]any{
			"http.request.method": "GET", "url.path": "/v1/users", "url.scheme": "http",
			"server.address": "api.example.com", "server.port": int64(8080), "network.protocol.version": "1.1",
			"keel.route": "users", "keel.pool": "backend", "http.response.status_code": int64(200),
		}},
		{m["route match"], "route match", root, tracepb.Span_SPAN_KIND_INTERNAL, tracepb.Status_STATUS_CODE_UNSET, map[string]any{}},
		{middleware, "middleware request_id", root, tracepb.Span_SPAN_KIND_INTERNAL, tracepb.Status_STATUS_CODE_UNSET, map[string]any{}},
		{m["upstream select"], "upstream select", middleware, tracepb.Span_SPAN_KIND_INTERNAL, tracepb.Status_STATUS_CODE_UNSET, map[string]any{
			"keel.pool": "backend",
		}},
		{m["breaker"], "breaker", middleware, tracepb.Span_SPAN_KIND_INTERNAL, tracepb.Status_STATUS_CODE_UNSET, map[string]any{
			"keel.breaker_state": "closed",
		}},
		{attempts[0], "attempt", middleware, tracepb.Span_SPAN_KIND_CLIENT, tracepb.Status_STATUS_CODE_ERROR, map[string]any{
			"keel.endpoint": "10.0.0.1:8000", "keel.attempt": int64(1), "keel.hedge": false,
			"server.address": "10.0.0.1", "server.port": int64(8000), "error.type": "connect_failed",
		}},
		{attempts[1], "attempt", middleware, tracepb.Span_SPAN_KIND_CLIENT, tracepb.Status_STATUS_CODE_UNSET, map[string]any{
			"keel.endpoint": "10.0.0.2:8000", "keel.attempt": int64(2), "keel.hedge": false,
			"server.address": "10.0.0.2", "server.port": int64(8000), "http.response.status_code": int64(200),
		}},
	}
	for _, tt := range tests {
		if tt.span == nil {
			t.Errorf("no span named %q; got %v", tt.name, names(spans))
			continue
		}
		s := tt.span
		wantParent := ""
		if tt.parent != nil {
			wantParent = hexID(tt.parent.SpanId)
		}
		if got := hexID(s.ParentSpanId); got != wantParent {
			t.Errorf("span %q parent = %q, want %q", tt.name, got, wantParent)
		}
		if s.Kind != tt.kind {
			t.Errorf("span %q kind = %v, want %v", tt.name, s.Kind, tt.kind)
		}
		if got := s.GetStatus().GetCode(); got != tt.status {
			t.Errorf("span %q status = %v, want %v", tt.name, got, tt.status)
		}
		if got := attrMap(s.Attributes); !mapsEqual(got, tt.attrs) {
			t.Errorf("span %q attributes = %v, want %v", tt.name, got, tt.attrs)
		}
		if s.EndTimeUnixNano < s.StartTimeUnixNano {
			t.Errorf("span %q ends before it starts", tt.name)
		}
	}
	if got, want := attempts[0].GetStatus().GetMessage(), "dial 10.0.0.1:8000: upstream: connect_failed"; got != want {
		t.Errorf("failed attempt status message = %q, want %q", got, want)
	}
	// Each upstream request names its own attempt as the parent.
	for i, h := range []http.Header{h1, h2} {
		want := "00-" + traceID + "-" + hexID(attempts[i].SpanId) + "-01"
		if got := h.Get("Traceparent"); got != want {
			t.Errorf("attempt %d traceparent = %q, want %q", i+1, got, want)
		}
	}
	rc.mu.Lock()
	res, enc := rc.resources, rc.encodings
	rc.mu.Unlock()
	for _, attrs := range res {
		if attrs["service.name"] != "keel" || attrs["service.instance.id"] != "node-7" {
			t.Errorf("resource attributes = %v, want service.name keel and service.instance.id node-7", attrs)
		}
	}
	for _, e := range enc {
		if e != "gzip" {
			t.Errorf("export Content-Encoding = %q, want gzip", e)
		}
	}
}

// TestParentBasedSampling checks that an incoming traceparent decides
// sampling whatever the ratio, and the ratio decides only new traces.
func TestParentBasedSampling(t *testing.T) {
	t.Parallel()
	const (
		tid      = "4bf92f3577b34da6a3ce929d0e0e4736"
		parentID = "00f067aa0ba902b7"
	)
	tests := []struct {
		desc        string
		traceparent string
		ratio       float64
		wantSpans   int
		wantTrace   string // "" means any new trace id
		wantParent  string
		wantFlags   string // flags of the traceparent sent upstream
	}{
		{"sampled parent, ratio 0", "00-" + tid + "-" + parentID + "-01", 0, 1, tid, parentID, "01"},
		{"sampled parent, ratio 1", "00-" + tid + "-" + parentID + "-01", 1, 1, tid, parentID, "01"},
		{"unsampled parent, ratio 1", "00-" + tid + "-" + parentID + "-00", 1, 0, tid, "", "00"},
		{"no parent, ratio 0", "", 0, 0, "", "", "00"},
		{"no parent, ratio 1", "", 1, 1, "", "", "01"},
		{"malformed parent, ratio 1", "00-" + strings.ToUpper(tid) + "-" + parentID + "-01", 1, 1, "", "", "01"},
		{"zero trace id, ratio 0", "00-00000000000000000000000000000000-" + parentID + "-01", 0, 0, "", "", "00"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t)
			p := newProvider(t, rc, tracing.Options{SampleRatio: tt.ratio})
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			if tt.traceparent != "" {
				r.Header.Set("Traceparent", tt.traceparent)
			}
			ctx, srv := p.StartServer(r.Context(), r)
			actx, a := p.StartAttempt(ctx, "127.0.0.1:1", 1, false)
			out := http.Header{}
			p.Inject(actx, out)
			tracing.EndAttempt(a, 200, nil)
			tracing.EndServer(srv, 200, "")
			sc := srv.SpanContext()
			shutdown(t, p)

			if tt.wantTrace != "" && sc.TraceID().String() != tt.wantTrace {
				t.Errorf("server span trace id = %s, want %s", sc.TraceID(), tt.wantTrace)
			}
			// Sampled or not, the upstream learns the trace and the decision.
			parts := strings.Split(out.Get("Traceparent"), "-")
			if len(parts) != 4 || parts[1] != sc.TraceID().String() || parts[3] != tt.wantFlags {
				t.Errorf("upstream traceparent = %q, want trace %s flags %s", out.Get("Traceparent"), sc.TraceID(), tt.wantFlags)
			}
			spans := rc.Spans()
			if got := len(spans) / 2; got != tt.wantSpans || len(spans)%2 != 0 {
				t.Fatalf("received %d spans (%v), want %d requests of 2 spans", len(spans), names(spans), tt.wantSpans)
			}
			if tt.wantSpans == 0 {
				return
			}
			server := byName(t, spans)["proxy GET"]
			if server == nil {
				t.Fatalf("no server span in %v", names(spans))
			}
			if got := hexID(server.ParentSpanId); got != tt.wantParent {
				t.Errorf("server span parent = %q, want %q", got, tt.wantParent)
			}
			if got := hexID(server.TraceId); got != sc.TraceID().String() {
				t.Errorf("exported trace id = %s, want %s", got, sc.TraceID())
			}
		})
	}
}

// TestInject checks the traceparent and tracestate sent upstream.
func TestInject(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	p := newProvider(t, rc, tracing.Options{SampleRatio: 1})
	const in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	tests := []struct {
		desc       string
		tracestate []string
		wantState  string
	}{
		{"no tracestate", nil, ""},
		{"tracestate kept", []string{"vendor=abc"}, "vendor=abc"},
		{"repeated tracestate combined", []string{"a=1", "b=2"}, "a=1,b=2"},
		{"invalid tracestate dropped", []string{"not a list member"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			r.Header["Traceparent"] = []string{in}
			r.Header["Tracestate"] = tt.tracestate
			ctx, srv := p.StartServer(r.Context(), r)
			defer srv.End()
			actx, a := p.StartAttempt(ctx, "127.0.0.1:1", 1, false)
			defer a.End()

			// The proxy copies the client's headers, then injects.
			out := r.Header.Clone()
			p.Inject(actx, out)
			want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + a.SpanContext().SpanID().String() + "-01"
			if got := out["Traceparent"]; len(got) != 1 || got[0] != want {
				t.Errorf("traceparent = %q, want [%q]", got, want)
			}
			if got := strings.Join(out["Tracestate"], ","); got != tt.wantState {
				t.Errorf("tracestate = %q, want %q", got, tt.wantState)
			}
		})
	}

	t.Run("no span", func(t *testing.T) {
		h := http.Header{"Traceparent": {in}}
		p.Inject(context.Background(), h)
		if got := h.Get("Traceparent"); got != in {
			t.Errorf("Inject without a span: traceparent = %q, want %q untouched", got, in)
		}
	})
}

// TestSetSampleRatio changes the ratio between requests and checks that
// only the request made while it was 1 is exported.
func TestSetSampleRatio(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	p := newProvider(t, rc, tracing.Options{SampleRatio: 0})
	request := func() trace.SpanContext {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
		_, s := p.StartServer(r.Context(), r)
		tracing.EndServer(s, 204, "")
		return s.SpanContext()
	}
	request()
	p.SetSampleRatio(1)
	want := request()
	p.SetSampleRatio(0)
	request()
	shutdown(t, p)

	spans := rc.Spans()
	if len(spans) != 1 {
		t.Fatalf("received %d spans (%v), want 1", len(spans), names(spans))
	}
	if got := hexID(spans[0].TraceId); got != want.TraceID().String() {
		t.Errorf("exported trace %s, want the one made at ratio 1, %s", got, want.TraceID())
	}

	for _, tt := range []struct{ set, want float64 }{
		{0.25, 0.25}, {2, 1}, {-1, 0}, {math.NaN(), 0}, {1, 1},
	} {
		p.SetSampleRatio(tt.set)
		if got := p.SampleRatio(); got != tt.want {
			t.Errorf("SetSampleRatio(%v); SampleRatio() = %v, want %v", tt.set, got, tt.want)
		}
	}
}

// TestSampleRatioConcurrent changes the ratio while requests run, for the
// race detector.
func TestSampleRatioConcurrent(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	p := newProvider(t, rc, tracing.Options{SampleRatio: 0.5, MaxQueue: 64})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
				ctx, s := p.StartServer(r.Context(), r)
				_, c := p.StartInternal(ctx, tracing.SpanRouteMatch)
				c.End()
				tracing.EndServer(s, 200, "")
			}
		})
	}
	for i := range 200 {
		p.SetSampleRatio(float64(i%3) / 2)
	}
	wg.Wait()
}

// TestDisabled checks that an empty endpoint (and a nil Provider) cost
// nothing: no goroutine, no allocation, the context untouched, no header
// written. Not parallel, so the goroutine check sees only this test.
func TestDisabled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, err := tracing.New("", tracing.Options{SampleRatio: 1})
	if err != nil {
		t.Fatalf(`New("") error: %v`, err)
	}
	for _, tt := range []struct {
		desc string
		p    *tracing.Provider
	}{{"empty endpoint", p}, {"nil", nil}} {
		t.Run(tt.desc, func(t *testing.T) {
			p := tt.p
			if p.Enabled() {
				t.Errorf("Enabled() = true, want false")
			}
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			base := r.Context()
			var ctx context.Context
			var span trace.Span
			allocs := testing.AllocsPerRun(100, func() {
				ctx, span = p.StartServer(base, r)
				tracing.SetRoute(span, "r", "p")
				ictx, s := p.StartInternal(ctx, tracing.SpanBreaker, tracing.AttrBreakerState.String("open"))
				s.End()
				actx, a := p.StartAttempt(ictx, "10.0.0.1:80", 1, true)
				p.Inject(actx, r.Header)
				tracing.EndAttempt(a, 502, nil)
				tracing.EndServer(span, 502, "")
			})
			if allocs != 0 {
				t.Errorf("disabled request allocates %v times, want 0", allocs)
			}
			if ctx != base {
				t.Errorf("StartServer changed the context")
			}
			if span.IsRecording() || span.SpanContext().IsValid() {
				t.Errorf("StartServer span recording=%v valid=%v, want a no-op span", span.IsRecording(), span.SpanContext().IsValid())
			}
			if got := r.Header.Get("Traceparent"); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
				t.Errorf("Inject rewrote the passing traceparent to %q", got)
			}
			p.SetSampleRatio(0.5)
			if err := p.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown() = %v, want nil", err)
			}
		})
	}
}

// TestShutdownStopsGoroutines checks that Shutdown leaves nothing running:
// not the batch processor, not the exporter's connections (which would
// otherwise idle for 90 s). Not parallel, so the check sees only this test.
func TestShutdownStopsGoroutines(t *testing.T) {
	rc := newReceiver(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, err := tracing.New(rc.srv.URL, tracing.Options{SampleRatio: 1})
	if err != nil {
		t.Fatalf("New(%q) error: %v", rc.srv.URL, err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	_, s := p.StartServer(r.Context(), r)
	tracing.EndServer(s, 200, "")
	shutdown(t, p)
	if got := len(rc.Spans()); got != 1 {
		t.Errorf("received %d spans, want 1", got)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown() = %v, want nil", err)
	}
}

// TestUnsampledChildrenFree checks that below an unsampled server span no
// child span is made: the helpers hand back the parent. Not parallel:
// testing.AllocsPerRun needs the process to itself.
func TestUnsampledChildrenFree(t *testing.T) {
	rc := newReceiver(t)
	p := newProvider(t, rc, tracing.Options{SampleRatio: 0})
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	ctx, srv := p.StartServer(r.Context(), r)
	if !srv.SpanContext().IsValid() || srv.SpanContext().IsSampled() {
		t.Fatalf("server span context %+v, want valid and not sampled", srv.SpanContext())
	}
	boom := errors.New("boom")
	allocs := testing.AllocsPerRun(100, func() {
		ictx, s := p.StartInternal(ctx, tracing.SpanUpstreamSelect, attribute.String("k", "v"))
		s.End()
		_, a := p.StartAttempt(ictx, "10.0.0.1:80", 2, false)
		tracing.EndAttempt(a, 0, boom)
	})
	if allocs != 0 {
		t.Errorf("unsampled children allocate %v times, want 0", allocs)
	}
	actx, a := p.StartAttempt(ctx, "10.0.0.1:80", 1, false)
	if !a.SpanContext().Equal(srv.SpanContext()) || actx != ctx {
		t.Errorf("StartAttempt below an unsampled span made a new span %v", a.SpanContext().SpanID())
	}
}

// TestExportErrorsLogged checks that a collector refusing exports is
// reported on the Provider's logger.
func TestExportErrorsLogged(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	rc.status = http.StatusBadRequest // not retried by the exporter
	var logs logBuffer
	p := newProvider(t, rc, tracing.Options{SampleRatio: 1, Logger: slog.New(&logs)})
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	_, s := p.StartServer(r.Context(), r)
	tracing.EndServer(s, 200, "")
	shutdown(t, p)
	if got := logs.String(); !strings.Contains(got, "trace export failed") || !strings.Contains(got, "spans=1") {
		t.Errorf("logs = %q, want a trace export failed warning for 1 span", got)
	}
}

// TestHTTPS exports to a TLS collector trusted through Options.TLSConfig.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	rc := &receiver{}
	rc.srv = httptest.NewTLSServer(rc)
	t.Cleanup(rc.srv.Close)
	tlsConf := rc.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	p, err := tracing.New(rc.srv.URL+"/", tracing.Options{SampleRatio: 1, TLSConfig: tlsConf})
	if err != nil {
		t.Fatalf("New(%q) error: %v", rc.srv.URL, err)
	}
	r := httptest.NewRequest(http.MethodPost, "https://example.com/x", nil)
	_, s := p.StartServer(r.Context(), r)
	tracing.EndServer(s, 503, "upstream_timeout")
	shutdown(t, p)

	spans := rc.Spans()
	if len(spans) != 1 {
		t.Fatalf("received %d spans over https, want 1", len(spans))
	}
	want := map[string]any{
		"http.request.method": "POST", "url.path": "/x", "url.scheme": "https", "server.address": "example.com",
		"network.protocol.version": "1.1", "http.response.status_code": int64(503), "error.type": "upstream_timeout",
	}
	if got := attrMap(spans[0].Attributes); !mapsEqual(got, want) {
		t.Errorf("attributes = %v, want %v", got, want)
	}
	if got := spans[0].GetStatus().GetCode(); got != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("status = %v, want error for a 503", got)
	}
}

// TestServerSpanNames checks span names and methods, including methods
// outside RFC 9110, which must not make names unbounded.
func TestServerSpanNames(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	p := newProvider(t, rc, tracing.Options{SampleRatio: 1})
	tests := []struct {
		method, route, wantName, wantMethod, wantOriginal string
	}{
		{"GET", "", "proxy GET", "GET", ""},
		{"DELETE", "items", "proxy DELETE items", "DELETE", ""},
		{"PROPFIND", "dav", "proxy _OTHER dav", "_OTHER", "PROPFIND"},
		{"PATCH", "twice", "proxy PATCH twice", "PATCH", ""}, // SetRoute called twice
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "http://example.com/a", nil)
		_, s := p.StartServer(r.Context(), r)
		if tt.route == "twice" {
			tracing.SetRoute(s, "first", "p")
		}
		if tt.route != "" {
			tracing.SetRoute(s, tt.route, "p")
		}
		tracing.EndServer(s, 200, "")
	}
	shutdown(t, p)
	got := byName(t, rc.Spans())
	for _, tt := range tests {
		s := got[tt.wantName]
		if s == nil {
			t.Errorf("%s with route %q: no span %q in %v", tt.method, tt.route, tt.wantName, names(rc.Spans()))
			continue
		}
		attrs := attrMap(s.Attributes)
		if attrs["http.request.method"] != tt.wantMethod {
			t.Errorf("span %q http.request.method = %v, want %q", tt.wantName, attrs["http.request.method"], tt.wantMethod)
		}
		if orig, _ := attrs["http.request.method_original"].(string); orig != tt.wantOriginal {
			t.Errorf("span %q http.request.method_original = %q, want %q", tt.wantName, orig, tt.wantOriginal)
		}
	}
}

// TestEndAttemptErrorType checks error.type and status for attempt
// outcomes.
func TestEndAttemptErrorType(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	p := newProvider(t, rc, tracing.Options{SampleRatio: 1})
	tests := []struct {
		status    int
		err       error
		wantType  string // "" means no error.type
		wantError bool
	}{
		{200, nil, "", false},
		{404, nil, "404", true},
		{503, nil, "503", true},
		{0, fmt.Errorf("wrapped: %w", categoryError("upstream_reset")), "upstream_reset", true},
		{0, fmt.Errorf("wrapped: %w", context.DeadlineExceeded), "timeout", true},
		{0, context.Canceled, "canceled", true},
		{0, fmt.Errorf("a: %w", fmt.Errorf("b: %w", errPlain{})), "tracing_test.errPlain", true},
		{0, &url.Error{Op: "Get", URL: "http://h:1/p?token=secret", Err: errPlain{}}, "tracing_test.errPlain", true},
	}
	ctx := context.Background()
	for i, tt := range tests {
		_, a := p.StartAttempt(ctx, "h:1", i+1, i%2 == 0)
		tracing.EndAttempt(a, tt.status, tt.err)
	}
	shutdown(t, p)
	spans := rc.Spans()
	if len(spans) != len(tests) {
		t.Fatalf("received %d spans, want %d", len(spans), len(tests))
	}
	for _, s := range spans {
		attrs := attrMap(s.Attributes)
		tt := tests[attrs["keel.attempt"].(int64)-1]
		gotType, _ := attrs["error.type"].(string)
		if gotType != tt.wantType {
			t.Errorf("EndAttempt(%d, %v): error.type = %q, want %q", tt.status, tt.err, gotType, tt.wantType)
		}
		if got := s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR; got != tt.wantError {
			t.Errorf("EndAttempt(%d, %v): error status = %v, want %v", tt.status, tt.err, got, tt.wantError)
		}
		if msg := s.GetStatus().GetMessage(); strings.Contains(msg, "secret") {
			t.Errorf("EndAttempt(%d, %v): status message %q carries the request URL's query", tt.status, tt.err, msg)
		}
	}
}

type errPlain struct{}

func (errPlain) Error() string { return "plain" }

// TestNewErrors checks the endpoints New refuses.
func TestNewErrors(t *testing.T) {
	t.Parallel()
	for _, endpoint := range []string{
		"localhost:4318",
		"ftp://collector:4318",
		"http://",
		"http://user:pass@collector:4318",
		"http://collector:4318/?tenant=a",
		"http://collector:4318/#x",
		"http://[::1",
	} {
		p, err := tracing.New(endpoint, tracing.Options{})
		if !errors.Is(err, tracing.ErrEndpoint) {
			t.Errorf("New(%q) error = %v, want ErrEndpoint", endpoint, err)
		}
		if p != nil {
			t.Errorf("New(%q) returned a Provider with its error", endpoint)
			p.Shutdown(context.Background())
		}
	}
}

// logBuffer is a slog.Handler collecting records as text.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Enabled(context.Context, slog.Level) bool { return true }
func (l *logBuffer) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logBuffer) WithGroup(string) slog.Handler            { return l }
func (l *logBuffer) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&l.b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.b.WriteByte('\n')
	return nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func names(spans []*tracepb.Span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
