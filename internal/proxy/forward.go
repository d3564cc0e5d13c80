package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/keelproxy/keel/internal/obs"
	"github.com/keelproxy/keel/internal/resilience"
	"github.com/keelproxy/keel/internal/router"
	"github.com/keelproxy/keel/internal/tracing"
	"github.com/keelproxy/keel/internal/upstream"
)

// Forwarder sends a matched request to an endpoint of its pool and streams
// the response back (SPEC section 5). One Forwarder is built per route at
// snapshot compile time; it is immutable and safe for concurrent use.
type Forwarder struct {
	// Pool is where requests go. Required.
	Pool *upstream.Pool
	// RewritePrefix replaces the matched path_prefix when HasRewrite.
	RewritePrefix string
	HasRewrite    bool
	// RewriteFrom is what RewritePrefix replaces on routes without a
	// path_prefix: the exact path of a `path` route, "/" for a route with
	// no path matcher. Prefix routes replace the prefix that matched.
	RewriteFrom string
	// TrustedProxies are the peers whose X-Forwarded-* headers are kept and
	// appended to; empty trusts no one. compile sets the snapshot's list
	// here, and the Handler has already classified the peer against that
	// same list, so the Forwarder reads the list itself only when it is
	// used without a Handler.
	TrustedProxies []netip.Prefix
	// Via is this proxy's Via entry, e.g. "1.1 keel". Empty sends none.
	Via string
	// NeedClientIP is set when the pool hashes on the client address; the
	// address string is only computed then.
	NeedClientIP bool

	// RouteID labels the retry metrics.
	RouteID string
	// Breaker is the circuit breaker guarding the pool for this route:
	// the route's own (policy circuit_breaker) or the pool's; nil means
	// none. It lives in the runtime registry and survives snapshots.
	Breaker *resilience.Breaker
	// Retry and Hedge are the route policy's retries and hedging; nil
	// means none.
	Retry *RetryPolicy
	Hedge *HedgePolicy
	// Metrics records retry outcomes; nil records nothing.
	Metrics *obs.Metrics
	// Tracing records upstream selection, breaker and attempt spans and
	// sends traceparent upstream; nil traces nothing.
	Tracing *tracing.Provider
}

// copyBufSize is the size of the buffers bodies are streamed through.
const copyBufSize = 32 << 10

// ServeHTTP forwards r. Errors before the response started become proxy
// error responses; failures after that abort the stream.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchangeOf(w)
	if x == nil {
		// Used outside the Handler (tests, tools): keep a private exchange
		// so the code below need not check.
		x = newExchange().(*exchange)
		x.rw.w = w
		w = &x.rw
		x.peer = peerAddr(r.RemoteAddr)
		x.trusted = isTrusted(x.peer, f.TrustedProxies)
	}

	var cip string
	if f.NeedClientIP {
		cip = x.client(r, f.TrustedProxies)
	}
	upgrade := upgradeType(r.Header)
	resp, ep, cat, held := f.forward(r, x, cip, upgrade)
	if f.Breaker != nil {
		x.rec.BreakerState = f.Breaker.State().String()
	}
	if held {
		defer ep.Release()
	}
	if x.attemptCancel != nil {
		defer x.attemptCancel(nil)
	}
	switch cat {
	case "":
	case ErrClientClosed:
		x.category = cat
		return
	case ErrCircuitOpen:
		// Tell the client (and the operator reading headers) which pool's
		// breaker refused, without contacting the upstream.
		w.Header()["X-Proxy-Circuit-Open"] = []string{f.Pool.ID()}
		fallthrough
	default:
		x.fail(w, cat)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		f.serveUpgrade(w, r, x, resp, upgrade)
		return
	}
	f.copyResponse(w, r, x, resp)
}

// outgoing builds the upstream request. The client's request is never
// modified: the outgoing one has its own URL and header map (STYLE: keep
// inbound and outbound requests apart).
func (f *Forwarder) outgoing(ctx context.Context, r *http.Request, ep *upstream.Endpoint, matchedPrefix, upgrade string, peer netip.Addr, trusted bool) *http.Request {
	u := &url.URL{Scheme: ep.Scheme(), Host: ep.Address(), RawQuery: r.URL.RawQuery}
	if f.HasRewrite {
		from := matchedPrefix
		if from == "" {
			from = f.RewriteFrom
		}
		u.Path = rewritePath(router.Normalize(r.URL.EscapedPath()), from, f.RewritePrefix)
		// The rewritten path is already in escaped form.
		if p, err := url.PathUnescape(u.Path); err == nil {
			u.RawPath, u.Path = u.Path, p
		}
	} else {
		u.Path, u.RawPath = r.URL.Path, r.URL.RawPath
	}
	out := &http.Request{
		Method:     r.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     copyRequestHeader(r.Header, upgrade),
		Host:       r.Host,
		Trailer:    r.Trailer,
	}
	out = out.WithContext(ctx)
	// A body-less request must go out with a nil Body: a non-nil Body with
	// ContentLength 0 makes the Transport probe it and may send chunked.
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		out.Body = r.Body
		out.ContentLength = r.ContentLength
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	setForwarded(out.Header, peer, trusted, proto, r.Host, f.Via)
	setClientCert(out.Header, r.TLS, trusted)
	return out
}

