// Package h2guard sits between a server-side HTTP/2 connection and the
// x/net/http2 server, on the read side only. It closes the gap between
// that server and RFC 9113 where its choices are looser or stricter than
// the RFC (h2spec: 141 of 145 before, 145 with the guard), and adds the
// rapid-reset limit x/net lacks:
//
//   - A request carrying a connection-specific field (Connection,
//     Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade) or TE with
//     a value other than "trailers" is malformed (RFC 9113 8.2.2) and must
//     be a stream error; x/net answers it with a 400 response instead,
//     which a proxy must not do: a client that sends those fields is
//     broken or probing for request smuggling. The guard ends the
//     connection, which RFC 9113 5.4 allows for any stream error.
//   - A client that opens streams only to reset them (rapid reset,
//     CVE-2023-44487) makes a proxy start an upstream request per stream
//     while x/net's own defence, a cap on queued handlers, never trips:
//     each reset handler ends at once. Like Envoy's premature-reset
//     limit, the guard ends a connection once it has opened at least
//     100 streams and reset more than half of them.
//   - A SETTINGS frame may repeat a parameter, and the values apply in
//     order (6.5.3); x/net hangs up on any repeat. The guard renames all
//     but the last occurrence of each parameter to an unknown identifier,
//     which receivers ignore (6.5.2), so the frame keeps its length and
//     the last value wins as the RFC says.
//
// Finding those fields means decoding every header block, so the guard
// runs its own HPACK decoder in step with the server's (the dynamic table
// must be mirrored). That costs about 0.2 µs per request (BenchmarkGuard).
package h2guard

import (
	"crypto/tls"
	"errors"
	"io"
	"net"

	"golang.org/x/net/http2/hpack"
)

// ErrRapidReset is returned by Read when the client reset more than half
// of the (at least resetMinStreams) streams it opened.
var ErrRapidReset = errors.New("h2guard: too many streams reset by the client (rapid reset)")

// ErrMalformed is returned by Read when the client sent a malformed
// request; the HTTP/2 server then closes the connection.
var ErrMalformed = errors.New("h2guard: malformed HTTP/2 request (connection-specific header field)")

// errUnchecked is returned by Read for a header block that follows one
// the guard's decoder failed on: its dynamic table may no longer match
// the server's, so the block cannot be checked.
var errUnchecked = errors.New("h2guard: HTTP/2 header block after an HPACK decoding error")

// Frame layout (RFC 9113 4.1) and the ids and flags the guard reads.
const (
	frameHeaderLen    = 9
	prefaceLen        = 24 // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", checked by the server
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	frameContinuation = 0x9
	flagAck           = 0x1
	flagEndHeaders    = 0x4
	flagPadded        = 0x8
	flagPriority      = 0x20
	// maxHeld is the largest frame the guard buffers whole: the
	// SETTINGS_MAX_FRAME_SIZE the server must advertise (the RFC's
	// minimum, 16 KiB). Larger frames pass through for the server to
	// reject with FRAME_SIZE_ERROR.
	maxHeld = 16384
	// headerTableSize is the HPACK dynamic table size the server
	// advertises (x/net's default, 4096).
	headerTableSize = 4096
	// resetMinStreams is how many streams a connection opens before its
	// reset ratio is judged: a browser that cancels a few navigations
	// early in a connection is never at risk.
	resetMinStreams = 100
	// unknownSettingBase renames repeated SETTINGS parameters: ids from
	// here on are unassigned.
	unknownSettingBase = 0xf000
	// maxSettings is the most parameters x/net accepts in one SETTINGS
	// frame: it hangs up on larger ones, so they are left alone rather
	// than scanned in quadratic time.
	maxSettings = 100
)

// Conn is a net.Conn whose reads are checked as described in the package
// documentation. Writes, deadlines and Close go to the wrapped conn. Read
// must not be called concurrently (the HTTP/2 server reads from one
// goroutine).
type Conn struct {
	net.Conn
	buf []byte
	// buf[rd:ok] is checked and ready for Read; buf[ok:end] is read but
	// not yet checked (part of a frame header or of a held frame).
	rd, ok, end int
	preface     int // preface bytes still to pass
	payload     int // bytes of a passed-through frame payload still to pass
	dec         *hpack.Decoder
	bad         bool // the current header block is malformed
	inBlock     bool // a HEADERS frame without END_HEADERS was seen
	lost        bool // the decoder failed: later blocks cannot be checked
	err         error
	// streams counts the streams the client opened (HEADERS on a new,
	// higher stream id) and resets its RST_STREAM frames, for the
	// rapid-reset limit.
	streams, resets int
	maxStream       uint32
}

// New wraps c, a server-side HTTP/2 connection positioned at the client
// preface. When c is a TLS connection the result also has its
// ConnectionState method, which the HTTP/2 server uses to check the
// negotiated protocol and fill Request.TLS; a plaintext (h2c) result has
// none, so the server does not mistake it for TLS.
func New(c net.Conn) net.Conn {
	g := &Conn{Conn: c, buf: make([]byte, 4096), preface: prefaceLen}
	g.dec = hpack.NewDecoder(headerTableSize, g.field)
	if tc, ok := c.(connectionStater); ok {
		return &tlsConn{Conn: g, tc: tc}
	}
	return g
}

type connectionStater interface {
	ConnectionState() tls.ConnectionState
}

// tlsConn is a guarded TLS connection.
type tlsConn struct {
	*Conn
	tc connectionStater
}

// ConnectionState returns the TLS state of the wrapped connection.
func (c *tlsConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// field checks one decoded header field.
func (g *Conn) field(f hpack.HeaderField) {
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		g.bad = true
	case "te":
		// An empty TE names no coding: allowed, as x/net allows it.
		if f.Value != "trailers" && f.Value != "" {
			g.bad = true
		}
	}
}

