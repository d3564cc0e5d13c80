package h1

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/httpwire"
)

// errHandlerDone is returned by ResponseWriter methods called after the
// handler returned, which net/http documents as invalid.
var errHandlerDone = errors.New("h1: ResponseWriter used after the handler returned")

// response is the http.ResponseWriter of one request. It also implements
// http.Flusher, http.Hijacker, io.StringWriter and the optional methods
// http.ResponseController looks for. Like net/http's, it is for the
// handler's goroutine; only the 100-continue path (driven by body reads on
// any goroutine) synchronises with it, through mu.
type response struct {
	c      *conn
	req    *http.Request
	body   *body       // nil when the request has no body
	header http.Header // the handler's map: the connection's, cleared per request

	minor       int  // the request's HTTP minor version
	isHEAD      bool // HEAD responses never carry a body (RFC 9110 9.3.2)
	reqClose    bool // the request asked to close, or is HTTP/1.0 without keep-alive
	keepAlive10 bool // an HTTP/1.0 request asked for keep-alive

	handlerDone atomic.Bool
	hijacked    atomic.Bool

	mu           sync.Mutex // orders interim responses, 100-continue and the commit
	committed    bool       // the final head is in the connection's writer
	continueSent bool       // a 100 Continue went out (RFC 9110 15.2.1: at most one)

	status      int
	wroteHeader bool // the final status is fixed and the header snapshot taken

	// Snapshot of the header map taken by the final WriteHeader: as in
	// net/http, later changes to the map do not change the response head.
	declaredCL int64 // the handler's Content-Length, -1 without one
	hasTE      bool
	teIdentity bool
	hasDate    bool
	trailers   bool // a Trailer field or TrailerPrefix keys force chunking
	connValues []string

	// Framing, decided by commit.
	chunked       bool
	closeAfter    bool
	contentLength int64 // -1 when not sent
	written       int64 // body bytes accepted from the handler
}

func (w *response) init(c *conn, r *http.Request, b *body, h *head) {
	clear(c.respHeader)
	*w = response{
		c: c, req: r, body: b, header: c.respHeader,
		minor: h.minor, isHEAD: h.method == http.MethodHead,
		reqClose: h.close, keepAlive10: h.keepAlive10,
		declaredCL: -1, contentLength: -1,
	}
}

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. Informational codes (1xx
// but 101) are written and flushed at once and may repeat; they are not
// sent to HTTP/1.0 clients (RFC 9110 15.2). A second final code is ignored.
func (w *response) WriteHeader(code int) {
	if w.handlerDone.Load() {
		return
	}
	w.writeHeader(code)
}

func (w *response) writeHeader(code int) {
	if w.hijacked.Load() || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		// Like net/http: a programming error, recovered by the server.
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInterim(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	w.snapshot()
}

// snapshot renders the handler's header fields into the connection's
// head buffer, keeping aside the fields the server itself decides.
func (w *response) snapshot() {
	c := w.c
	c.hdrBuf = c.hdrBuf[:0]
	c.trailerKeys = c.trailerKeys[:0]
	keys := c.sortedKeys(w.header)
	for _, k := range keys {
		vv := w.header[k]
		switch k {
		case "Content-Length":
			if len(vv) > 0 {
				n, ok := httpwire.ParseDecimal(httpwire.TrimOWS(vv[0]))
				if !ok {
					c.s.logger().Warn("h1: handler set an invalid Content-Length; ignored", "value", vv[0])
					continue
				}
				w.declaredCL = n
			}
			continue
		case "Transfer-Encoding":
			w.hasTE = len(vv) > 0
			w.teIdentity = w.hasTE && strings.EqualFold(httpwire.TrimOWS(vv[0]), "identity")
			continue
		case "Connection":
			w.connValues = vv
			continue
		case "Date":
			w.hasDate = true
		case "Trailer":
			w.declareTrailers(vv)
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.trailers = true
			continue
		}
		c.hdrBuf = appendField(c.hdrBuf, k, vv)
	}
	clear(keys)
}

func (w *response) declareTrailers(vv []string) {
	for _, v := range vv {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			if elem = httpwire.TrimOWS(elem); httpwire.ValidToken(elem) {
				w.c.trailerKeys = append(w.c.trailerKeys, httpwire.CanonicalKey(elem))
				w.trailers = true
			}
		}
	}
}

// appendField appends "key: value\r\n" for every value. Invalid names are
// dropped and CR/LF in values become spaces, as net/http does, so that a
// handler echoing client data cannot split the response.
func appendField(b []byte, k string, vv []string) []byte {
	if !httpwire.ValidToken(k) {
		return b
	}
	for _, v := range vv {
		b = append(b, k...)
		b = append(b, ": "...)
		start := len(b)
		b = append(b, v...)
		if strings.ContainsAny(v, "\r\n") {
			for i := start; i < len(b); i++ {
				if b[i] == '\r' || b[i] == '\n' {
					b[i] = ' '
				}
			}
		}
		b = append(b, "\r\n"...)
	}
	return b
}

// writeInterim writes a 1xx response with the current header fields,
// which is how 103 Early Hints carry their Link fields.
func (w *response) writeInterim(code int) {
	if w.minor == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed {
		return
	}
	if code == http.StatusContinue {
		if w.continueSent {
			return // a proxy relaying the upstream's 100 after ours
		}
		w.continueSent = true
	}
	c := w.c
	b := appendStatusLine(c.hdrBuf[:0], 1, code)
	keys := c.sortedKeys(w.header)
	for _, k := range keys {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
			continue
		}
		if !strings.HasPrefix(k, http.TrailerPrefix) {
			b = appendField(b, k, w.header[k])
		}
	}
	clear(keys)
	b = append(b, "\r\n"...)
	c.hdrBuf = b[:0]
	if _, err := c.bw.Write(b); err == nil {
		_ = c.bw.Flush()
	}
}

