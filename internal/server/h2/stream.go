package h2

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"github.com/keelproxy/keel/internal/httpwire"
)

// stream is one request and its response. The read loop creates it; the
// handler goroutine owns rw and req.
type stream struct {
	c      *conn
	id     uint32
	cancel context.CancelFunc
	body   pipe
	req    http.Request
	rw     responseWriter

	// Under c.mu.
	sendWindow   int64
	recvAvail    int32
	recvPending  int32
	declared     int64 // Content-Length, or -1
	received     int64
	remoteClosed bool // END_STREAM received
	localClosed  bool // our END_STREAM is written: the response is complete
	stalled      bool // the slow-client timer fired while waiting for window
	waitSeq      int  // counts awaitWindow calls and grants, so a late timer is ignored

	// dead is set (under mu) once the stream left c.streams: reset either
	// way, or done. Writers check it under wmu so nothing follows a
	// RST_STREAM.
	dead atomic.Bool
}

// errMalformed makes a request malformed (8.1.1): a stream error.
func errMalformed(id uint32) error {
	return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
}

// processHeaders opens a stream for a request, or takes a request's
// trailers.
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		c.mu.Unlock()
		return c.processTrailers(st, f)
	}
	if id <= c.maxClientID {
		ours := c.resetByUsLocked(id)
		c.mu.Unlock()
		if ours {
			// Trailers that crossed our RST_STREAM: ignored (5.4.2).
			return nil
		}
		// HEADERS on a closed stream (5.1).
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	c.maxClientID = id
	if c.goingAway {
		// Past the last stream GOAWAY admitted: ignored (6.8).
		c.mu.Unlock()
		return nil
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		c.mu.Unlock()
		return errMalformed(id)
	}
	if uint32(len(c.streams)) >= c.maxStreams {
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	if c.handlers >= maxHandlersPerStream*int(c.maxStreams) {
		// Handlers of streams the client reset are still running: it
		// resets faster than the upstreams answer.
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	c.mu.Unlock()

	st := &stream{c: c, id: id, declared: -1}
	if err := c.newRequest(st, f); err != nil {
		return err
	}
	if f.Truncated {
		// Too many header bytes: answered here without the handler, like
		// HTTP/1's 431.
		return c.refuseHeaderTooLarge(st, f.StreamEnded())
	}
	ctx, cancel := context.WithCancel(c.ctx)
	st.cancel = cancel
	st.req = *st.req.WithContext(ctx)

	c.mu.Lock()
	st.sendWindow = int64(c.peerWindow)
	st.recvAvail = c.streamWin
	st.remoteClosed = f.StreamEnded()
	c.streams[id] = st
	c.handlers++
	if c.idleArmed {
		// Only on the way out of idleness: most streams open while
		// others are open, and need not touch the timer.
		c.idleArmed = false
		c.idleTimer.Stop()
	}
	spawn := c.idleWorkers <= len(c.queue)
	if !spawn {
		c.queue = append(c.queue, st)
		c.work.Signal()
	}
	c.mu.Unlock()
	c.opened++
	if spawn {
		c.handlerWG.Add(1)
		go c.worker(st)
	}
	return nil
}

// worker runs handlers: st first, then streams queued for it while the
// connection has others open. Reusing the goroutine keeps its grown
// stack, which the proxy's handler chain would otherwise grow anew for
// every request; a worker exits when its connection has no open stream,
// so idle connections keep none.
func (c *conn) worker(st *stream) {
	defer c.handlerWG.Done()
	for st != nil {
		c.runHandler(st)
		st = nil
		c.mu.Lock()
		c.idleWorkers++
		for {
			if len(c.queue) > 0 {
				st = c.queue[0]
				c.queue[0] = nil
				c.queue = c.queue[1:]
				break
			}
			if c.closed || len(c.streams) == 0 {
				break
			}
			c.work.Wait()
		}
		c.idleWorkers--
		c.mu.Unlock()
	}
}

// newRequest validates the request head (8.3) and fills st.req.
func (c *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) error {
	id := st.id
	var method, scheme, path, authority string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":path":
			path = hf.Value
		case ":authority":
			authority = hf.Value
		default:
			// :status, or :protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL.
			return errMalformed(id)
		}
	}
	if !httpwire.ValidToken(method) {
		return errMalformed(id)
	}
	connect := method == http.MethodConnect
	if connect {
		if scheme != "" || path != "" || authority == "" {
			return errMalformed(id)
		}
	} else if scheme == "" || path == "" || path[0] != '/' && !(path == "*" && method == http.MethodOptions) {
		return errMalformed(id)
	}

	fields := f.RegularFields()
	header := make(http.Header, len(fields))
	// One backing array for the values: most fields appear once.
	vals := make([]string, len(fields))
	var cookies []string
	for i, hf := range fields {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			// Connection-specific fields make a request malformed (8.2.2):
			// a client that sends them is broken or probing for smuggling.
			return errMalformed(id)
		case "te":
			if hf.Value != "trailers" {
				return errMalformed(id)
			}
		case "cookie":
			// Split cookie crumbs are joined back (8.2.3).
			cookies = append(cookies, hf.Value)
			continue
		}
		key := httpwire.CanonicalKey(hf.Name)
		if vv, ok := header[key]; ok {
			header[key] = append(vv, hf.Value)
			continue
		}
		vals[i] = hf.Value
		header[key] = vals[i : i+1 : i+1]
	}
	if len(cookies) == 1 {
		header["Cookie"] = cookies
	} else if len(cookies) > 1 {
		header["Cookie"] = []string{joinCookies(cookies)}
	}
	if authority == "" {
		authority = header.Get("Host")
	}
	delete(header, "Host")
	if authority != "" && !httpguts.ValidHostHeader(authority) {
		return errMalformed(id)
	}

	cl := int64(-1)
	if vv := header["Content-Length"]; len(vv) > 0 {
		n, ok := httpwire.ParseDecimal(vv[0])
		if !ok {
			return errMalformed(id)
		}
		for _, v := range vv[1:] {
			if v != vv[0] {
				return errMalformed(id)
			}
		}
		cl = n
	}
	var trailer http.Header
	if vv := header["Trailer"]; len(vv) > 0 {
		t, err := httpwire.DeclaredTrailers(vv)
		if err != nil {
			return errMalformed(id)
		}
		trailer = t
	}

	var u *url.URL
	requestURI := path
	if connect {
		u, requestURI = &url.URL{Host: authority}, authority
	} else if path == "*" {
		u = &url.URL{Path: "*"}
	} else {
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return errMalformed(id)
		}
	}

	st.declared = cl
	req := &st.req
	*req = http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        header,
		Host:          authority,
		Trailer:       trailer,
		RemoteAddr:    c.remoteAddr,
		RequestURI:    requestURI,
		TLS:           c.tls,
		ContentLength: cl,
	}
	if f.StreamEnded() {
		if cl > 0 {
			return errMalformed(id)
		}
		req.Body = http.NoBody
		req.ContentLength = 0
	} else {
		st.body.init(st, header["Expect"])
		req.Body = &st.body
	}
	st.rw.init(st)
	return nil
}

