package h1client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/keelproxy/keel/internal/httpwire"
)

// Body framings (RFC 9112 section 6.3).
const (
	bodyLength     = iota + 1 // Content-Length bytes
	bodyChunked               // chunked transfer coding
	bodyUntilClose            // everything until the server closes
)

// States of the chunked decoder (RFC 9112 section 7.1).
const (
	chunkSize    = iota // expecting a chunk-size line
	chunkData           // inside chunk data, n bytes left
	chunkDataEnd        // expecting the CRLF after chunk data
	chunkTrailer        // last chunk seen, expecting the trailer section
)

// maxDrain bounds what Close discards to keep a connection reusable: a
// remainder up to this size is cheaper to skip than a new connection's
// handshake. Only bytes already buffered are discarded, so Close never
// waits on the network.
const maxDrain = 64 << 10

// body is a response body. It reads from the connection's buffered reader
// and, when the body ends (EOF, error or Close), hands the connection back
// to its round trip, which pools or closes it.
//
// A body belongs to exactly one response and is never reused: a caller may
// call Close long after the connection moved on. Read and Close may be
// called concurrently (Close interrupts a blocked Read); concurrent Reads
// are serialised.
//
// Close interrupts a Read by expiring the connection's read deadline. The
// rstate handshake makes sure it only ever does so to a connection that
// cannot have gone back to the pool: a Read that finds it was interrupted
// never pools its connection.
type body struct {
	br   *bufio.Reader
	pc   *conn // nil when parsing without a connection (tests, fuzzing)
	resp *http.Response
	mode int
	// n is what is left of the body (bodyLength) or of the current chunk.
	n     int64
	state int

	// mu serialises Read and Close and guards the fields below it.
	mu  sync.Mutex
	err error // set once the body ended: io.EOF, errBodyClosed or the failure
	// trailerBytes counts the trailer section against maxHeadBytes.
	trailerBytes int
	// spoiled is set when a Read learns that Close interrupted it.
	spoiled bool

	// rstate is readIdle, readBusy (a Read is on the connection),
	// readClosed (Close started) or readInterrupted (Close started during
	// a Read and expired the read deadline).
	rstate atomic.Int32
}

// States of body.rstate.
const (
	readIdle int32 = iota
	readBusy
	readClosed
	readInterrupted
)

// init prepares b to read resp's body in the given framing.
func (b *body) init(resp *http.Response, mode int, n int64) {
	b.resp, b.mode, b.n = resp, mode, n
}

// bind attaches b to the connection it reads from.
func (b *body) bind(pc *conn, br *bufio.Reader) { b.pc, b.br = pc, br }

// Read reads body bytes. It returns io.EOF together with the last bytes
// when it can, so the connection returns to the pool without an extra call.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if !b.rstate.CompareAndSwap(readIdle, readBusy) {
		// Close has started and waits for mu; it ends the body.
		return 0, errBodyClosed
	}
	var n int
	var err error
	switch b.mode {
	case bodyLength:
		n, err = b.readLength(p)
	case bodyChunked:
		n, err = b.readChunked(p)
	default:
		n, err = b.br.Read(p)
	}
	if !b.rstate.CompareAndSwap(readBusy, readIdle) {
		// Close interrupted this Read; whatever it returned, the body is
		// closed now (and an expired deadline is no news to the caller).
		b.spoiled = true
		if err != io.EOF {
			err = errBodyClosed
		}
	}
	if err != nil {
		err = b.end(err)
	}
	return n, err
}

