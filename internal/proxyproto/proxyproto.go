package proxyproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ErrInvalidHeader is wrapped by the error Accept returns for bytes that
// start like a PROXY header but are not a valid one, including a header
// cut short by the peer closing the connection.
var ErrInvalidHeader = errors.New("proxyproto: invalid header")

// ErrUntrusted is wrapped by the error Accept returns when a peer outside
// the Trusted set starts its connection with a PROXY header.
var ErrUntrusted = errors.New("proxyproto: header from untrusted peer")

const (
	// firstBufLen is the buffer every connection reads its first bytes
	// into: room for the longest v1 line and for a v2 header with IPv6
	// addresses and a couple hundred bytes of TLVs, so only exotic
	// headers need a second allocation.
	firstBufLen = 256
	// maxEmptyReads bounds Read calls that return neither data nor error,
	// which io.Reader discourages but does not forbid (bufio's limit).
	maxEmptyReads = 100
)

// Accept reads an optional PROXY header from the start of c, which was
// just accepted, and returns the connection to serve in its place.
//
// Which peers may send a header, which addresses the returned connection
// reports and what is malformed are in the package documentation. The
// returned connection's Read first returns the bytes Accept read past the
// header; it has c's Write, Close and deadline methods, and a CloseWrite
// that half-closes c when c can (net/http and h1 half-close before
// closing). Like c, its methods may be called concurrently, and closing it
// closes c. When there is nothing to change Accept returns c itself.
//
// A timeout above zero bounds the whole read, for every peer (an
// untrusted one too must show its first bytes before its header can be
// refused): Accept sets it as c's read deadline and clears the deadline
// before returning. A peer that has not sent enough to decide by then
// gets an error, as with a server's read-header timeout; pass something
// like that timeout, and at least 3s (spec 2: a TCP retransmit). A
// timeout of zero or less sets no deadline and leaves c's alone, so a
// silent peer blocks Accept for as long as c allows. Either way call
// Accept from the connection's own goroutine, never the accept loop.
//
// On error the returned connection is nil and c is not closed: the caller
// closes it. The error wraps ErrUntrusted, ErrInvalidHeader, or the error
// from c (os.ErrDeadlineExceeded when the timeout expires first). Accept
// may be called concurrently for different connections.
func Accept(c net.Conn, trusted Trusted, timeout time.Duration) (net.Conn, error) {
	if timeout > 0 {
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return nil, fmt.Errorf("proxyproto: setting read deadline: %w", err)
		}
	}
	pc, err := accept(c, trusted)
	if timeout > 0 {
		// Cleared on error too, although the caller is about to close c: a
		// deadline left behind would be a trap for any other use.
		if derr := c.SetReadDeadline(time.Time{}); derr != nil && err == nil {
			return nil, fmt.Errorf("proxyproto: clearing read deadline: %w", derr)
		}
	}
	if err != nil {
		return nil, err
	}
	return pc, nil
}

// accept is Accept without the deadline.
func accept(c net.Conn, trusted Trusted) (net.Conn, error) {
	r := reader{c: c, buf: make([]byte, firstBufLen)}
	v, err := r.sniff()
	if err != nil {
		return nil, err
	}
	if v == noHeader {
		return r.conn(header{}), nil
	}
	if !trusted.Contains(c.RemoteAddr()) {
		return nil, fmt.Errorf("%w: %v sent a v%d header", ErrUntrusted, c.RemoteAddr(), v)
	}
	var h header
	if v == version1 {
		h, err = r.readV1()
	} else {
		h, err = r.readV2()
	}
	if err != nil {
		return nil, err
	}
	return r.conn(h), nil
}

// version is what the first bytes of a connection turned out to be.
type version int

const (
	undecided version = iota // the bytes so far are a prefix of a header
	version1                 // "PROXY "
	version2                 // the v2 signature
	noHeader                 // anything else
)

const (
	v1Prefix = "PROXY "
	// v2Sig is the version 2 signature (spec 2.2). It was chosen to be
	// rejected by common protocols, which is also why it cannot start
	// anything they send.
	v2Sig = "\r\n\r\n\x00\r\nQUIT\n"
)

// sniffVersion classifies b, the first bytes of a connection.
func sniffVersion(b []byte) version {
	switch {
	case agrees(b, v1Prefix):
		if len(b) >= len(v1Prefix) {
			return version1
		}
		return undecided
	case agrees(b, v2Sig):
		if len(b) >= len(v2Sig) {
			return version2
		}
		return undecided
	}
	return noHeader
}

// agrees reports whether b and p are equal over their common length.
func agrees(b []byte, p string) bool {
	n := min(len(b), len(p))
	return string(b[:n]) == p[:n]
}

// reader reads a connection's first bytes into buf.
type reader struct {
	c   net.Conn
	buf []byte
	n   int // bytes of buf read from c
}

// fill reads from c once into buf[n:], which must have room. An error that
// comes with data is dropped: c returns it again on the next Read.
func (r *reader) fill() error {
	for range maxEmptyReads {
		m, err := r.c.Read(r.buf[r.n:])
		r.n += m
		if m > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// atLeast reads until buf holds n bytes of a header of version v.
func (r *reader) atLeast(n int, v version) error {
	for r.n < n {
		if err := r.fill(); err != nil {
			return r.headerReadErr(err, v)
		}
	}
	return nil
}

// headerReadErr describes a read error in the middle of a header.
func (r *reader) headerReadErr(err error, v version) error {
	if err == io.EOF { // by io.Reader's contract, never wrapped
		return fmt.Errorf("%w: v%d header cut short after %d bytes: %w", ErrInvalidHeader, v, r.n, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("proxyproto: reading v%d header: %w", v, err)
}

// sniff reads until the first bytes decide whether a header follows,
// which takes one read for nearly every non-header connection.
func (r *reader) sniff() (version, error) {
	for {
		if v := sniffVersion(r.buf[:r.n]); v != undecided {
			return v, nil
		}
		err := r.fill()
		if err == io.EOF {
			// Closed on a prefix of a header, or before sending anything (a
			// TCP health check): not a header, and the server sees EOF.
			return noHeader, nil
		}
		if err != nil {
			return undecided, fmt.Errorf("proxyproto: reading first bytes: %w", err)
		}
	}
}

// conn returns the connection to serve after header h: c itself when
// there is nothing to replay or replace.
func (r *reader) conn(h header) net.Conn {
	rest := r.buf[h.size:r.n]
	if len(rest) == 0 && !h.src.IsValid() {
		return r.c
	}
	return newConn(r.c, h, rest)
}
