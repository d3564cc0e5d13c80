package tracing_test

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/keelproxy/keel/internal/tracing"
)

// receiver is an OTLP/HTTP trace collector for tests: it accepts
// ExportTraceServiceRequest protobufs (gzip or not) on POST /v1/traces
// and keeps every span with its resource's attributes.
type receiver struct {
	srv *httptest.Server

	// mu guards the fields below, written by the server's handler.
	mu        sync.Mutex
	spans     []*tracepb.Span
	resources []map[string]any
	encodings []string // Content-Encoding of each export request
	status    int      // answer for exports; 0 means 200
}

// newReceiver starts a receiver closed at the end of the test.
func newReceiver(t testing.TB) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(rc)
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.Error(w, "not an OTLP traces export", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	status := rc.status
	if status == 0 {
		rc.encodings = append(rc.encodings, r.Header.Get("Content-Encoding"))
		for _, rs := range req.ResourceSpans {
			rc.resources = append(rc.resources, attrMap(rs.GetResource().GetAttributes()))
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
	}
	rc.mu.Unlock()
	if status != 0 {
		http.Error(w, "refused by test", status)
		return
	}
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// Spans returns a copy of the spans received so far.
func (rc *receiver) Spans() []*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*tracepb.Span(nil), rc.spans...)
}

// newProvider returns a Provider exporting to rc, shut down at the end of
// the test if the test did not.
func newProvider(t testing.TB, rc *receiver, o tracing.Options) *tracing.Provider {
	t.Helper()
	p, err := tracing.New(rc.srv.URL, o)
	if err != nil {
		t.Fatalf("New(%q) error: %v", rc.srv.URL, err)
	}
	t.Cleanup(func() { shutdown(t, p) })
	return p
}

// shutdown flushes p within a bounded time.
func shutdown(t testing.TB, p *tracing.Provider) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown() = %v, want nil", err)
	}
}

// attrMap turns OTLP attributes into Go values (string, int64, bool,
// float64) for comparisons.
func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = v.IntValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.Key] = v.BoolValue
		case *commonpb.AnyValue_DoubleValue:
			m[kv.Key] = v.DoubleValue
		default:
			m[kv.Key] = kv.GetValue().String()
		}
	}
	return m
}

// byName indexes spans by name, failing on duplicates.
func byName(t *testing.T, spans []*tracepb.Span) map[string]*tracepb.Span {
	t.Helper()
	m := make(map[string]*tracepb.Span, len(spans))
	for _, s := range spans {
		if _, dup := m[s.Name]; dup {
			t.Errorf("span name %q received twice", s.Name)
		}
		m[s.Name] = s
	}
	return m
}

func hexID(b []byte) string { return hex.EncodeToString(b) }