// writeContinue sends "100 Continue" once, unless the final response
// already started. The body calls it on the first read.
func (w *response) writeContinue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.continueSent || w.hijacked.Load() || w.handlerDone.Load() {
		return
	}
	w.continueSent = true
	if _, err := w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n"); err == nil {
		_ = w.c.bw.Flush()
	}
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) { return w.write(p, "") }

// WriteString implements io.StringWriter, sparing callers a conversion.
func (w *response) WriteString(s string) (int, error) { return w.write(nil, s) }

func (w *response) write(p []byte, s string) (int, error) {
	n := len(p) + len(s)
	if w.handlerDone.Load() {
		return 0, errHandlerDone
	}
	if w.hijacked.Load() {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if n == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declaredCL >= 0 && w.written+int64(n) > w.declaredCL {
		return 0, http.ErrContentLength
	}
	w.written += int64(n)
	c := w.c
	if !w.committed {
		// Hold small bodies back: if the handler returns before the
		// buffer fills, the response gets a Content-Length.
		if w.written <= int64(cap(c.pre)) {
			if !w.isHEAD {
				if p != nil {
					c.pre = append(c.pre, p...)
				} else {
					c.pre = append(c.pre, s...)
				}
			}
			return n, nil
		}
		w.commit(false)
	}
	if w.isHEAD {
		return n, nil
	}
	if err := w.writeBody(p, s); err != nil {
		return 0, err
	}
	return n, nil
}

// writeBody writes body bytes, framed as one chunk when chunking.
func (w *response) writeBody(p []byte, s string) error {
	bw := w.c.bw
	n := len(p) + len(s)
	if n == 0 {
		return nil
	}
	if w.chunked {
		_, _ = bw.Write(append(strconv.AppendUint(bw.AvailableBuffer(), uint64(n), 16), '\r', '\n'))
	}
	var err error
	if p != nil {
		_, err = bw.Write(p)
	} else {
		_, err = bw.WriteString(s)
	}
	if w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	return err
}

// commit decides the framing and writes the head and any held-back body
// into the connection's writer. final means the handler has returned, so
// the held-back bytes are the whole body.
func (w *response) commit(final bool) {
	// Ask the body before taking mu: the body calls writeContinue with
	// its own lock held, so the lock order is body.mu, then w.mu.
	drainClose := w.body != nil && w.body.mustClose()
	w.mu.Lock()
	w.committed = true
	w.mu.Unlock()
	w.decideFraming(final, drainClose)
	w.writeHead()
	c := w.c
	if len(c.pre) > 0 {
		_ = w.writeBody(c.pre, "")
		c.pre = c.pre[:0]
	}
}

// decideFraming picks how the body is delimited (RFC 9112 6.1-6.3) and
// whether the connection survives the response.
func (w *response) decideFraming(final, drainClose bool) {
	switch {
	case !bodyAllowedForStatus(w.status):
		if w.status == http.StatusNotModified {
			w.contentLength = w.declaredCL // RFC 9110 8.6: may describe the selected representation
		}
	case w.isHEAD:
		w.contentLength = w.declaredCL
		if w.contentLength < 0 && final && w.written > 0 {
			w.contentLength = w.written
		}
	case w.declaredCL >= 0:
		w.contentLength = w.declaredCL
	case final && !w.trailers && !w.hasTE:
		w.contentLength = w.written
	case w.minor == 0 || w.teIdentity:
		// HTTP/1.0 has no chunking; "identity" asks for the same:
		// the body ends when the connection closes (RFC 9112 6.3 rule 8).
		w.closeAfter = true
	default:
		w.chunked = true
	}
	if w.status == http.StatusSwitchingProtocols {
		return // the handler hijacks; otherwise the connection is closed
	}
	if w.reqClose || drainClose || httpwire.HasToken(w.connValues, "close") || !w.c.s.keepAlivesOn() {
		w.closeAfter = true
	}
}

// writeHead writes the response head. It appends to the writer's free
// buffer (AvailableBuffer), the allocation-free way to format into a
// bufio.Writer; Write copies nothing when it is that buffer.
func (w *response) writeHead() {
	c := w.c
	bw := c.bw
	b := appendStatusLine(bw.AvailableBuffer(), w.minor, w.status)
	b = append(b, c.hdrBuf...)
	if w.contentLength >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, w.contentLength, 10)
		b = append(b, "\r\n"...)
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case w.closeAfter && w.status != http.StatusSwitchingProtocols:
		b = append(b, "Connection: close\r\n"...)
	case len(w.connValues) > 0:
		b = appendField(b, "Connection", w.connValues)
	case w.keepAlive10:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	if !w.hasDate {
		b = append(b, c.s.date.Line(time.Now())...)
	}
	b = append(b, "\r\n"...)
	_, _ = bw.Write(b)
}

