package h2

import (
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/keelproxy/keel/internal/httpwire"
)

// bufferSize is how much body a response holds back before its first
// frames go out: a small response leaves as HEADERS and one DATA frame in
// a single write, with its Content-Length known.
const bufferSize = 4 << 10

// responseWriter is the handler's http.ResponseWriter for one stream. Only
// the handler goroutine uses it.
type responseWriter struct {
	st          *stream
	header      http.Header
	status      int
	wroteHeader bool // the final status is set
	sentHeader  bool // HEADERS are on the wire
	done        bool // the handler returned
	head        bool
	noBody      bool // 1xx, 204, 304: no content allowed
	written     int64
	buf         []byte  // held-back body, in *bufp
	bufp        *[]byte // from the server's pool until finish

	// The header as WriteHeader saw it: later changes to the map must not
	// reach the client (net/http's rule), but for trailers.
	fields      []field
	fieldsp     *[]field // from the server's pool until finish
	hasDate     bool
	hasLength   bool
	declared    int64    // the handler's Content-Length, or -1
	trailerKeys []string // declared in the Trailer field, canonical
}

// field is one header field line of a response, with its canonical key.
type field struct{ key, value string }

func (rw *responseWriter) init(st *stream) {
	rw.st = st
	rw.head = st.req.Method == http.MethodHead
}

// Header implements http.ResponseWriter.
func (rw *responseWriter) Header() http.Header {
	if rw.header == nil {
		rw.header = make(http.Header)
	}
	return rw.header
}

// WriteHeader implements http.ResponseWriter. 1xx statuses go out at
// once, as interim responses; the final one is held until the first
// flush.
func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader || rw.done {
		return
	}
	if code < 100 || code > 999 {
		panic("h2: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		if code == http.StatusSwitchingProtocols {
			return // no upgrades in HTTP/2 (8.6)
		}
		rw.writeInterim(code)
		return
	}
	rw.wroteHeader = true
	rw.status = code
	rw.noBody = code == http.StatusNoContent || code == http.StatusNotModified
	rw.snapshot()
}

// snapshot records the header fields to send, leaving out trailers and the
// connection-specific fields HTTP/2 forbids (8.2.2). It copies no strings:
// only the slice of key/value pairs is new, and that comes from a pool.
func (rw *responseWriter) snapshot() {
	h := rw.header
	_, rw.hasDate = h["Date"]
	var cl []string
	cl, rw.hasLength = h["Content-Length"]
	rw.declared = -1
	if len(cl) == 1 {
		if n, ok := httpwire.ParseDecimal(cl[0]); ok {
			rw.declared = n
		}
	}
	for _, v := range h["Trailer"] {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			if name = httpwire.TrimOWS(name); name != "" {
				rw.trailerKeys = append(rw.trailerKeys, httpwire.CanonicalKey(name))
			}
		}
	}
	if len(h) == 0 {
		return
	}
	rw.fieldsp = rw.st.c.s.getFields()
	rw.fields = appendFields((*rw.fieldsp)[:0], h, rw.trailerKeys)
}

// appendFields appends the field lines of h that an HTTP/2 response
// carries: not the connection-specific fields HTTP/2 forbids (8.2.2),
// trailers (http.TrailerPrefix), or the declared trailerKeys.
func appendFields(fs []field, h http.Header, trailerKeys []string) []field {
	for k, vv := range h {
		if connectionSpecific(k) || strings.HasPrefix(k, http.TrailerPrefix) || slices.Contains(trailerKeys, k) {
			continue
		}
		for _, v := range vv {
			fs = append(fs, field{k, v})
		}
	}
	return fs
}

// connectionSpecific reports whether name, in any case, is a field
// HTTP/2 forbids (RFC 9113 8.2.2).
func connectionSpecific(name string) bool {
	switch len(name) {
	case len("upgrade"):
		return strings.EqualFold(name, "upgrade")
	case len("connection"):
		return strings.EqualFold(name, "connection") || strings.EqualFold(name, "keep-alive")
	case len("proxy-connection"):
		return strings.EqualFold(name, "proxy-connection")
	case len("transfer-encoding"):
		return strings.EqualFold(name, "transfer-encoding")
	}
	return false
}