func joinCookies(cs []string) string {
	n := 2 * (len(cs) - 1)
	for _, c := range cs {
		n += len(c)
	}
	b := make([]byte, 0, n)
	for i, c := range cs {
		if i > 0 {
			b = append(b, "; "...)
		}
		b = append(b, c...)
	}
	return string(b)
}

// processTrailers takes the trailer section that ends a request body.
func (c *conn) processTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	c.mu.Lock()
	remoteClosed := st.remoteClosed
	c.mu.Unlock()
	if remoteClosed {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeStreamClosed}
	}
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 || f.Truncated {
		// Truncated: a trailer section over MaxHeaderBytes, which the
		// request cannot be completed without.
		return errMalformed(st.id)
	}
	var t http.Header
	for _, hf := range f.RegularFields() {
		key := httpwire.CanonicalKey(hf.Name)
		if httpwire.ForbiddenTrailer(key) {
			return errMalformed(st.id)
		}
		if t == nil {
			t = make(http.Header)
		}
		t[key] = append(t[key], hf.Value)
	}
	c.mu.Lock()
	if st.declared >= 0 && st.received != st.declared {
		c.mu.Unlock()
		return errMalformed(st.id)
	}
	st.remoteClosed = true
	last := false
	if st.localClosed {
		last = c.closeStreamLocked(st)
	}
	c.mu.Unlock()
	st.body.endWithTrailer(t)
	if last {
		c.closeWrite()
	}
	return nil
}

// refuseHeaderTooLarge answers 431 for a request whose header block was
// over MaxHeaderBytes. The stream never opens.
func (c *conn) refuseHeaderTooLarge(st *stream, ended bool) error {
	c.lockWrite()
	c.hbuf.Reset()
	_ = c.henc.WriteField(hpackField(":status", "431"))
	c.writeHeaderBlock(st.id, true)
	if !ended {
		_ = c.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
	}
	c.unlockWrite()
	return nil
}

