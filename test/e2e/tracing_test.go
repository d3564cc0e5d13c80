package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver collects the spans exported to it over OTLP/HTTP.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPReceiver(t testing.TB) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *otlpReceiver) all() []*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*tracepb.Span(nil), rc.spans...)
}

// TestTracingSpanTree: with -trace-endpoint, a request carrying a sampled
// traceparent produces a span tree under it (server span → route match,
// middleware stages, upstream selection, attempt) exported over OTLP, and
// the upstream receives a traceparent naming the attempt span.
func TestTracingSpanTree(t *testing.T) {
	t.Parallel()
	rc := newOTLPReceiver(t)
	up := newEcho(t, "u")
	cfg := fmt.Sprintf(`
tracing: {sample_ratio: 0}
routes: [{id: api, path_prefix: /, pool: p, middleware: m}]
middleware: [{id: m, stages: [{type: request_id}, {type: tracing}, {type: header_transform, config: {add: {X-A: b}}}]}]
pools: [{id: p, endpoints: [{address: "%s"}]}]
`, up.addr) + fastShutdown
	p := startProxy(t, cfg, "-trace-endpoint", rc.URL)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parentID = "00f067aa0ba902b7"
	hdr := http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}}
	resp, b := do(t, newClient(t, 10*time.Second), "GET", p.url("/x"), "", hdr, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET = %d", resp.StatusCode)
	}
	upTP := decodeEcho(t, b).Header.Get("Traceparent")
	if !strings.HasPrefix(upTP, "00-"+traceID+"-") || strings.Contains(upTP, parentID) {
		t.Fatalf("upstream traceparent %q: want the same trace, a new parent span", upTP)
	}
	// An unsampled request (ratio 0, no parent) exports nothing.
	do(t, newClient(t, 10*time.Second), "GET", p.url("/y"), "", nil, nil)
	p.signal(t, os.Interrupt) // shutdown flushes the exporter
	p.wait(15 * time.Second)

	spans := rc.all()
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		if hex.EncodeToString(s.TraceId) != traceID {
			t.Errorf("span %q has trace %x, want %s (only the sampled request is exported)", s.Name, s.TraceId, traceID)
		}
		byName[s.Name] = s
	}
	server := byName["proxy GET api"]
	if server == nil {
		t.Fatalf("no server span among %v", names(spans))
	}
	if hex.EncodeToString(server.ParentSpanId) != parentID || server.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("server span parent %x kind %v, want %s and SERVER", server.ParentSpanId, server.Kind, parentID)
	}
	child := func(name string, parent *tracepb.Span) *tracepb.Span {
		t.Helper()
		s := byName[name]
		if s == nil {
			t.Fatalf("no %q span among %v", name, names(spans))
		}
		if !bytes.Equal(s.ParentSpanId, parent.SpanId) {
			t.Fatalf("span %q has parent %x, want %q (%x)", name, s.ParentSpanId, parent.Name, parent.SpanId)
		}
		return s
	}
	child("route match", server)
	mw := child("middleware", server)
	ht := child("middleware header_transform", mw)
	child("upstream select", ht)
	attempt := child("attempt", ht)
	if attempt.Kind != tracepb.Span_SPAN_KIND_CLIENT || !strings.Contains(upTP, hex.EncodeToString(attempt.SpanId)) {
		t.Fatalf("attempt span kind %v id %x; upstream traceparent %q should name it", attempt.Kind, attempt.SpanId, upTP)
	}
}

func names(spans []*tracepb.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// TestTracingHedgedAttempts: a hedged request exports one attempt span per
// attempt. The loser, canceled by the proxy, says "canceled"; the hedge is
// marked keel.hedge; a failed attempt carries the proxy's error category
// (connect_failed), never the Go type of an error.
func TestTracingHedgedAttempts(t *testing.T) {
	t.Parallel()
	rc := newOTLPReceiver(t)
	slow := newUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow")
	})
	fast := newUpstream(t, "fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	cfg := fmt.Sprintf(`
tracing: {sample_ratio: 1}
routes:
  - {id: r, path_prefix: /, pool: p, policy: hedge}
  - {id: dead, path_prefix: /dead, pool: dead, policy: hedge}
policies: [{id: hedge, hedging: {delay: 50ms, max_hedges: 1}}]
pools:
  - {id: p, balancer: round_robin, endpoints: [{address: "%s"}, {address: "%s"}]}
  - {id: dead, endpoints: [{address: "%s"}]}
`, slow.addr, fast.addr, freeAddr(t)) + fastShutdown
	p := startProxy(t, cfg, "-trace-endpoint", rc.URL)
	c := newClient(t, 10*time.Second)
	for range 4 {
		if resp, b := do(t, c, "GET", p.url("/x"), "", nil, nil); resp.StatusCode != 200 || string(b) != "fast" {
			t.Fatalf("GET = %d %q, want the fast endpoint's answer", resp.StatusCode, b)
		}
	}
	if resp, _ := do(t, c, "GET", p.url("/dead"), "", nil, nil); resp.StatusCode != 502 {
		t.Fatalf("GET /dead = %d, want 502", resp.StatusCode)
	}
	p.signal(t, os.Interrupt) // shutdown flushes the exporter
	p.wait(15 * time.Second)

	var hedges, canceled, connectFailed int
	for _, s := range rc.all() {
		if s.Name != "attempt" {
			continue
		}
		attrs := map[string]string{}
		for _, kv := range s.Attributes {
			attrs[kv.Key] = kv.Value.String()
		}
		if strings.Contains(attrs["keel.hedge"], "true") {
			hedges++
		}
		switch et := attrs["error.type"]; {
		case et == "":
		case strings.Contains(et, "canceled"):
			canceled++
		case strings.Contains(et, "connect_failed"):
			connectFailed++
		default:
			t.Errorf("attempt span error.type %s, want none, canceled or connect_failed (attributes %v)", et, attrs)
		}
	}
	if connectFailed != 1 {
		t.Errorf("%d attempt spans with error.type connect_failed, want 1 (GET /dead)", connectFailed)
	}
	// Round robin starts two of the four requests at the slow endpoint:
	// each of those is hedged and its first attempt loses.
	if hedges < 2 || canceled < 2 {
		t.Fatalf("%d hedge attempts, %d canceled attempts; want at least 2 of each", hedges, canceled)
	}
}