// Write implements http.ResponseWriter.
func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.done {
		return 0, http.ErrHandlerTimeout
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if rw.head {
		return len(p), nil
	}
	if rw.declared >= 0 && rw.written+int64(len(p)) > rw.declared {
		// More than the Content-Length the response declared: the
		// message would be malformed (RFC 9113 8.1.1).
		return 0, http.ErrContentLength
	}
	rw.written += int64(len(p))
	if !rw.sentHeader && len(rw.buf)+len(p) <= bufferSize {
		if rw.bufp == nil {
			rw.bufp = rw.st.c.s.getBuf()
			rw.buf = (*rw.bufp)[:0]
		}
		rw.buf = append(rw.buf, p...)
		return len(p), nil
	}
	if err := rw.send(false, rw.buf, p); err != nil {
		return 0, err
	}
	rw.buf = rw.buf[:0]
	return len(p), nil
}

// WriteString implements io.StringWriter.
func (rw *responseWriter) WriteString(s string) (int, error) {
	return rw.Write([]byte(s))
}

// Flush implements http.Flusher.
func (rw *responseWriter) Flush() { _ = rw.FlushError() }

// FlushError sends the header and buffered body now, for
// http.ResponseController.
func (rw *responseWriter) FlushError() error {
	if rw.done {
		return errStreamClosed
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.sentHeader && len(rw.buf) == 0 {
		return nil
	}
	err := rw.send(false, rw.buf, nil)
	rw.buf = rw.buf[:0]
	return err
}

// EnableFullDuplex reports success: HTTP/2 streams always are.
func (rw *responseWriter) EnableFullDuplex() error { return nil }

// finish completes the response after the handler returned.
func (rw *responseWriter) finish() {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.declared >= 0 && rw.written < rw.declared && !rw.head && !rw.noBody {
		// Shorter than its Content-Length: no END_STREAM, so handlerDone
		// resets the stream and the client sees the truncation.
		if len(rw.buf) > 0 || !rw.sentHeader {
			_ = rw.send(false, rw.buf, nil)
		}
	} else {
		_ = rw.send(true, rw.buf, nil)
	}
	rw.done = true
	if rw.bufp != nil {
		rw.st.c.s.bufs.Put(rw.bufp)
		rw.buf, rw.bufp = nil, nil
	}
	if rw.fieldsp != nil {
		clear(rw.fields) // the pool must not pin the strings
		*rw.fieldsp = rw.fields[:0]
		rw.st.c.s.fields.Put(rw.fieldsp)
		rw.fields, rw.fieldsp = nil, nil
	}
}

// sendContinue sends 100 Continue before the first body read of a request
// that asked for it, unless the final response is already out.
func (rw *responseWriter) sendContinue() {
	c := rw.st.c
	c.lockWrite()
	// sentHeader is read under wmu: the body may be read on another
	// goroutine than the one writing the response.
	if !rw.sentHeader && !rw.st.dead.Load() {
		c.hbuf.Reset()
		_ = c.henc.WriteField(hpackField(":status", "100"))
		c.writeHeaderBlock(rw.st.id, false)
	}
	c.unlockWrite()
}

func (rw *responseWriter) writeInterim(code int) {
	c := rw.st.c
	c.lockWrite()
	if !rw.st.dead.Load() {
		c.hbuf.Reset()
		_ = c.henc.WriteField(hpackField(":status", statusString(code)))
		// Interim responses are rare: a fresh slice is fine.
		c.encodeFieldList(appendFields(nil, rw.header, nil))
		c.writeHeaderBlock(rw.st.id, false)
	}
	c.unlockWrite()
}

// send writes a and then b as the stream's next DATA, preceded by HEADERS
// if they have not gone out, and followed by trailers and END_STREAM when
// end is set.
func (rw *responseWriter) send(end bool, a, b []byte) error {
	if len(b) == 0 {
		return rw.sendOne(end, a)
	}
	if len(a) > 0 {
		if err := rw.sendOne(false, a); err != nil {
			return err
		}
	}
	return rw.sendOne(end, b)
}

// sendOne writes data in frames the flow-control windows and the peer's
// frame size allow, waiting for window as needed. The HEADERS of a
// response that has not started go out in the same write as its first
// DATA frame.
func (rw *responseWriter) sendOne(end bool, data []byte) error {
	st, c := rw.st, rw.st.c
	trailers := end && rw.hasTrailers()
	for {
		n := 0
		if len(data) > 0 {
			var err error
			if n, err = c.awaitWindow(st, len(data)); err != nil {
				return err
			}
		}
		final := end && n == len(data)
		c.lockWrite()
		if st.dead.Load() || c.werr != nil {
			c.unlockWrite()
			c.giveBackWindow(n) // never sent: the client will not credit it
			return errStreamClosed
		}
		headersOnly := final && len(data) == 0 && !trailers
		if !rw.sentHeader {
			rw.sentHeader = true
			c.writeResponseHeaders(st.id, rw, headersOnly, final)
		} else if headersOnly {
			_ = c.fr.WriteData(st.id, true, nil)
		}
		if n > 0 {
			_ = c.fr.WriteData(st.id, final && !trailers, data[:n])
		}
		if final && trailers {
			c.hbuf.Reset()
			c.encodeTrailers(rw)
			c.writeHeaderBlock(st.id, true)
		}
		last := false
		if final {
			// Before the flush: a client that reacts to END_STREAM at once
			// must find the stream closed.
			last = rw.localEnd()
		}
		c.unlockWrite()
		if last {
			c.closeWrite()
		}
		data = data[n:]
		if final {
			return nil
		}
		if len(data) == 0 {
			return nil
		}
	}
}

// localEnd records that END_STREAM is written; a stream whose request is
// complete too is closed. It reports whether the connection is to close
// (closeStreamLocked). The caller holds wmu: the lock order is wmu, then
// mu, and nothing takes wmu while holding mu.
func (rw *responseWriter) localEnd() (last bool) {
	st, c := rw.st, rw.st.c
	c.mu.Lock()
	st.localClosed = true
	if st.remoteClosed {
		last = c.closeStreamLocked(st)
	}
	c.mu.Unlock()
	return last
}

// hasTrailers reports whether the handler set trailer values: declared in
// a Trailer field before WriteHeader, or under http.TrailerPrefix.
func (rw *responseWriter) hasTrailers() bool {
	h := rw.header
	for _, k := range rw.trailerKeys {
		if len(h[k]) > 0 {
			return true
		}
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// awaitWindow reserves up to want bytes of send window for st, at most
// one frame's worth, waiting while either window is exhausted. A wait
// without progress longer than the slow-client timeout fails.
func (c *conn) awaitWindow(st *stream, want int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var timer *time.Timer
	st.waitSeq++
	seq := st.waitSeq
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		switch {
		case st.dead.Load() || c.closed:
			return 0, errStreamClosed
		case st.stalled:
			return 0, errStalled
		}
		if w := min(st.sendWindow, c.sendWindow); w > 0 {
			n := min(int64(want), w, int64(c.peerMaxFrame.Load()))
			st.sendWindow -= n
			c.sendWindow -= n
			st.waitSeq++ // a timer firing now is late
			return int(n), nil
		}
		if d := c.s.slowClientTimeout(); timer == nil && d > 0 {
			timer = time.AfterFunc(d, func() {
				c.mu.Lock()
				// Only this wait: one that already got window must not
				// fail a later write.
				if st.waitSeq == seq {
					st.stalled = true
					c.flow.Broadcast()
				}
				c.mu.Unlock()
			})
		}
		c.flow.Wait()
	}
}

// giveBackWindow returns n bytes reserved by awaitWindow but not sent to
// the connection's send window.
func (c *conn) giveBackWindow(n int) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	c.sendWindow += int64(n)
	c.flow.Broadcast()
	c.mu.Unlock()
}

// writeResponseHeaders encodes and writes the response HEADERS from the
// snapshot WriteHeader took. final means the whole body is known, so a
// missing Content-Length is added. The caller holds wmu.
func (c *conn) writeResponseHeaders(id uint32, rw *responseWriter, endStream, final bool) {
	c.hbuf.Reset()
	_ = c.henc.WriteField(hpackField(":status", statusString(rw.status)))
	c.encodeFieldList(rw.fields)
	if !rw.hasDate {
		_ = c.henc.WriteField(hpackField("date", c.s.dates.Value(time.Now())))
	}
	if !rw.hasLength && final && !rw.head && !rw.noBody {
		_ = c.henc.WriteField(hpackField("content-length", strconv.FormatInt(rw.written, 10)))
	}
	c.writeHeaderBlock(id, endStream)
}

// encodeFieldList adds fs to the header block. The caller holds wmu.
func (c *conn) encodeFieldList(fs []field) {
	for _, f := range fs {
		c.encodeValue(c.lowerKey(f.key), f.value)
	}
}

// encodeTrailers adds the trailer fields: those declared before
// WriteHeader and those under http.TrailerPrefix. The caller holds wmu.
func (c *conn) encodeTrailers(rw *responseWriter) {
	h := rw.header
	for _, key := range rw.trailerKeys {
		if !httpwire.ForbiddenTrailer(key) {
			c.encodeValues(c.lowerKey(key), h[key])
		}
	}
	for k, vv := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if key := httpwire.CanonicalKey(name); !httpwire.ForbiddenTrailer(key) {
				c.encodeValues(c.lowerKey(key), vv)
			}
		}
	}
}