// runHandler serves one request and finishes the response when the
// handler returns.
func (c *conn) runHandler(st *stream) {
	defer func() {
		v := recover()
		if v != nil {
			if v != http.ErrAbortHandler {
				c.s.logger().Error("http2: panic serving request", "remote", c.remoteAddr, "panic", v, "stack", stack())
			}
			c.resetStream(st.id, http2.ErrCodeInternal, st)
		}
		c.handlerDone(st)
	}()
	c.s.Handler.ServeHTTP(&st.rw, &st.req)
	st.rw.finish()
}

// handlerDone accounts for a finished handler: its request body is
// dropped (credit returned) and a stream still receiving is reset with
// NO_ERROR, since its response is complete (8.1).
func (c *conn) handlerDone(st *stream) {
	st.cancel()
	dropped := st.body.abort(errBodyAfterHandler)
	c.mu.Lock()
	c.handlers--
	open, complete := !st.dead.Load(), st.localClosed
	c.mu.Unlock()
	if open {
		// Complete: the request body is no longer wanted (8.1).
		// Otherwise the response was cut short (a failed write).
		code := http2.ErrCodeInternal
		if complete {
			code = http2.ErrCodeNo
		}
		c.resetStream(st.id, code, st)
	}
	c.returnConnCredit(dropped)
}

var errBodyAfterHandler = errors.New("h2: request body read after the handler returned")

// pipe is a request body: the read loop writes DATA payloads, the
// handler reads them. Its buffer is bounded by the stream window.
type pipe struct {
	st       *stream
	mu       sync.Mutex
	cond     sync.Cond
	buf      []byte
	r        int
	err      error       // returned once buf is drained (io.EOF at the end)
	aborted  bool        // the handler is done: writes are refused
	trailer  http.Header // moved to Request.Trailer by the read that meets io.EOF
	needCont bool        // 100-continue owed on the first read
}

func (p *pipe) init(st *stream, expect []string) {
	p.st = st
	p.cond.L = &p.mu
	p.needCont = len(expect) > 0 && httpwire.HasToken(expect, "100-continue")
}

// Read implements io.Reader for the handler.
func (p *pipe) Read(b []byte) (int, error) {
	if p.needCont {
		p.needCont = false
		p.st.rw.sendContinue()
	}
	p.mu.Lock()
	for p.r == len(p.buf) && p.err == nil {
		p.cond.Wait()
	}
	if p.r == len(p.buf) {
		err, t := p.err, p.trailer
		p.trailer = nil
		p.mu.Unlock()
		if t != nil {
			req := &p.st.req
			if req.Trailer == nil {
				req.Trailer = make(http.Header, len(t))
			}
			maps.Copy(req.Trailer, t)
		}
		return 0, err
	}
	n := copy(b, p.buf[p.r:])
	p.r += n
	if p.r == len(p.buf) {
		p.buf, p.r = p.buf[:0], 0
	}
	p.mu.Unlock()
	p.st.c.returnCredit(p.st, int32(n))
	return n, nil
}

// Close implements io.Closer: the handler will not read more.
func (p *pipe) Close() error {
	p.st.c.returnConnCredit(p.abort(http.ErrBodyReadAfterClose))
	return nil
}

// write appends DATA bytes; false means the handler is done with the
// body and the bytes were not taken.
func (p *pipe) write(b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.aborted || p.err != nil {
		return false
	}
	if p.r > 0 && len(p.buf)+len(b) > cap(p.buf) {
		// Move the unread bytes to the front rather than grow: unread
		// bytes are bounded by the stream window, and so is the buffer.
		n := copy(p.buf, p.buf[p.r:])
		p.buf, p.r = p.buf[:n], 0
	}
	p.buf = append(p.buf, b...)
	p.cond.Signal()
	return true
}

// closeWithError ends the body: readers get the buffered bytes, then err.
func (p *pipe) closeWithError(err error) {
	if p.st == nil {
		return // no body (END_STREAM on HEADERS)
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// endWithTrailer ends the body with the request trailers, which the
// reader moves into Request.Trailer when it reaches the end: only the
// body's reader may touch the request.
func (p *pipe) endWithTrailer(t http.Header) {
	if p.st == nil {
		return
	}
	p.mu.Lock()
	if p.err == nil {
		p.trailer = t
		p.err = io.EOF
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// abort refuses further writes and drops what is buffered, returning how
// many bytes were dropped (their connection credit is owed back).
func (p *pipe) abort(err error) int32 {
	if p.st == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.aborted && (p.err == nil || p.err == io.EOF) {
		p.err = err
	}
	p.aborted = true
	n := len(p.buf) - p.r
	p.buf, p.r = nil, 0
	p.cond.Broadcast()
	return int32(n)
}

func statusString(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 304:
		return "304"
	case 404:
		return "404"
	}
	return strconv.Itoa(code)
}
