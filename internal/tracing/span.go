package tracing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Attribute keys. The standard ones are those of the OpenTelemetry HTTP
// semantic conventions (v1.26+ names); the keel.* ones are the proxy's.
const (
	AttrMethod         = attribute.Key("http.request.method")
	AttrMethodOriginal = attribute.Key("http.request.method_original")
	AttrStatusCode     = attribute.Key("http.response.status_code")
	AttrURLPath        = attribute.Key("url.path")
	AttrURLScheme      = attribute.Key("url.scheme")
	AttrServerAddress  = attribute.Key("server.address")
	AttrServerPort     = attribute.Key("server.port")
	AttrProtocol       = attribute.Key("network.protocol.version")
	AttrErrorType      = attribute.Key("error.type")

	AttrRoute        = attribute.Key("keel.route")
	AttrPool         = attribute.Key("keel.pool")
	AttrEndpoint     = attribute.Key("keel.endpoint")
	AttrAttempt      = attribute.Key("keel.attempt")
	AttrHedge        = attribute.Key("keel.hedge")
	AttrBreakerState = attribute.Key("keel.breaker_state")
	AttrCache        = attribute.Key("keel.cache")
	AttrRequestID    = attribute.Key("keel.request_id")
)

// Span names for StartInternal and StartAttempt, fixed so traces from any
// version of the proxy group the same way. Middleware stages use
// StageName.
const (
	SpanRouteMatch     = "route match"
	SpanUpstreamSelect = "upstream select"
	SpanBreaker        = "breaker"
	SpanCacheLookup    = "cache lookup"
	SpanCacheStore     = "cache store"
	SpanAttempt        = "attempt"
)

// StageName returns the span name of a middleware stage of type typ,
// "middleware <typ>". It allocates: compute it once when the chain is
// compiled, not per request.
func StageName(typ string) string {
	return "middleware " + typ
}

// Start options shared by every span of a kind. They are constant lookup
// tables: passing them spread (opts...) costs no allocation per span.
var (
	serverOpts   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	internalOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	clientOpts   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// noopSpan is what a disabled Provider returns. noop.Span is an empty
// struct, so making it a trace.Span does not allocate.
func noopSpan() trace.Span { return noop.Span{} }

// StartServer starts the span covering the whole of request r, of kind
// server, named "proxy <METHOD>" (SetRoute adds the route once matched).
// Its parent is r's incoming traceparent when valid, and whether it is
// sampled follows that parent's flag; without one, the sample ratio
// decides. The returned context carries the span: start the request's
// other spans from it. End it with EndServer.
//
// A disabled or nil Provider returns ctx unchanged and a no-op span,
// without allocating.
func (p *Provider) StartServer(ctx context.Context, r *http.Request) (context.Context, trace.Span) {
	if !p.Enabled() {
		return ctx, noopSpan()
	}
	ctx = p.Extract(ctx, r.Header)
	name, method := serverName(r.Method)
	ctx, span := p.tracer.Start(ctx, name, serverOpts...)
	if span.IsRecording() {
		span.SetAttributes(serverAttrs(r, method)...)
	}
	return ctx, span
}

// serverName returns the server span name and the http.request.method
// value. Methods outside RFC 9110 become "_OTHER", as the semantic
// conventions ask, so a client cannot make span names unbounded; the
// constant strings spare an allocation per request.
func serverName(method string) (name, attr string) {
	switch method {
	case http.MethodGet:
		return "proxy GET", method
	case http.MethodHead:
		return "proxy HEAD", method
	case http.MethodPost:
		return "proxy POST", method
	case http.MethodPut:
		return "proxy PUT", method
	case http.MethodPatch:
		return "proxy PATCH", method
	case http.MethodDelete:
		return "proxy DELETE", method
	case http.MethodConnect:
		return "proxy CONNECT", method
	case http.MethodOptions:
		return "proxy OPTIONS", method
	case http.MethodTrace:
		return "proxy TRACE", method
	}
	return "proxy _OTHER", "_OTHER"
}

// serverAttrs describes r. The query is left out on purpose: it may hold
// secrets (logging.redact_query), and traces leave the process.
func serverAttrs(r *http.Request, method string) []attribute.KeyValue {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		AttrMethod.String(method),
		AttrURLPath.String(r.URL.Path),
		AttrURLScheme.String(scheme),
		AttrProtocol.String(protocolVersion(r)),
	)
	if method != r.Method {
		attrs = append(attrs, AttrMethodOriginal.String(r.Method))
	}
	return appendHostPort(attrs, r.Host)
}

func protocolVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	if r.ProtoMinor == 0 {
		return "1.0"
	}
	return "1.1"
}

// appendHostPort appends server.address and, when present, server.port
// for a "host[:port]" string.
func appendHostPort(attrs []attribute.KeyValue, hostport string) []attribute.KeyValue {
	if hostport == "" {
		return attrs
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: the whole value is the host.
		return append(attrs, AttrServerAddress.String(strings.Trim(hostport, "[]")))
	}
	attrs = append(attrs, AttrServerAddress.String(host))
	if n, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, AttrServerPort.Int(n))
	}
	return attrs
}

