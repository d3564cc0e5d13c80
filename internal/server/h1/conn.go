package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
)

// Connection states, for Shutdown. Transitions out of stateNew and
// stateIdle are compare-and-swaps, so Shutdown and the connection agree
// on who closes an idle connection.
const (
	stateNew    int32 = iota + 1 // accepted, no byte of a request yet
	stateActive                  // reading a request, running the handler or writing
	stateIdle                    // between requests, or lingering before close
	stateClosed                  // closed by the server, or hijacked
)

// h2Preface starts every HTTP/2 connection (RFC 9113 section 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// outcome is what the connection does after a request.
type outcome int

const (
	keepGoing   outcome = iota + 1 // read the next request
	closeLinger                    // a response went out: close gracefully
	closeNow                       // close at once (I/O error, timeout, panic)
	handedOff                      // hijacked: the connection is not ours
)

// conn is one client connection. Its goroutine (serve) owns it; a handler
// touches it only through the response, body and request context.
type conn struct {
	s *Server
	// raw is the accepted connection: the server closes it from other
	// goroutines (Close, Shutdown), which tears down whatever wraps it.
	// rwc is what the connection's goroutine reads and writes: raw, or
	// raw behind PrepareConn and TLS, set before any other goroutine
	// looks at it.
	raw        net.Conn
	rwc        net.Conn
	tlsState   *tls.ConnectionState // nil for plaintext
	remoteAddr string
	acceptedAt time.Time
	state      atomic.Int32
	cancel     context.CancelFunc // cancels the connection's context

	cr   connReader
	bufr *bufio.Reader
	wb   *writeBufs    // nil while idle; bw and pre come from it
	bw   *bufio.Writer // nil while idle
	p    parser

	// Write side, used by whichever goroutine writes the response.
	werr              error         // first write error; the connection is dead
	slowTimeout       time.Duration // copy of the server's, 0 = none
	userWriteDeadline time.Time     // from http.ResponseController
	armed             time.Time     // the write deadline currently set
	forceArm          bool

	// Reused for every response on the connection.
	respHeader  http.Header
	pre         []byte // held-back body, see response.write; nil while idle
	hdrBuf      []byte
	keys        []string
	trailerKeys []string
}

// exchange holds one request's state in a single allocation: the request
// handed to the handler, its URL and field values, the response writer,
// the body and the context. A handler that keeps the request keeps it all.
type exchange struct {
	req  http.Request
	url  url.URL
	vals [16]string
	w    response
	body body
	ctx  reqContext
}

func (s *Server) newConn(rw net.Conn) *conn {
	c := &conn{
		s:           s,
		raw:         rw,
		rwc:         rw,
		acceptedAt:  time.Now(),
		slowTimeout: s.slowClientTimeout(),
		respHeader:  make(http.Header),
		p: parser{
			maxHeaderBytes: s.maxHeaderBytes(),
			maxHeaderCount: s.maxHeaderCount(),
			maxURLBytes:    s.maxURLBytes(),
		},
	}
	if ra := rw.RemoteAddr(); ra != nil {
		c.remoteAddr = ra.String()
	}
	c.state.Store(stateNew)
	return c
}

func (c *conn) serve(ctx context.Context) {
	s := c.s
	defer s.untrack(c)
	if s.PrepareConn != nil || s.TLSConfig != nil {
		if !c.prepare() {
			_ = c.raw.Close()
			return
		}
		if c.tlsState != nil {
			if next := c.tlsState.NegotiatedProtocol; next != "" && next != "http/1.1" {
				c.serveNextProto(next)
				return
			}
		}
	}
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.rwc.LocalAddr())
	ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	c.cr.init(c)
	c.bufr = s.getReader(&c.cr)
	s.acquireWrite(c)

	if d := s.readHeaderTimeout(); d > 0 {
		_ = c.rwc.SetReadDeadline(c.acceptedAt.Add(d))
	}
	if s.H2C != nil {
		isH2, err := c.sniffPreface()
		if err != nil {
			c.finish(closeNow)
			return
		}
		if isH2 {
			c.serveH2C()
			return
		}
	}
	for first := true; ; first = false {
		o := c.serveOne(ctx, first)
		if o != keepGoing {
			c.finish(o)
			return
		}
	}
}

// finish closes the connection (unless handed off) and recycles buffers.
func (c *conn) finish(o outcome) {
	switch o {
	case closeLinger:
		c.lingerClose()
	case closeNow:
		if c.bw != nil && c.werr == nil {
			_ = c.bw.Flush() // whatever part of a response was committed
		}
		_ = c.rwc.Close()
	case handedOff:
		// The hijacker owns the conn and the bufio.Reader.
		c.s.releaseWrite(c)
		return
	}
	c.s.putReader(c.bufr)
	c.s.releaseWrite(c)
}