// Read implements io.Reader.
func (g *Conn) Read(p []byte) (int, error) {
	for g.rd == g.ok {
		if g.err != nil {
			return 0, g.err
		}
		g.fill()
	}
	n := copy(p, g.buf[g.rd:g.ok])
	g.rd += n
	return n, nil
}

// fill reads more bytes and checks as many as it can.
func (g *Conn) fill() {
	if g.rd == g.end {
		g.rd, g.ok, g.end = 0, 0, 0
	} else if g.rd > 0 && g.end == len(g.buf) {
		n := copy(g.buf, g.buf[g.rd:g.end])
		g.ok -= g.rd
		g.end = n
		g.rd = 0
	}
	if g.end == len(g.buf) {
		// A held frame is larger than the buffer: grow to fit the
		// largest one held.
		nb := make([]byte, frameHeaderLen+maxHeld)
		g.end = copy(nb, g.buf[g.rd:g.end])
		g.ok -= g.rd
		g.rd = 0
		g.buf = nb
	}
	n, err := g.Conn.Read(g.buf[g.end:])
	g.end += n
	if err != nil {
		g.err = err
	}
	if cerr := g.check(); cerr != nil {
		g.err = cerr
		return
	}
	if g.err != nil && g.ok < g.end && err == io.EOF {
		// A connection that ends inside a frame: hand the server what
		// there is, it reports the truncation.
		g.ok = g.end
	}
}

// check advances g.ok over every complete unit in buf[ok:end].
func (g *Conn) check() error {
	for g.ok < g.end {
		avail := g.end - g.ok
		switch {
		case g.preface > 0:
			n := min(g.preface, avail)
			g.preface -= n
			g.ok += n
		case g.payload > 0:
			n := min(g.payload, avail)
			g.payload -= n
			g.ok += n
		default:
			if avail < frameHeaderLen {
				return nil
			}
			h := g.buf[g.ok:]
			length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
			typ, flags := h[3], h[4]
			switch typ {
			case frameHeaders:
				if id := uint32(h[5]&0x7f)<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8]); id > g.maxStream {
					g.maxStream = id
					g.streams++
				}
			case frameRSTStream:
				g.resets++
				if g.streams >= resetMinStreams && 2*g.resets > g.streams {
					return ErrRapidReset
				}
			}
			held := length <= maxHeld && (typ == frameHeaders || typ == frameContinuation ||
				(typ == frameSettings && flags&flagAck == 0))
			if !held {
				g.ok += frameHeaderLen
				g.payload = length
				continue
			}
			if avail < frameHeaderLen+length {
				return nil
			}
			body := g.buf[g.ok+frameHeaderLen : g.ok+frameHeaderLen+length]
			if typ == frameSettings {
				dedupeSettings(body)
			} else if err := g.headerBlock(typ, flags, body); err != nil {
				return err
			}
			g.ok += frameHeaderLen + length
		}
	}
	return nil
}

// headerBlock feeds a HEADERS or CONTINUATION fragment to the decoder.
// Framing errors (bad padding, CONTINUATION out of place) are the
// server's to report: the guard stops checking that block.
func (g *Conn) headerBlock(typ, flags byte, body []byte) error {
	if typ == frameHeaders {
		if g.lost {
			return errUnchecked
		}
		g.inBlock, g.bad = true, false
		if flags&flagPadded != 0 {
			if len(body) < 1 || int(body[0]) > len(body)-1 {
				g.inBlock = false
				return nil
			}
			body = body[1 : len(body)-int(body[0])]
		}
		if flags&flagPriority != 0 {
			if len(body) < 5 {
				g.inBlock = false
				return nil
			}
			body = body[5:]
		}
	} else if !g.inBlock {
		return nil
	}
	if _, err := g.dec.Write(body); err != nil {
		// A compression error is the server's to report (its GOAWAY
		// ends the connection). But the server's decoder may not fail:
		// it skips the Huffman decoding of literals it does not emit
		// (after an invalid field, or past its header list limit) and
		// goes on, with a dynamic table the guard no longer mirrors.
		// Then the next header block ends the connection.
		g.inBlock, g.lost = false, true
		return nil
	}
	if flags&flagEndHeaders != 0 {
		g.inBlock = false
		if err := g.dec.Close(); err != nil {
			g.lost = true
			return nil
		}
		if g.bad {
			return ErrMalformed
		}
	}
	return nil
}

// dedupeSettings renames every parameter of a SETTINGS payload that a
// later entry repeats, so only the last value of each applies. The new
// ids are unknown ones that the payload does not hold, so no new repeat
// appears.
func dedupeSettings(p []byte) {
	n := len(p) / 6
	if n > maxSettings {
		return
	}
	// The new ids are the first free ones from unknownSettingBase on.
	// The ids skipped are those of entries that keep theirs, so with
	// those given out they number at most n: u stays below n.
	var taken [maxSettings]bool
	for i := 0; i < n; i++ {
		if k := int(settingID(p, i)) - unknownSettingBase; k >= 0 && k < len(taken) {
			taken[k] = true
		}
	}
	u := 0
	for i := 0; i < n; i++ {
		id := settingID(p, i)
		for j := i + 1; j < n; j++ {
			if settingID(p, j) == id {
				for taken[u] {
					u++
				}
				v := unknownSettingBase + u
				p[6*i], p[6*i+1] = byte(v>>8), byte(v)
				u++
				break
			}
		}
	}
}

// settingID is the id of entry i of a SETTINGS payload.
func settingID(p []byte, i int) uint16 { return uint16(p[6*i])<<8 | uint16(p[6*i+1]) }
