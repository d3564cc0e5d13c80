// Package proxy is the hot path: the Handler that every client request
// enters (load the snapshot, match, police, hand to the route) and the
// Forwarder that sends it upstream and streams the answer back.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/keelproxy/keel/internal/certs"
	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/router"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/tracing"
)

// Handler is the data plane's http.Handler. For each request it loads the
// current snapshot once, matches a route, applies the route policy's
// request checks, runs the route's compiled handler and, when the request
// is done, emits exactly one access-log record and one set of metrics.
//
// Build it with NewHandler; it is safe for concurrent use.
type Handler struct {
	snapshots *snapshot.Holder
	accessLog *obs.AccessLog // nil: no access log
	metrics   *obs.Metrics   // nil: no metrics
	logger    *slog.Logger
	h2Limits  Limits
	tracing   *tracing.Provider // nil: no tracing
	altSvc    []string          // nil: no HTTP/3 listener to announce

	// idPrefix and idSeq make request ids unique without a random read
	// per request: a per-process random prefix and a counter.
	idPrefix string
	idSeq    atomic.Uint64

	// exchanges recycles per-request state and bufs the 32 KiB buffers
	// bodies are streamed through, so a request allocates neither and
	// memory stays bounded by the requests in flight, whatever the body
	// sizes.
	exchanges sync.Pool
	bufs      sync.Pool
}

// Options are a Handler's optional collaborators. The zero value logs
// nothing, records no metrics and enforces no HTTP/2 limits.
type Options struct {
	// AccessLog receives one record per request; nil writes none.
	AccessLog *obs.AccessLog
	// Metrics records per-route and per-endpoint instruments; nil none.
	Metrics *obs.Metrics
	// Logger is for the proxy's own messages; nil discards them.
	Logger *slog.Logger
	// H2Limits are enforced on HTTP/2 requests, which never pass through
	// the HTTP/1 parser that enforces them for HTTP/1.
	H2Limits Limits
	// Tracing opens the server and route-matching spans; nil (or a
	// disabled provider) traces nothing and costs nothing.
	Tracing *tracing.Provider
	// AltSvc is the Alt-Svc header value announcing the HTTP/3 listener
	// (`h3=":443"; ma=86400`), set on every response to a TLS request over
	// HTTP/1.1 or HTTP/2. Empty announces nothing.
	AltSvc string
}

// Limits are the request-size limits of config section server.
type Limits struct {
	// MaxURLBytes caps the request target; 0 means no limit.
	MaxURLBytes int
	// MaxHeaderCount caps the number of header fields; 0 means no limit.
	MaxHeaderCount int
}

// NewHandler returns a Handler serving the snapshots published in h.
func NewHandler(h *snapshot.Holder, o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var b [6]byte
	rand.Read(b[:])
	hd := &Handler{snapshots: h, accessLog: o.AccessLog, metrics: o.Metrics, logger: o.Logger,
		h2Limits: o.H2Limits, idPrefix: hex.EncodeToString(b[:]), tracing: o.Tracing}
	if o.AltSvc != "" {
		hd.altSvc = []string{o.AltSvc}
	}
	hd.exchanges.New = newExchange
	hd.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	return hd
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := h.exchanges.Get().(*exchange)
	defer func() {
		x.reset()
		h.exchanges.Put(x)
	}()
	x.bufs = &h.bufs
	x.snap = h.snapshots.Load()
	x.peer = peerAddr(r.RemoteAddr)
	x.trusted = isTrusted(x.peer, x.snap.TrustedProxies)
	x.rw.w = w
	x.requestID = h.requestID(r)
	if r.TLS != nil && r.ProtoMajor < 3 {
		x.altSvc = h.altSvc
	}

	if r.Body != nil && r.Body != http.NoBody {
		x.body = &countingBody{rc: r.Body}
		r.Body = x.body
	}
	var span trace.Span
	if h.tracing.Enabled() {
		var ctx context.Context
		ctx, span = h.tracing.StartServer(r.Context(), r)
		r = r.WithContext(ctx)
	}
	h.serve(&x.rw, r, x)
	status := h.finish(r, x, start)
	if span != nil {
		if x.route != nil {
			tracing.SetRoute(span, x.route.ID, x.rec.Pool)
		}
		tracing.EndServer(span, status, string(x.category))
	}
	if x.abort {
		// Deferred putExchange still runs; the server closes the HTTP/1
		// connection or resets the HTTP/2 stream without logging.
		panic(http.ErrAbortHandler)
	}
}