// serveOne reads one request and serves it.
func (c *conn) serveOne(ctx context.Context, first bool) outcome {
	if !c.awaitRequest(first) {
		return closeNow
	}
	ex := new(exchange)
	h := head{urlBuf: &ex.url, vals: ex.vals[:]}
	err := c.p.readHead(c.bufr, &h)
	c.p.release()
	if err != nil {
		if re, ok := errIsReq(err); ok {
			c.writeReject(re)
			return closeLinger
		}
		return closeNow // EOF, timeout or reset: nobody to answer
	}
	// Body reads have no server deadline: the handler (the proxy's
	// policy timeouts) bounds them, or http.ResponseController does.
	_ = c.rwc.SetReadDeadline(time.Time{})
	return c.handle(ctx, ex, &h)
}

// awaitRequest waits for the first byte of a request and marks the
// connection active, then arms the head deadline.
func (c *conn) awaitRequest(first bool) bool {
	s := c.s
	from := stateNew
	if !first {
		from = stateIdle
	}
	if c.bufr.Buffered() == 0 {
		if !first {
			_ = c.rwc.SetReadDeadline(deadline(s.idleTimeout()))
		}
		if _, err := c.bufr.Peek(1); err != nil {
			return false
		}
	}
	if c.wb == nil {
		s.acquireWrite(c)
	}
	if !c.state.CompareAndSwap(from, stateActive) {
		return false // Shutdown or Close took the connection
	}
	if !first {
		_ = c.rwc.SetReadDeadline(deadline(s.readHeaderTimeout()))
	}
	return true
}

func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// handle runs the handler for a parsed head and completes the response.
func (c *conn) handle(ctx context.Context, ex *exchange, h *head) outcome {
	s := c.s
	hasBody := h.contentLength != 0
	gen := c.cr.begin(!hasBody)
	rctx, cancel := context.WithCancel(ctx)
	ex.ctx.Context, ex.ctx.cr, ex.ctx.gen = rctx, &c.cr, gen
	c.newRequest(&ex.req, h, &ex.ctx)
	r := &ex.req
	var b *body
	if hasBody {
		b = &ex.body
		b.init(c, &ex.w, r, h, gen)
		r.Body = b
	}
	w := &ex.w
	w.init(c, r, b, h)
	c.userWriteDeadline = time.Time{}

	panicked := c.runHandler(w, r)
	cancel() // net/http semantics: the context ends with the handler
	w.handlerDone.Store(true)
	if w.hijacked.Load() {
		return handedOff
	}
	if panicked {
		c.cr.stop()
		if b != nil {
			b.finish(false, 0)
		}
		return closeNow
	}
	w.finalize()
	if c.werr == nil {
		_ = c.bw.Flush()
	}
	c.cr.stop()
	keep := w.reusable() && !s.shuttingDown()
	if b != nil {
		keep = b.finish(keep, s.readHeaderTimeout()) && keep
	}
	if !keep {
		return closeLinger
	}
	if c.bufr.Buffered() == 0 {
		s.releaseWrite(c) // flushed: idle connections hold no write buffers
	}
	// Checked again after the CAS: SetKeepAlivesEnabled(false) or
	// Shutdown may have swept idle connections while this one was still
	// active, after its response had already promised keep-alive.
	if !c.state.CompareAndSwap(stateActive, stateIdle) || !s.keepAlivesOn() {
		return closeLinger
	}
	return keepGoing
}

// newRequest fills dst the way net/http's server fills a request.
// WithContext is the only way to set the context from outside net/http;
// it is inlined and its copy is dereferenced at once, so the compiler
// keeps that copy on the stack.
func (c *conn) newRequest(dst *http.Request, h *head, ctx context.Context) {
	req := http.Request{
		Method:        h.method,
		URL:           h.url,
		Proto:         h.proto,
		ProtoMajor:    1,
		ProtoMinor:    h.minor,
		Header:        h.header,
		Body:          http.NoBody,
		ContentLength: h.contentLength,
		Close:         h.close,
		Host:          h.host,
		Trailer:       h.trailer,
		RemoteAddr:    c.remoteAddr,
		RequestURI:    h.target,
		TLS:           c.tlsState,
	}
	if h.chunked {
		req.TransferEncoding = []string{"chunked"}
	}
	*dst = *req.WithContext(ctx)
}

// runHandler calls the handler, recovering a panic like net/http: logged
// with its stack, except http.ErrAbortHandler which aborts silently.
func (c *conn) runHandler(w *response, r *http.Request) (panicked bool) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		panicked = true
		if v == http.ErrAbortHandler {
			return
		}
		buf := make([]byte, 64<<10)
		buf = buf[:runtime.Stack(buf, false)]
		c.s.logger().Error("h1: panic serving request", "remote", c.remoteAddr,
			"method", r.Method, "panic", fmt.Sprint(v), "stack", string(buf))
	}()
	c.s.Handler.ServeHTTP(w, r)
	return false
}

