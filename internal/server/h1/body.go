package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/keelproxy/keel/internal/httpwire"
)

// maxDrainBytes is how much of a request body the server reads and throws
// away after the handler returns, to keep the connection; a longer
// remainder closes the connection instead (net/http uses the same 256KB).
const maxDrainBytes = 256 << 10

// maxChunkOverhead bounds the non-data bytes of a chunked body (size
// lines, extensions, CRLFs) beyond what the data justifies, so a client
// cannot make the server parse megabytes of extensions for a few bytes of
// data (net/http has the same guard since CVE-2023-39326).
const maxChunkOverhead = 16 << 10

// BodyError is the error a request body returns when the client's framing
// is invalid: a malformed chunk size line, a missing CRLF after chunk
// data, too much chunk-extension overhead, or a malformed or oversized
// trailer section. The connection is closed after the response. A handler
// that cannot import this package recognises it with
// errors.As(err, &sc), sc being an interface{ StatusCode() int }.
type BodyError struct {
	// Reason says what was wrong; it never contains client data.
	Reason string
}

// Error implements error.
func (e *BodyError) Error() string { return "h1: malformed request body: " + e.Reason }

// StatusCode returns 400: the request was malformed (RFC 9112 section 7.1).
func (e *BodyError) StatusCode() int { return http.StatusBadRequest }

func bodyErr(reason string) error { return &BodyError{Reason: reason} }

// chunk decoder states.
const (
	chunkSize = iota + 1 // next: a chunk size line
	chunkData            // inside chunk data; remaining bytes left
	chunkCRLF            // next: the CRLF after chunk data
)

// body is a request body: a Content-Length reader or a strict chunked
// decoder (RFC 9112 section 7.1). It is safe for concurrent use: a proxy's
// transport may still be reading it from another goroutine when the
// handler returns.
type body struct {
	c   *conn
	w   *response
	req *http.Request // its Trailer is filled at EOF
	gen uint64

	mu        sync.Mutex // guards everything below
	chunked   bool
	state     int   // chunk decoder state
	remaining int64 // bytes left in the body (Content-Length) or chunk
	overhead  int64 // chunk framing bytes not yet justified by data
	sawEOF    bool
	closed    bool  // the handler called Close
	done      bool  // the handler returned: reads fail from now on
	err       error // sticky framing or I/O error
	// continueWanted: the client sent "Expect: 100-continue" and no
	// interim response has gone out yet.
	continueWanted bool
}

func (b *body) init(c *conn, w *response, r *http.Request, h *head, gen uint64) {
	b.c, b.w, b.req, b.gen = c, w, r, gen
	b.chunked = h.chunked
	b.continueWanted = h.expectContinue
	if h.chunked {
		b.state = chunkSize
	} else {
		b.remaining = h.contentLength
	}
}

// Read implements io.Reader. The first Read of a request that expects
// 100-continue sends the interim response, unless the handler already
// answered (RFC 9110 10.1.1: the server MAY omit it then).
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.done || b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.sawEOF:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	}
	if b.continueWanted {
		b.continueWanted = false
		b.w.writeContinue()
	}
	if len(p) == 0 {
		return 0, nil
	}
	return b.readLocked(p)
}

// Close implements io.Closer. Unread data is dealt with after the handler
// returns: drained when short, or the connection is closed.
func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

func (b *body) readLocked(p []byte) (int, error) {
	var n int
	var err error
	if b.chunked {
		n, err = b.readChunked(p)
	} else {
		n, err = b.readFixed(p)
	}
	if err == io.EOF {
		b.sawEOF = true
		b.c.cr.bodyEOF(b.gen)
	} else if err != nil {
		b.err = err
	}
	return n, err
}

func (b *body) readFixed(p []byte) (int, error) {
	if b.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.c.bufr.Read(p)
	b.remaining -= int64(n)
	switch {
	case b.remaining == 0:
		// EOF with the last bytes, so callers (and the background
		// read) need no extra Read to learn the body is complete.
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// readChunked decodes chunks into p. Once it has data it never blocks
// again: it continues past chunk boundaries only with bytes already
// buffered, which also lets it report EOF with the last data.
func (b *body) readChunked(p []byte) (int, error) {
	br := b.c.bufr
	n := 0
	for n < len(p) {
		switch b.state {
		case chunkSize:
			if n > 0 && !nextChunkBuffered(br) {
				return n, nil
			}
			size, err := b.readSizeLine(br)
			if err != nil {
				return n, err
			}
			if size == 0 {
				return n, b.readTrailer(br)
			}
			b.remaining, b.state = size, chunkData
		case chunkData:
			if n > 0 && br.Buffered() == 0 {
				return n, nil
			}
			m := len(p) - n
			if int64(m) > b.remaining {
				m = int(b.remaining)
			}
			m, err := br.Read(p[n : n+m])
			n += m
			b.remaining -= int64(m)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
			if b.remaining == 0 {
				b.state = chunkCRLF
			}
		case chunkCRLF:
			if n > 0 && br.Buffered() < 2 {
				return n, nil
			}
			crlf, err := br.Peek(2)
			if err != nil {
				return n, unexpected(err)
			}
			if crlf[0] != '\r' || crlf[1] != '\n' {
				return n, bodyErr("missing CRLF after chunk data")
			}
			_, _ = br.Discard(2)
			b.state = chunkSize
		}
	}
	return n, nil
}

// nextChunkBuffered reports whether the next chunk size line is buffered
// and, when it is the last chunk, so is the end of the trailer section:
// then decoding can go on without blocking.
func nextChunkBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return false
	}
	for _, c := range buf[:i] {
		if c == '0' {
			continue
		}
		if _, ok := hexVal(c); ok {
			return true // a non-zero size: its data follows
		}
		break
	}
	rest := buf[i+1:]
	return bytes.HasPrefix(rest, []byte("\r\n")) || bytes.HasPrefix(rest, []byte("\n")) ||
		bytes.Contains(rest, []byte("\n\r\n")) || bytes.Contains(rest, []byte("\n\n"))
}