// rewritePath replaces prefix at the start of path with repl, keeping
// exactly one slash at the seam.
func rewritePath(path, prefix, repl string) string {
	rest := strings.TrimPrefix(path, prefix)
	switch {
	case rest == "":
		return repl
	case strings.HasSuffix(repl, "/") && strings.HasPrefix(rest, "/"):
		return repl + rest[1:]
	case !strings.HasSuffix(repl, "/") && !strings.HasPrefix(rest, "/"):
		return repl + "/" + rest
	}
	return repl + rest
}

// copyResponse streams resp to the client: headers (hop-by-hop removed),
// status, body, trailers.
func (f *Forwarder) copyResponse(w http.ResponseWriter, r *http.Request, x *exchange, resp *http.Response) {
	defer resp.Body.Close()
	removeHopByHop(resp.Header)
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)

	// Stream as bytes arrive for responses of unknown length and event
	// streams (SPEC section 5); others go through the server's buffer.
	flush := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if r.Method == http.MethodHead {
		return
	}
	if err := copyBody(w, resp.Body, flush, x); err != nil {
		// The status line is gone; the only honest signal left is to abort
		// the stream (HTTP/1: close, HTTP/2: RST_STREAM).
		switch {
		case context.Cause(r.Context()) == errTimeout:
			x.category, x.abort = ErrRequestTimeout, true
		case errors.Is(err, errClientWrite) || r.Context().Err() != nil:
			x.category = ErrClientClosed
		default:
			x.category, x.abort = ErrUpstreamReset, true
		}
		return
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}

// errClientWrite marks a failure writing to the client, as opposed to
// reading from the upstream.
var errClientWrite = errors.New("client write failed")

// copyBody copies src to w through a pooled buffer, flushing after each
// write when flush is set.
func copyBody(w http.ResponseWriter, src io.Reader, flush bool, x *exchange) error {
	bp := x.getBuf()
	defer x.putBuf(bp)
	buf := *bp
	var fl http.Flusher
	if flush {
		fl, _ = w.(http.Flusher)
	}
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return errClientWrite
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// serveUpgrade completes a protocol switch (WebSocket and others): it
// answers 101 to the client over the hijacked connection and then copies
// bytes both ways until either side closes.
func (f *Forwarder) serveUpgrade(w http.ResponseWriter, r *http.Request, x *exchange, resp *http.Response, upgrade string) {
	backend, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || upgrade == "" || !strings.EqualFold(resp.Header.Get("Upgrade"), upgrade) {
		resp.Body.Close()
		x.fail(w, ErrUpstreamReset)
		return
	}
	defer backend.Close()
	removeHopByHop(resp.Header)
	resp.Header["Connection"] = []string{"Upgrade"}
	resp.Header["Upgrade"] = []string{upgrade}

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		x.fail(w, ErrBadRequest)
		return
	}
	defer conn.Close()
	x.rw.status = http.StatusSwitchingProtocols
	x.rw.wroteHeader = true
	res := &http.Response{StatusCode: http.StatusSwitchingProtocols, ProtoMajor: 1, ProtoMinor: 1, Header: resp.Header}
	if err := res.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	// Client bytes the server had already buffered belong to the new
	// protocol: they go first.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := backend.Write(b); err != nil {
			return
		}
	}
	errc := make(chan error, 2)
	go func() { errc <- copyRaw(backend, conn, x) }()
	go func() { errc <- copyRaw(conn, backend, x) }()
	// Either direction ending ends the tunnel: closing both sides unblocks
	// the other copier, which we then wait for so no goroutine outlives the
	// request.
	pending := 2
	select {
	case <-errc:
		pending--
	case <-r.Context().Done():
	}
	conn.Close()
	backend.Close()
	for ; pending > 0; pending-- {
		<-errc
	}
}

// copyRaw copies an upgraded stream through a pooled buffer.
func copyRaw(dst io.Writer, src io.Reader, x *exchange) error {
	bp := x.getBuf()
	defer x.putBuf(bp)
	_, err := io.CopyBuffer(dst, src, *bp)
	return err
}

var _ http.Handler = (*Forwarder)(nil)