func (b *body) readLength(p []byte) (int, error) {
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	for b.state != chunkData {
		if err := b.nextChunk(); err != nil {
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	if b.n == 0 {
		b.state = chunkDataEnd
		// When the end of the body is already buffered, report EOF with
		// these bytes.
		if err := b.advance(false); err != nil {
			return n, err
		}
	}
	return n, nil
}

// nextChunk moves the chunked decoder one step, reading from the network
// as needed. It returns io.EOF after the trailer section.
func (b *body) nextChunk() error {
	switch b.state {
	case chunkDataEnd:
		crlf, err := b.br.Peek(2)
		if err != nil {
			return unexpected(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return malformed("missing CRLF after chunk data")
		}
		_, _ = b.br.Discard(2)
		b.state = chunkSize
	case chunkSize:
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return malformed("chunk-size line too long")
			}
			return unexpected(err)
		}
		size, err := parseChunkSize(line)
		if err != nil {
			return err
		}
		b.startChunk(size)
	case chunkTrailer:
		return b.readTrailers()
	}
	return nil
}

func (b *body) startChunk(size int64) {
	if size == 0 {
		b.state = chunkTrailer
		return
	}
	b.state, b.n = chunkData, size
}

// advance moves the chunked decoder over bytes already buffered, never
// reading from the network. Chunk data is skipped only when discard is
// set (Close draining); otherwise advance stops at the next chunk data. It
// returns io.EOF when it reached the end of the body.
func (b *body) advance(discard bool) error {
	for {
		buf, _ := b.br.Peek(b.br.Buffered())
		switch b.state {
		case chunkData:
			if !discard || len(buf) == 0 {
				return nil
			}
			k := min(b.n, int64(len(buf)))
			_, _ = b.br.Discard(int(k))
			if b.n -= k; b.n > 0 {
				return nil
			}
			b.state = chunkDataEnd
		case chunkDataEnd:
			if len(buf) < 2 {
				return nil
			}
			if err := b.nextChunk(); err != nil {
				return err
			}
		case chunkSize:
			if bytes.IndexByte(buf, '\n') < 0 {
				return nil
			}
			if err := b.nextChunk(); err != nil {
				return err
			}
		case chunkTrailer:
			// Only when the whole trailer section is here.
			if !bytes.HasPrefix(buf, []byte("\r\n")) && !bytes.HasPrefix(buf, []byte("\n")) &&
				bytes.Index(buf, []byte("\n\r\n")) < 0 && bytes.Index(buf, []byte("\n\n")) < 0 {
				return nil
			}
			return b.readTrailers()
		}
	}
}

// parseChunkSize parses a chunk-size line: 1*HEXDIG, optional chunk
// extensions (ignored, RFC 9112 section 7.1.1), CRLF. A bare LF is
// refused: lenient chunk-line endings are a known request-smuggling
// vector between parsers that disagree (CVE-2025-22871).
func parseChunkSize(line []byte) (int64, error) {
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, malformed("chunk-size line not ended by CRLF")
	}
	line = line[:len(line)-2]
	var size uint64
	i := 0
	for ; i < len(line); i++ {
		d, ok := unhex(line[i])
		if !ok {
			break
		}
		if i == 16 {
			return 0, malformed("chunk size too large")
		}
		size = size<<4 | uint64(d)
	}
	if i == 0 {
		return 0, malformed("invalid chunk size")
	}
	if size > math.MaxInt64 {
		return 0, malformed("chunk size too large")
	}
	ext := line[i:]
	for len(ext) > 0 && (ext[0] == ' ' || ext[0] == '\t') {
		ext = ext[1:]
	}
	if len(ext) > 0 && (ext[0] != ';' || !httpwire.ValidFieldValue(string(ext))) {
		return 0, malformed("invalid chunk extension")
	}
	return int64(size), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// readTrailers reads the trailer section after the last chunk into
// resp.Trailer and returns io.EOF. Every received field is kept, declared
// or not, as net/http does.
func (b *body) readTrailers() error {
	for {
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return malformed("trailer field too long")
			}
			return unexpected(err)
		}
		b.trailerBytes += len(line)
		if b.trailerBytes > maxHeadBytes {
			return malformed("trailer section too large")
		}
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return io.EOF
		}
		s, _, _ := cutLine(string(line))
		name, value, err := splitField(s)
		if err != nil {
			return err
		}
		if b.resp.Trailer == nil {
			b.resp.Trailer = make(http.Header)
		}
		key := httpwire.CanonicalKey(name)
		b.resp.Trailer[key] = append(b.resp.Trailer[key], value)
	}
}

// unexpected maps the end of the stream inside a body to
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// end finishes the body with err (io.EOF for a complete body) and returns
// the error Read should report. It runs once, with mu held.
func (b *body) end(err error) error {
	reuse := err == io.EOF && b.mode != bodyUntilClose && !b.spoiled
	if err != io.EOF && b.pc != nil && b.pc.canceled.Load() {
		err = fmt.Errorf("h1client: reading response body: %w", b.resp.Request.Context().Err())
	}
	b.err = err
	if b.pc != nil {
		b.pc.done(reuse)
	}
	return err
}

// Close ends the body. A body not read to the end is drained when its
// remainder is already buffered, which keeps the connection reusable;
// otherwise the connection is closed. Close is idempotent and always
// returns nil.
func (b *body) Close() error {
	interrupted := false
	for done := false; !done; {
		switch b.rstate.Load() {
		case readIdle:
			done = b.rstate.CompareAndSwap(readIdle, readClosed)
		case readBusy:
			// Another goroutine is blocked in Read: unblock it. That Read
			// will see readInterrupted and not pool the connection.
			if b.rstate.CompareAndSwap(readBusy, readInterrupted) {
				if b.pc != nil {
					b.pc.interrupt()
				}
				interrupted, done = true, true
			}
		default:
			done = true
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil
	}
	reuse := !interrupted && !b.spoiled && b.drain()
	b.err = errBodyClosed
	if b.pc != nil {
		b.pc.done(reuse)
	}
	return nil
}

// drain discards the rest of the body if it is already buffered, and
// reports whether the body then ended cleanly.
func (b *body) drain() bool {
	switch b.mode {
	case bodyLength:
		if b.n > int64(b.br.Buffered()) || b.n > maxDrain {
			return false
		}
		_, _ = b.br.Discard(int(b.n))
		b.n = 0
		return true
	case bodyChunked:
		return b.advance(true) == io.EOF
	}
	return false
}

// upgradeBody is the body of a 101 Switching Protocols response: the raw
// connection, bytes the transport had already buffered first. It is an
// io.ReadWriteCloser, what reverse proxies assert to tunnel the new
// protocol. Read and Write may be called concurrently; Close closes the
// connection (it is never pooled).
type upgradeBody struct{ pc *conn }

// Read reads from the upgraded connection.
func (u *upgradeBody) Read(p []byte) (int, error) { return u.pc.br.Read(p) }

// Write writes to the upgraded connection.
func (u *upgradeBody) Write(p []byte) (int, error) { return u.pc.nc.Write(p) }

// Close closes the connection.
func (u *upgradeBody) Close() error {
	u.pc.close()
	return nil
}

// CloseWrite half-closes the connection when it supports it (TCP), so a
// tunnel can pass on one side's end of stream.
func (u *upgradeBody) CloseWrite() error {
	if cw, ok := u.pc.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Interface guards.
var (
	_ io.ReadCloser      = (*body)(nil)
	_ io.ReadWriteCloser = (*upgradeBody)(nil)
)
