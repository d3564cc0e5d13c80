// Package tracing is the proxy's OpenTelemetry setup (SPEC sections 2, 3
// and 9): a Provider that exports spans over OTLP/HTTP through a batch
// processor, a parent-based ratio sampler whose ratio an apply can change,
// W3C trace context propagation, and the few span helpers the data plane
// calls per request.
//
// The helpers are built so that a request that is not sampled costs
// almost nothing: a disabled Provider (no endpoint, or nil) returns the
// context unchanged and a no-op span without allocating, and below an
// unsampled span no child span is created at all. Attributes are only
// computed when span.IsRecording() says someone will read them.
package tracing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every span the proxy makes.
const ScopeName = "github.com/keelproxy/keel"

// DefaultServiceName is the service.name resource attribute when
// Options.ServiceName is empty.
const DefaultServiceName = "keel"

// tracesPath is the OTLP/HTTP path for traces (OTLP specification,
// "OTLP/HTTP Request"); it is appended to a base endpoint the way the
// OTEL_EXPORTER_OTLP_ENDPOINT convention does.
const tracesPath = "/v1/traces"

// exportHTTPTimeout bounds one export HTTP request. The batch processor's
// own export timeout (30 s) bounds an export with its retries.
const exportHTTPTimeout = 10 * time.Second

// ErrEndpoint is wrapped by New when the endpoint is not an http or https
// URL it can export to.
var ErrEndpoint = errors.New("invalid trace endpoint")

// Options configure a Provider. The zero value is usable: service "keel",
// no instance id, nothing sampled unless the caller's traceparent says so
// (SampleRatio 0), and the SDK's batch defaults.
type Options struct {
	// ServiceName is the service.name resource attribute; empty means
	// DefaultServiceName.
	ServiceName string
	// NodeID is the service.instance.id resource attribute (the
	// -node-id flag), so spans from a fleet can be told apart; empty sets
	// none.
	NodeID string
	// SampleRatio is the fraction of new traces (requests without a
	// traceparent) that are sampled, in [0, 1]; values outside are
	// clamped, NaN is 0. Requests with a valid incoming traceparent
	// follow its sampled flag whatever the ratio. SetSampleRatio changes
	// it later.
	SampleRatio float64
	// BatchTimeout is the longest a finished span waits before it is
	// exported; zero means the SDK default (5 s, or OTEL_BSP_SCHEDULE_DELAY).
	BatchTimeout time.Duration
	// MaxQueue is how many finished spans wait for export at most; when
	// the queue is full new spans are dropped, never waited for, so a slow
	// collector cannot slow requests down. Zero means the SDK default
	// (2048, or OTEL_BSP_MAX_QUEUE_SIZE).
	MaxQueue int
	// TLSConfig is used for https endpoints; nil means the system roots.
	// The OTEL_EXPORTER_OTLP_*CERTIFICATE variables are not read.
	TLSConfig *tls.Config
	// Logger receives export failures (one warning per failed batch);
	// nil discards them. They never reach the OpenTelemetry global error
	// handler.
	Logger *slog.Logger
}

// Provider creates the proxy's spans and exports them. Build it with New;
// all methods are safe for concurrent use. A nil *Provider is valid and
// behaves like a disabled one, so the data plane can hold one
// unconditionally.
//
// An enabled Provider owns a background goroutine, the SDK batch span
// processor's, started by New (the SDK offers no way to start it later).
// The caller that built it (main) must call Shutdown to flush the queue
// and stop that goroutine.
type Provider struct {
	tp        *sdktrace.TracerProvider // nil when disabled
	tracer    trace.Tracer             // nil when disabled
	transport *http.Transport          // the exporter's, closed by Shutdown
	sampler   *ratioSampler
	prop      propagation.TraceContext
}