// finalize completes the response after the handler returned: the head
// if still held back, the last chunk and the trailers.
func (w *response) finalize() {
	c := w.c
	if !w.wroteHeader && w.body != nil && w.body.malformed() {
		// The handler gave no answer to a request whose body framing
		// was invalid: the client gets the 400 a parser error gets.
		c.writeReject(badRequest("malformed request body"))
		w.committed, w.closeAfter = true, true
		return
	}
	if !w.wroteHeader {
		w.writeHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	if !w.chunked || c.werr != nil {
		return
	}
	b := append(c.hdrBuf[:0], "0\r\n"...)
	for _, k := range c.trailerKeys {
		b = appendField(b, k, w.header[k])
	}
	keys := c.sortedKeys(w.header)
	for _, k := range keys {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			b = appendField(b, name, w.header[k])
		}
	}
	clear(keys)
	b = append(b, "\r\n"...)
	c.hdrBuf = b[:0]
	_, _ = c.bw.Write(b)
}

// reusable reports whether the connection can carry another request once
// this response is complete.
func (w *response) reusable() bool {
	if w.closeAfter || w.c.werr != nil || w.status == http.StatusSwitchingProtocols {
		return false
	}
	// A handler that wrote less than its Content-Length leaves the
	// client waiting for bytes that never come: the stream is out of sync.
	return w.isHEAD || w.contentLength < 0 || !bodyAllowedForStatus(w.status) || w.written == w.contentLength
}

// FlushError implements the optional interface of http.ResponseController:
// it sends the head (chunked, since the handler is not done) and every
// buffered byte to the client.
func (w *response) FlushError() error {
	if w.handlerDone.Load() {
		return errHandlerDone
	}
	if w.hijacked.Load() {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	return w.c.bw.Flush()
}

// Flush implements http.Flusher.
func (w *response) Flush() { _ = w.FlushError() }

// Hijack implements http.Hijacker. The returned bufio.Reader holds any
// bytes the client already sent; the server forgets the connection, which
// the caller must close. A head set with WriteHeader (say 101) is flushed
// first.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.handlerDone.Load() {
		return nil, nil, errHandlerDone
	}
	w.mu.Lock()
	if w.hijacked.Load() {
		w.mu.Unlock()
		return nil, nil, http.ErrHijacked
	}
	w.hijacked.Store(true)
	w.mu.Unlock()
	c := w.c
	if w.wroteHeader && !w.committed {
		w.commit(false)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	c.cr.stop()
	_ = c.rwc.SetDeadline(time.Time{})
	c.s.forget(c)
	return c.rwc, bufio.NewReadWriter(c.bufr, bufio.NewWriter(c.rwc)), nil
}

// SetReadDeadline implements the optional interface of
// http.ResponseController; it bounds reads of the request body.
func (w *response) SetReadDeadline(t time.Time) error {
	if w.handlerDone.Load() {
		return errHandlerDone
	}
	return w.c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline implements the optional interface of
// http.ResponseController. The slow-client timeout still applies; the
// earlier of the two wins. The zero time removes the handler's deadline.
func (w *response) SetWriteDeadline(t time.Time) error {
	if w.handlerDone.Load() {
		return errHandlerDone
	}
	c := w.c
	c.userWriteDeadline = t
	c.forceArm = true
	c.armWriteDeadline()
	return nil
}

// EnableFullDuplex implements the optional interface of
// http.ResponseController. This server never consumes the request body
// when the response starts, so handlers may always interleave body reads
// and response writes; the call only reports success.
func (w *response) EnableFullDuplex() error { return nil }

// bodyAllowedForStatus reports whether a response with this status may
// have content (RFC 9110 6.4.1: not 1xx, 204 or 304).
func bodyAllowedForStatus(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// appendStatusLine appends "HTTP/1.x code reason\r\n". Like net/http, the
// version echoes the request's, so HTTP/1.0 clients see HTTP/1.0.
func appendStatusLine(b []byte, minor, code int) []byte {
	if minor == 0 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// sortedKeys returns the keys of h in order, in the connection's reused
// slice; callers clear it when done so it pins no strings.
func (c *conn) sortedKeys(h http.Header) []string {
	keys := c.keys[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	c.keys = keys
	return keys
}

// Interface guards.
var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
)