// writeReject answers a request the parser refused, with the SPEC's error
// body and headers (section 6) and Connection: close.
func (c *conn) writeReject(re *reqError) {
	id := strconv.FormatUint(rand.Uint64()|1<<63, 16)
	body := `{"error":"` + re.category + `","message":"` + re.msg + `","request_id":"` + id + "\"}\n"
	b := appendStatusLine(c.hdrBuf[:0], 1, re.status)
	b = append(b, "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nX-Proxy-Error: "...)
	b = append(b, re.category...)
	b = append(b, "\r\nX-Request-Id: "...)
	b = append(b, id...)
	b = append(b, "\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	b = append(b, c.s.date.Line(time.Now())...)
	b = append(b, "\r\n"...)
	b = append(b, body...)
	c.hdrBuf = b[:0]
	if _, err := c.bw.Write(b); err == nil {
		_ = c.bw.Flush()
	}
}

// lingerClose closes after a final response in two steps (RFC 9112
// 9.6): half-close, then read and discard what the client still sends
// until it closes or a short time passes. Closing with unread input would
// make the kernel send a RST that can destroy the response before the
// client reads it.
func (c *conn) lingerClose() {
	c.state.CompareAndSwap(stateActive, stateIdle) // let Shutdown cut the linger short
	if c.wb == nil {
		c.s.acquireWrite(c) // for its buffer
	}
	if c.werr == nil {
		_ = c.bw.Flush()
	}
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if ok && c.werr == nil && cw.CloseWrite() == nil {
		_ = c.rwc.SetReadDeadline(time.Now().Add(lingerTimeout))
		buf := c.pre[:cap(c.pre)] // free now: any response is flushed
		for n := 0; n < lingerMaxBytes; {
			m, err := c.rwc.Read(buf)
			n += m
			if err != nil {
				break
			}
		}
	}
	_ = c.rwc.Close()
}

// sniffPreface reports whether the connection starts with the HTTP/2
// preface, reading only as far as the bytes keep matching it, so a short
// HTTP/1 request is never waited on.
func (c *conn) sniffPreface() (bool, error) {
	for n := 1; ; {
		if _, err := c.bufr.Peek(n); err != nil {
			return false, err
		}
		m := min(c.bufr.Buffered(), len(h2Preface))
		b, _ := c.bufr.Peek(m)
		if string(b) != h2Preface[:m] {
			return false, nil
		}
		if m == len(h2Preface) {
			return true, nil
		}
		n = m + 1
	}
}

// prepare runs PrepareConn and the TLS handshake, both bounded by
// ReadHeaderTimeout from the accept, and reports whether the connection is
// still worth serving.
func (c *conn) prepare() bool {
	s := c.s
	if d := s.readHeaderTimeout(); d > 0 {
		_ = c.rwc.SetDeadline(c.acceptedAt.Add(d))
	}
	if s.PrepareConn != nil {
		rw, err := s.PrepareConn(c.rwc)
		if err != nil {
			s.logger().Debug("h1: connection refused by PrepareConn", "remote", c.remoteAddr, "error", err)
			return false
		}
		c.rwc = rw
		if ra := rw.RemoteAddr(); ra != nil {
			c.remoteAddr = ra.String()
		}
	}
	if s.TLSConfig != nil {
		tc := tls.Server(c.rwc, s.TLSConfig)
		if err := tc.Handshake(); err != nil {
			// Scanners, clients that distrust the certificate and old
			// protocol versions end here: debug, not an operator's
			// concern one by one.
			s.logger().Debug("h1: TLS handshake failed", "remote", c.remoteAddr, "error", err)
			return false
		}
		st := tc.ConnectionState()
		c.tlsState = &st
		c.rwc = tc
	}
	// The write side was bounded for the handshake only; serve sets the
	// read deadline of the first request itself.
	_ = c.rwc.SetWriteDeadline(time.Time{})
	return true
}

// serveNextProto hands a TLS connection that negotiated a protocol other
// than HTTP/1.1 to its TLSNextProto function, or closes it.
func (c *conn) serveNextProto(proto string) {
	fn := c.s.TLSNextProto[proto]
	if fn == nil || !c.state.CompareAndSwap(stateNew, stateActive) {
		_ = c.rwc.Close()
		return
	}
	_ = c.rwc.SetDeadline(time.Time{})
	fn(c.rwc.(*tls.Conn))
	_ = c.rwc.Close()
}

// serveH2C hands the connection to the H2C function and closes it when
// that returns.
func (c *conn) serveH2C() {
	if !c.state.CompareAndSwap(stateNew, stateActive) {
		_ = c.rwc.Close()
		return
	}
	_ = c.rwc.SetDeadline(time.Time{})
	c.s.H2C(c.rwc, c.bufr)
	_ = c.rwc.Close()
	// The reader was handed over and may still be referenced: not pooled.
	c.s.releaseWrite(c)
}
