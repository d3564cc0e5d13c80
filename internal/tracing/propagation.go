package tracing

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Extract returns ctx carrying the remote span context of h's W3C
// traceparent and tracestate headers, the parent of the spans started
// from it. A missing or malformed traceparent leaves ctx as it is (a new
// trace starts). A disabled or nil Provider returns ctx unchanged: the
// proxy is then invisible to tracing and the headers pass through as
// they came.
//
// StartServer calls it itself; call it only to parent spans on headers
// other than the request's.
func (p *Provider) Extract(ctx context.Context, h http.Header) context.Context {
	if !p.Enabled() || len(h["Traceparent"]) == 0 {
		return ctx
	}
	return p.prop.Extract(ctx, headerCarrier(h))
}

// Inject writes ctx's span context into h as traceparent (and tracestate
// when set), replacing any there: the proxy calls it on each upstream
// request, with the attempt's context, so the upstream's parent is the
// attempt span. A trace that is not sampled is propagated too, with its
// flag off, so services behind the proxy make the same decision. Without
// a valid span context in ctx, or on a disabled or nil Provider, h is left
// unchanged.
func (p *Provider) Inject(ctx context.Context, h http.Header) {
	if !p.Enabled() {
		return
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	// The client's tracestate belongs to the client's traceparent (W3C
	// Trace Context section 3.3): drop it; a still-valid one came back in
	// through Extract and is part of the span context written below.
	delete(h, "Tracestate")
	p.prop.Inject(ctx, headerCarrier(h))
}

// headerCarrier adapts http.Header to propagation.TextMapCarrier for the
// two trace context fields. Unlike propagation.HeaderCarrier it maps the
// propagator's lower-case names to canonical keys with a switch, so a
// lookup does not allocate a canonicalised key, and it combines repeated
// tracestate fields as W3C Trace Context section 3.3.1 requires.
type headerCarrier http.Header

// canonicalKey returns the http.Header key of a propagator field name.
func canonicalKey(k string) string {
	switch k {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	}
	return http.CanonicalHeaderKey(k)
}

// Get implements propagation.TextMapCarrier.
func (c headerCarrier) Get(key string) string {
	vv := c[canonicalKey(key)]
	switch {
	case len(vv) == 0:
		return ""
	case len(vv) > 1 && key == "tracestate":
		return strings.Join(vv, ",")
	}
	return vv[0]
}

// Set implements propagation.TextMapCarrier.
func (c headerCarrier) Set(key, value string) {
	c[canonicalKey(key)] = []string{value}
}

// Keys implements propagation.TextMapCarrier.
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

var _ propagation.TextMapCarrier = headerCarrier(nil)