// SetRoute records the matched route and pool on the server span and
// renames it "proxy <METHOD> <routeID>": route ids come from config, so
// the names stay few. Calling it again replaces the route. A span that is
// not recording is left alone at no cost.
func SetRoute(span trace.Span, routeID, poolID string) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(AttrRoute.String(routeID), AttrPool.String(poolID))
	named, ok := span.(interface{ Name() string })
	if !ok {
		return
	}
	// Keep "proxy <METHOD>", the first two words, and put the route after.
	base := named.Name()
	if i := strings.IndexByte(base, ' '); i >= 0 {
		if j := strings.IndexByte(base[i+1:], ' '); j >= 0 {
			base = base[:i+1+j]
		}
	}
	span.SetName(base + " " + routeID)
}

// EndServer ends the server span of a request answered with status.
// Following the semantic conventions for server spans, only a 5xx (or no
// status at all) marks it as an error; errType, the proxy's error
// category (e.g. "connect_failed", "no_route"), is recorded as error.type
// whenever it is set, and the status code stands in for it on a 5xx
// without one.
func EndServer(span trace.Span, status int, errType string) {
	if span.IsRecording() {
		if status > 0 {
			span.SetAttributes(AttrStatusCode.Int(status))
		}
		if errType == "" && status >= 500 {
			errType = strconv.Itoa(status)
		}
		if errType != "" {
			span.SetAttributes(AttrErrorType.String(errType))
		}
		if status >= 500 || status <= 0 {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// StartInternal starts an internal span named name (SpanRouteMatch,
// SpanUpstreamSelect, SpanBreaker, SpanCacheLookup, SpanCacheStore or a
// StageName) as a child of ctx's span, with attrs. End it with span.End.
//
// When ctx's span is not sampled no span is created: the parent's own
// non-recording span and ctx itself are returned (End on them does
// nothing), which is what makes unsampled requests nearly free. attrs are
// only copied when the span records, so a caller's literal attrs can stay
// on its stack.
func (p *Provider) StartInternal(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !p.Enabled() {
		return ctx, noopSpan()
	}
	if parent, skip := unsampledParent(ctx); skip {
		return ctx, parent
	}
	ctx, span := p.tracer.Start(ctx, name, internalOpts...)
	if len(attrs) > 0 && span.IsRecording() {
		span.SetAttributes(clone(attrs)...)
	}
	return ctx, span
}

// StartAttempt starts the client span of one upstream attempt to
// endpoint ("host:port"): attempt counts from 1 across retries and hedges,
// and hedge marks an attempt started by hedging rather than after a
// failure. Inject the returned context into the attempt's request so the
// upstream's spans are its children, and end it with EndAttempt. Attempts
// may run concurrently (hedges); each has its own span.
//
// As with StartInternal, nothing is created below an unsampled parent.
func (p *Provider) StartAttempt(ctx context.Context, endpoint string, attempt int, hedge bool) (context.Context, trace.Span) {
	if !p.Enabled() {
		return ctx, noopSpan()
	}
	if parent, skip := unsampledParent(ctx); skip {
		return ctx, parent
	}
	ctx, span := p.tracer.Start(ctx, SpanAttempt, clientOpts...)
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 5)
		attrs = append(attrs, AttrEndpoint.String(endpoint), AttrAttempt.Int(attempt), AttrHedge.Bool(hedge))
		span.SetAttributes(appendHostPort(attrs, endpoint)...)
	}
	return ctx, span
}

// EndAttempt ends an attempt span with its outcome: status is the
// upstream's response status (0 when none came), err the failure (nil when
// a response came). Following the semantic conventions for client spans,
// an error or a status of 400 or more marks the span as an error; error.type
// is the status code, or for err the ErrorType() string of the first error
// in its chain that has that method (the proxy's categories), "timeout" or
// "canceled" for context errors, else the Go type of the innermost error.
func EndAttempt(span trace.Span, status int, err error) {
	if span.IsRecording() {
		if status > 0 {
			span.SetAttributes(AttrStatusCode.Int(status))
		}
		switch {
		case err != nil:
			span.SetAttributes(AttrErrorType.String(errorType(err)))
			span.SetStatus(codes.Error, errorMessage(err))
		case status >= 400:
			span.SetAttributes(AttrErrorType.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// errorType classifies err for error.type, low-cardinality as the
// semantic conventions ask.
func errorType(err error) string {
	var typed interface{ ErrorType() string }
	if errors.As(err, &typed) {
		return typed.ErrorType()
	}
	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return fmt.Sprintf("%T", err)
		}
		err = next
	}
}

// errorMessage is err's text for the span status, without the request
// URL a *url.Error carries: its query may hold secrets
// (logging.redact_query), and traces leave the process.
func errorMessage(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Op + ": " + uerr.Err.Error()
	}
	return err.Error()
}

// unsampledParent reports whether ctx's span belongs to a trace that is
// not sampled, and returns it. Below such a span the parent-based sampler
// would drop every child, so creating one is pure cost.
func unsampledParent(ctx context.Context) (trace.Span, bool) {
	parent := trace.SpanFromContext(ctx)
	sc := parent.SpanContext()
	return parent, sc.IsValid() && !sc.IsSampled() && !parent.IsRecording()
}

// clone copies attrs so the caller's variadic slice does not escape.
func clone(attrs []attribute.KeyValue) []attribute.KeyValue {
	return append([]attribute.KeyValue(nil), attrs...)
}