// serve matches and runs the route. Split from ServeHTTP so every early
// return still reaches finish.
func (h *Handler) serve(w *responseWriter, r *http.Request, x *exchange) {
	if r.ProtoMajor >= 2 {
		// HTTP/2 and HTTP/3 requests never passed the HTTP/1 parser.
		if c := h.h2Limits.check(r); c != "" {
			x.fail(w, c)
			return
		}
	}
	// The router wants the path as sent (escaped): decoding first would
	// make %2F indistinguishable from a segment separator.
	_, matchSpan := h.tracing.StartInternal(r.Context(), tracing.SpanRouteMatch)
	res := x.snap.Router.Match(r.Host, r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header)
	matchSpan.End()
	switch res.Status {
	case router.NotFound:
		x.fail(w, ErrNoRoute)
		return
	case router.MethodNotAllowed:
		w.Header()["Allow"] = []string{res.Allow}
		x.fail(w, ErrMethodNotAllowed)
		return
	}
	route := res.Rule.Value
	x.route = route
	x.matchedPrefix = res.MatchedPrefix

	if route.RequireMTLS && certs.VerifiedLeaf(r.TLS) == nil {
		x.fail(w, ErrMTLSRequired)
		return
	}
	if p := route.Policy; p != nil {
		if p.RequireTLS && r.TLS == nil {
			x.fail(w, ErrTLSRequired)
			return
		}
		if p.BodySizeLimit > 0 {
			if r.ContentLength > p.BodySizeLimit {
				x.fail(w, ErrRequestTooLarge)
				return
			}
			if x.body != nil {
				x.body.limit = p.BodySizeLimit
			}
		}
		if p.Timeout > 0 {
			ctx, cancel := context.WithTimeoutCause(r.Context(), p.Timeout, errTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
	}
	route.Handler.ServeHTTP(w, r)
}

// check enforces the limits on an HTTP/2 request.
func (l Limits) check(r *http.Request) Category {
	if l.MaxURLBytes > 0 && len(r.RequestURI) > l.MaxURLBytes {
		return ErrURITooLong
	}
	if l.MaxHeaderCount > 0 {
		n := 0
		for _, vv := range r.Header {
			n += len(vv)
		}
		if n > l.MaxHeaderCount {
			return ErrHeaderTooLarge
		}
	}
	return ""
}

// fail answers with a proxy-generated error.
func (x *exchange) fail(w http.ResponseWriter, c Category) {
	x.category = c
	writeError(w, c, x.requestID)
}

// finish emits the request's access-log record and metrics, once.
func (h *Handler) finish(r *http.Request, x *exchange, start time.Time) int {
	d := time.Since(start)
	status := x.rw.status
	if status == 0 {
		status = http.StatusOK
		if x.rw.hijacked {
			status = http.StatusSwitchingProtocols
		}
	}
	if x.category == ErrClientClosed {
		status = StatusClientClosed
	}
	routeID, poolID := "", ""
	if x.route != nil {
		routeID, poolID = x.route.ID, x.route.PoolID
		if x.pool != "" {
			poolID = x.pool
		}
		x.route.Metrics.Observe(x.pool, status, d, x.bytesIn(), x.rw.written)
	}
	if x.category != "" {
		h.metrics.ProxyError(string(x.category))
	}
	if (!x.snap.AccessLog && !x.forceLog) || h.accessLog == nil {
		return status
	}
	rec := &x.rec
	rec.Time = start
	rec.RequestID = x.requestID
	rec.Method = r.Method
	rec.Path = x.snap.Redactor.Path(r.RequestURI)
	rec.Host = r.Host
	rec.Route = routeID
	rec.Pool = poolID
	rec.Status = status
	rec.Duration = d
	rec.BytesIn = x.bytesIn()
	rec.BytesOut = x.rw.written
	rec.ClientIP = x.client(r, x.snap.TrustedProxies)
	rec.ClientCertSubject = certs.VerifiedSubject(r.TLS)
	rec.Error = string(x.category)
	rec.ConfigVersion = x.snap.Version
	h.accessLog.Log(rec)
	return status
}

// requestID keeps a well-formed incoming X-Request-Id (1-128 chars of
// [A-Za-z0-9._:-]) and otherwise makes a new one.
func (h *Handler) requestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	var buf [40]byte
	b := append(buf[:0], h.idPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, h.idSeq.Add(1), 36)
	return string(b)
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

var _ http.Handler = (*Handler)(nil)