func (c *conn) encodeValues(lk string, vv []string) {
	for _, v := range vv {
		c.encodeValue(lk, v)
	}
}

// encodeValue adds one field. An invalid name, or a value with CR, LF or
// NUL, which the client would refuse (or an HTTP/1 hop after it split),
// is dropped.
func (c *conn) encodeValue(lk, v string) {
	if httpguts.ValidHeaderFieldName(lk) && httpguts.ValidHeaderFieldValue(v) {
		_ = c.henc.WriteField(hpackField(lk, v))
	}
}

// lowerKey returns the wire (lower-case) form of a header key, cached per
// connection since handlers send the same few names again and again. The
// caller holds wmu.
func (c *conn) lowerKey(k string) string {
	if v, ok := c.lower[k]; ok {
		return v
	}
	v := strings.ToLower(k)
	if len(c.lower) < maxLowerCache {
		c.lower[k] = v
	}
	return v
}

// maxLowerCache bounds the per-connection key cache: names beyond it are
// lower-cased each time.
const maxLowerCache = 256

// writeHeaderBlock writes the block in hbuf as HEADERS and as many
// CONTINUATION frames as the peer's frame size needs. The caller holds
// wmu.
func (c *conn) writeHeaderBlock(id uint32, endStream bool) {
	blk := c.hbuf.Bytes()
	max := int(c.peerMaxFrame.Load())
	frag := blk[:min(len(blk), max)]
	blk = blk[len(frag):]
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: endStream, EndHeaders: len(blk) == 0})
	for len(blk) > 0 {
		frag = blk[:min(len(blk), max)]
		blk = blk[len(frag):]
		_ = c.fr.WriteContinuation(id, len(blk) == 0, frag)
	}
}

func hpackField(name, value string) hpack.HeaderField {
	return hpack.HeaderField{Name: name, Value: value}
}

func stack() string {
	buf := make([]byte, 64<<10)
	return string(buf[:runtime.Stack(buf, false)])
}