// New returns a Provider exporting to endpoint, an OTLP/HTTP URL such as
// "http://127.0.0.1:4318". The path "/v1/traces" is appended unless the
// path already ends with it, so both a collector's base URL and its full
// traces URL work. http exports in clear text, https with TLS. Spans are
// sent as gzip-compressed protobuf; OTEL_EXPORTER_OTLP_HEADERS (and
// OTEL_EXPORTER_OTLP_TRACES_HEADERS) add request headers, e.g. for
// collector authentication.
//
// An empty endpoint returns a disabled Provider: no goroutine, no export,
// every helper a no-op. A malformed endpoint returns an error wrapping
// ErrEndpoint.
func New(endpoint string, o Options) (*Provider, error) {
	s := newRatioSampler(o.SampleRatio)
	if endpoint == "" {
		return &Provider{sampler: s}, nil
	}
	u, err := exportURL(endpoint)
	if err != nil {
		return nil, err
	}
	exp, tr, err := newExporter(u, o.TLSConfig)
	if err != nil {
		return nil, err
	}
	var bsp []sdktrace.BatchSpanProcessorOption
	if o.BatchTimeout > 0 {
		bsp = append(bsp, sdktrace.WithBatchTimeout(o.BatchTimeout))
	}
	if o.MaxQueue > 0 {
		bsp = append(bsp, sdktrace.WithMaxQueueSize(o.MaxQueue),
			sdktrace.WithMaxExportBatchSize(min(sdktrace.DefaultMaxExportBatchSize, o.MaxQueue)))
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(newResource(o)),
		sdktrace.WithSampler(sdktrace.ParentBased(s)),
		sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(loggingExporter{exp, logger}, bsp...)),
	)
	return &Provider{tp: tp, tracer: tp.Tracer(ScopeName), transport: tr, sampler: s}, nil
}

// exportURL validates endpoint and completes its path.
func exportURL(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrEndpoint, endpoint, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w %q: scheme must be http or https", ErrEndpoint, endpoint)
	case u.Host == "":
		return nil, fmt.Errorf("%w %q: no host", ErrEndpoint, endpoint)
	case u.User != nil:
		// The exporter has no basic auth; dropping the credentials
		// silently would fail later and less clearly.
		return nil, fmt.Errorf("%w %q: credentials in the URL are not supported, use OTEL_EXPORTER_OTLP_HEADERS", ErrEndpoint, endpoint)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%w %q: query and fragment are not supported", ErrEndpoint, endpoint)
	}
	if !strings.HasSuffix(u.Path, tracesPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + tracesPath
		u.RawPath = ""
	}
	return u, nil
}

// newExporter builds the OTLP/HTTP exporter on a transport of its own,
// not the exporter package's shared one, so Shutdown can close its idle
// connections and leave no goroutine behind.
func newExporter(u *url.URL, tlsConf *tls.Config) (sdktrace.SpanExporter, *http.Transport, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       tlsConf,
	}
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpoint(u.Host),
		otlptracehttp.WithURLPath(u.EscapedPath()),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
		otlptracehttp.WithHTTPClient(&http.Client{Transport: tr, Timeout: exportHTTPTimeout}),
	}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	// New does no I/O for HTTP; the context only bounds its setup.
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp exporter: %w", err)
	}
	return exp, tr, nil
}

// newResource describes this process. It is schemaless so it merges with
// OTEL_RESOURCE_ATTRIBUTES without a schema URL conflict; on a conflict our
// service.name wins over OTEL_SERVICE_NAME.
func newResource(o Options) *resource.Resource {
	name := o.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if o.NodeID != "" {
		attrs = append(attrs, attribute.String("service.instance.id", o.NodeID))
	}
	return resource.NewSchemaless(attrs...)
}

// Enabled reports whether p exports spans. False for a nil Provider and
// for one built with an empty endpoint.
func (p *Provider) Enabled() bool {
	return p != nil && p.tracer != nil
}

// SetSampleRatio sets the fraction of new traces sampled from now on
// (config tracing.sample_ratio, applied without rebuilding the Provider).
// Values outside [0, 1] are clamped, NaN is 0. Safe for concurrent use
// with requests; spans already started keep their decision. A nil
// Provider ignores it.
func (p *Provider) SetSampleRatio(ratio float64) {
	if p != nil {
		p.sampler.set(ratio)
	}
}

// SampleRatio returns the ratio in force; 0 for a nil Provider.
func (p *Provider) SampleRatio() float64 {
	if p == nil {
		return 0
	}
	return p.sampler.get()
}

// Shutdown ends spans' export: it exports what is queued, stops the batch
// processor's goroutine and closes the exporter's connections. It returns
// when done or when ctx ends (then queued spans may be lost). Spans ended
// afterwards are dropped. Calling it more than once, or on a disabled or
// nil Provider, is harmless.
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	err := p.tp.Shutdown(ctx)
	p.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// loggingExporter sends export failures to the proxy's logger instead of
// the OpenTelemetry global error handler, which would otherwise print
// them unstructured on stderr.
type loggingExporter struct {
	sdktrace.SpanExporter
	log *slog.Logger
}

// ExportSpans implements sdktrace.SpanExporter. It reports a failure
// once, here, and returns nil so the batch processor does not report it
// again (it would only hand it to the global handler).
func (e loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "trace export failed",
			slog.Int("spans", len(spans)), slog.String("error", err.Error()))
	}
	return nil
}

var _ sdktrace.SpanExporter = loggingExporter{}
