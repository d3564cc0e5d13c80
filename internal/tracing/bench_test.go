package tracing_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keelproxy/keel/internal/tracing"
)

// BenchmarkRequest measures the tracing work of one proxied request as
// the data plane does it: StartServer, SetRoute, three internal spans
// (route match, a middleware stage, upstream selection), one attempt with
// its traceparent injected, and the ends. Spans go to a local receiver
// through the batch processor, which drops what it cannot queue, as in
// production.
func BenchmarkRequest(b *testing.B) {
	const parentSampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const parentUnsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	stage := tracing.StageName("request_id")
	benches := []struct {
		name        string
		enabled     bool
		ratio       float64
		traceparent string
		inject      bool
	}{
		{"disabled", false, 0, "", true},
		{"unsampled", true, 0, "", false},
		{"unsampled_inject", true, 0, "", true},
		{"unsampled_parent_inject", true, 1, parentUnsampled, true},
		{"ratio_1pct_inject", true, 0.01, "", true},
		{"sampled_100pct", true, 1, "", false},
		{"sampled_100pct_inject", true, 1, "", true},
		{"sampled_parent_inject", true, 0, parentSampled, true},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			p, _ := tracing.New("", tracing.Options{})
			if bb.enabled {
				rc := newReceiver(b)
				p = newProvider(b, rc, tracing.Options{SampleRatio: bb.ratio})
			}
			r := httptest.NewRequest(http.MethodGet, "http://api.example.com/v1/users", nil)
			if bb.traceparent != "" {
				r.Header.Set("Traceparent", bb.traceparent)
			}
			out := http.Header{}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				ctx, srv := p.StartServer(r.Context(), r)
				_, m := p.StartInternal(ctx, tracing.SpanRouteMatch)
				m.End()
				tracing.SetRoute(srv, "users", "backend")
				mctx, mw := p.StartInternal(ctx, stage)
				_, sel := p.StartInternal(mctx, tracing.SpanUpstreamSelect)
				sel.End()
				actx, a := p.StartAttempt(mctx, "10.0.0.1:8000", 1, false)
				if bb.inject {
					p.Inject(actx, out)
				}
				tracing.EndAttempt(a, 200, nil)
				mw.End()
				tracing.EndServer(srv, 200, "")
			}
		})
	}
}
