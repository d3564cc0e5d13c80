package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/snapshot"
)

// exchange is the per-request state of one client request: what the access
// log and metrics report once it finishes, and what the forwarder needs from
// the handler (the matched route and prefix). It rides on the
// ResponseWriter (see responseWriter) so that middleware composed between
// the handler and the forwarder need not thread it through a context, which
// would cost a Request copy per request. Exchanges are pooled.
type exchange struct {
	rw responseWriter
	// body wraps the client's request body; nil when there is none. It is
	// allocated per request, never pooled, because an upstream transport
	// may still read or close it from its own goroutine after the handler
	// returned (net/http's HTTP/2 client does).
	body *countingBody
	rec  obs.AccessRecord

	snap  *snapshot.Snapshot
	route *snapshot.Route
	// altSvc is the Alt-Svc value announcing HTTP/3 on this response
	// (TLS requests over HTTP/1 and HTTP/2 while an HTTP/3 listener runs);
	// nil announces nothing. Shared and read-only.
	altSvc        []string
	matchedPrefix string
	requestID     string
	// category is set when the proxy generated or caused the response
	// status (an error of SPEC section 6); "" for upstream responses.
	category Category
	// pool is the pool that served the request when it differs from the
	// route's default (canary, cohort); "" otherwise.
	pool string
	// abort is set when the response failed after its status line went
	// out: the handler then aborts the stream once the request is logged.
	abort bool
	// bufs is the Handler's pool of body-copy buffers; nil outside one.
	bufs *sync.Pool
	// peer is the client connection's address and trusted whether it is
	// one of the snapshot's trusted proxies; computed once per request.
	peer    netip.Addr
	trusted bool
	// clientIP is the client address as logged and hashed; "" until
	// someone needs it.
	clientIP string
	// attemptCancel ends the context of the attempt whose response is
	// being copied (per-try timeout, hedge winner); the Forwarder calls it
	// once the body is done with. nil when the attempt used the request's
	// own context.
	attemptCancel context.CancelCauseFunc
	// respEdits are the response header transforms of the route's chain,
	// in chain order; applied when the status is written.
	respEdits []*HeaderEdit
	// forceLog is set by an access_log stage: the request is logged even
	// when logging.access_log is off.
	forceLog bool
}

// client returns the client address (see clientIP in headers.go), computed
// at most once per request.
func (x *exchange) client(r *http.Request, trusted []netip.Prefix) string {
	if x.clientIP == "" {
		x.clientIP = clientIP(x.peer, x.trusted, r.Header["X-Forwarded-For"], trusted).String()
	}
	return x.clientIP
}

// newExchange makes an exchange for the Handler's pool.
func newExchange() any {
	x := new(exchange)
	x.rw.x = x
	return x
}

// reset clears x for reuse, keeping its self-reference.
func (x *exchange) reset() {
	*x = exchange{}
	x.rw.x = x
}

// getBuf returns a body-copy buffer from the request's pool, or a fresh
// one for a Forwarder used without a Handler.
func (x *exchange) getBuf() *[]byte {
	if x.bufs != nil {
		return x.bufs.Get().(*[]byte)
	}
	b := make([]byte, copyBufSize)
	return &b
}

func (x *exchange) putBuf(b *[]byte) {
	if x.bufs != nil {
		x.bufs.Put(b)
	}
}

// responseWriter wraps the server's ResponseWriter to learn the status and
// the bytes sent, for the access log and metrics. It passes through the
// optional interfaces a proxy needs (Flusher, Hijacker) and exposes Unwrap
// for http.ResponseController.
type responseWriter struct {
	w           http.ResponseWriter
	x           *exchange
	status      int
	written     int64
	wroteHeader bool
	hijacked    bool
}

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Interim responses (103 Early Hints) pass through; the final
		// status is still to come.
		rw.w.WriteHeader(code)
		return
	}
	rw.status = code
	rw.wroteHeader = true
	if rw.x.altSvc != nil {
		// Set last so an upstream's own Alt-Svc (its listeners, not ours)
		// never reaches the client.
		rw.w.Header()["Alt-Svc"] = rw.x.altSvc
	}
	// Response header transforms run here, on the final header set,
	// whoever wrote it (upstream copy or a proxy error), innermost stage
	// first: the response phase runs the chain backwards.
	for i := len(rw.x.respEdits) - 1; i >= 0; i-- {
		rw.x.respEdits[i].apply(rw.w.Header())
	}
	rw.w.WriteHeader(code)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	n, err := rw.w.Write(p)
	rw.written += int64(n)
	return n, err
}

// Flush sends buffered response bytes to the client now.
func (rw *responseWriter) Flush() {
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// FlushError is Flush reporting failure, for http.ResponseController.
func (rw *responseWriter) FlushError() error {
	if f, ok := rw.w.(interface{ FlushError() error }); ok {
		return f.FlushError()
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
		return nil
	}
	return http.ErrNotSupported
}

// Hijack takes over the client connection, for upgraded protocols.
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rw.w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := h.Hijack()
	if err == nil {
		rw.hijacked = true
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

// exchangeOf finds the exchange of a request from the ResponseWriter that
// reaches the forwarder, looking through wrappers that implement Unwrap.
func exchangeOf(w http.ResponseWriter) *exchange {
	for {
		switch t := w.(type) {
		case *responseWriter:
			return t.x
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

// bytesIn is the number of request body bytes read from the client.
func (x *exchange) bytesIn() int64 {
	if x.body == nil {
		return 0
	}
	return x.body.n.Load()
}

// bodyErr is the first error reading the client's body, if any.
func (x *exchange) bodyErr() error {
	if x.body == nil {
		return nil
	}
	return x.body.firstErr()
}

// countingBody counts request body bytes read and enforces the route's
// body_size_limit on bodies of any framing, chunked included.
//
// Reads come from whichever goroutine sends the body upstream, while the
// handler reads the count afterwards, so the counters are atomic.
type countingBody struct {
	rc    io.ReadCloser
	limit int64 // 0 = none; set before the body is handed on
	n     atomic.Int64
	// err is the first error reading the client's body other than EOF: a
	// malformed chunked body or a client gone mid-upload. It tells a
	// client fault from an upstream one when the round trip then fails.
	err atomic.Pointer[error]
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.limit > 0 && b.n.Load() > b.limit {
		return 0, errBodyTooLarge
	}
	n, err := b.rc.Read(p)
	total := b.n.Add(int64(n))
	if b.limit > 0 && total > b.limit {
		return n, errBodyTooLarge
	}
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (b *countingBody) firstErr() error {
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (b *countingBody) Close() error { return b.rc.Close() }

var _ http.Flusher = (*responseWriter)(nil)
var _ http.Hijacker = (*responseWriter)(nil)