// readSizeLine reads "chunk-size [ chunk-ext ] CRLF" (RFC 9112 7.1).
// Unlike the head, chunk lines must end in CRLF: the lax variants are a
// known request-smuggling vector between proxies and servers.
func (b *body) readSizeLine(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return 0, bodyErr("chunk size line too long")
	}
	if err != nil {
		return 0, unexpected(err)
	}
	b.overhead += int64(len(line)) + 2 // the line and the CRLF after the data
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, bodyErr("chunk size line not terminated by CRLF")
	}
	line = line[:len(line)-2]
	var size int64
	i := 0
	for ; i < len(line); i++ {
		v, ok := hexVal(line[i])
		if !ok {
			break
		}
		if i == 15 {
			return 0, bodyErr("chunk size too large")
		}
		size = size<<4 | int64(v)
	}
	if i == 0 {
		return 0, bodyErr("invalid chunk size")
	}
	if err := checkChunkExt(line[i:]); err != nil {
		return 0, err
	}
	// Data pays for its framing; only the excess counts.
	b.overhead -= 16 + 2*size
	if b.overhead < 0 {
		b.overhead = 0
	}
	if b.overhead > maxChunkOverhead {
		return 0, bodyErr("too much chunk framing overhead")
	}
	return size, nil
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// checkChunkExt validates what follows the chunk size:
// *( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] ). Extensions are
// ignored, but must start with ';' and hold no control characters.
func checkChunkExt(ext []byte) error {
	for len(ext) > 0 && (ext[0] == ' ' || ext[0] == '\t') {
		ext = ext[1:]
	}
	if len(ext) == 0 {
		return nil
	}
	if ext[0] != ';' {
		return bodyErr("invalid chunk size")
	}
	for _, c := range ext {
		if byteClass[c]&classValue == 0 {
			return bodyErr("invalid chunk extension")
		}
	}
	return nil
}

// readTrailer reads the trailer section after the last chunk into the
// request's Trailer (net/http semantics: every received field, declared or
// not), dropping fields that must never come from a trailer.
func (b *body) readTrailer(br *bufio.Reader) error {
	p := &b.c.p
	if err := p.readBlock(br, false); err != nil {
		if _, ok := errIsReq(err); ok {
			return bodyErr("trailer section too large")
		}
		return unexpected(err)
	}
	if len(p.lines) == 0 {
		return io.EOF
	}
	raw := string(p.buf)
	for _, ln := range p.lines {
		name, value, err := parseField(raw[ln.start:ln.end])
		if err != nil {
			return bodyErr("malformed trailer field")
		}
		key := httpwire.CanonicalKey(name)
		if httpwire.ForbiddenTrailer(key) {
			continue
		}
		if b.req.Trailer == nil {
			b.req.Trailer = make(http.Header)
		}
		b.req.Trailer[key] = append(b.req.Trailer[key], value)
	}
	return io.EOF
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// finish is called once the handler has returned. It stops further reads
// and, when keep is true, drains a short unread remainder so the next
// request can be read. It reports whether the connection may be reused.
func (b *body) finish(keep bool, drainTimeout time.Duration) bool {
	if !b.mu.TryLock() {
		// Another goroutine (say a transport still copying the body
		// upstream) is inside Read, perhaps blocked on the client.
		// Unblock it; the connection cannot be reused.
		_ = b.c.rwc.SetReadDeadline(aLongTimeAgo())
		b.mu.Lock()
		b.done = true
		b.mu.Unlock()
		return false
	}
	defer b.mu.Unlock()
	b.done = true
	switch {
	case b.sawEOF:
		return true
	case !keep || b.err != nil:
		return false
	case b.continueWanted:
		// The client waits for 100 Continue before sending the body,
		// which was never asked for: reading would block.
		return false
	case !b.chunked && b.remaining > maxDrainBytes:
		return false
	}
	if drainTimeout > 0 {
		_ = b.c.rwc.SetReadDeadline(time.Now().Add(drainTimeout))
	}
	var buf [4 << 10]byte
	for drained := 0; drained <= maxDrainBytes; {
		n, err := b.readLocked(buf[:])
		drained += n
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// mustClose reports whether the connection is already known to be
// unusable after the response (invalid framing, or an unread remainder
// too long to drain), so the response can announce Connection: close.
// It never waits: when another goroutine is inside Read, it answers false.
func (b *body) mustClose() bool {
	if !b.mu.TryLock() {
		return false
	}
	defer b.mu.Unlock()
	if b.sawEOF {
		return false
	}
	return b.err != nil || b.continueWanted || !b.chunked && b.remaining > maxDrainBytes
}

// malformed reports whether reading stopped on invalid framing. It never
// waits: when another goroutine is inside Read, it answers false.
func (b *body) malformed() bool {
	if !b.mu.TryLock() {
		return false
	}
	defer b.mu.Unlock()
	var be *BodyError
	return errors.As(b.err, &be)
}
