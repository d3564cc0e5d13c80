package proxyproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// conn is the connection Accept returns when it has bytes to replay or
// addresses to replace. Everything but Read, RemoteAddr, LocalAddr,
// CloseWrite and ReadFrom is c's own. Like any net.Conn its methods may be
// called concurrently.
type conn struct {
	net.Conn

	// pending is true while rest holds bytes: the one check Read makes
	// once the header's leftovers are gone.
	pending atomic.Bool
	// mu guards rest, which net.Conn's contract lets concurrent Reads
	// share.
	mu   sync.Mutex
	rest []byte // read past the header, returned before c's bytes

	// Set once by newConn; nil means c's own address.
	raddr, laddr net.Addr
	// tcp and ips back raddr and laddr, so replacing the addresses costs
	// no allocation beyond conn itself.
	tcp [2]net.TCPAddr
	ips [2][16]byte
}

// newConn wraps c to return rest first and, when h carries them, report
// h's addresses.
func newConn(c net.Conn, h header, rest []byte) *conn {
	pc := &conn{Conn: c}
	if len(rest) > 0 {
		pc.rest = rest
		pc.pending.Store(true)
	}
	if h.src.IsValid() {
		pc.raddr = pc.tcpAddr(0, h.src)
		pc.laddr = pc.tcpAddr(1, h.dst)
	}
	return pc
}

// tcpAddr fills and returns slot i of the address storage.
func (c *conn) tcpAddr(i int, ap netip.AddrPort) *net.TCPAddr {
	a := ap.Addr()
	var ip net.IP
	if a.Is4() {
		v4 := (*[4]byte)(c.ips[i][:4])
		*v4 = a.As4()
		ip = v4[:]
	} else {
		c.ips[i] = a.As16()
		ip = c.ips[i][:]
	}
	c.tcp[i] = net.TCPAddr{IP: ip, Port: int(ap.Port())}
	return &c.tcp[i]
}

// Read returns the bytes read past the header first, then reads from the
// underlying connection. After the leftovers it costs one atomic load.
func (c *conn) Read(b []byte) (int, error) {
	if c.pending.Load() {
		if n, ok := c.readRest(b); ok {
			return n, nil
		}
	}
	return c.Conn.Read(b)
}

// readRest copies from rest into b; ok is false when rest is empty.
func (c *conn) readRest(b []byte) (n int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rest) == 0 {
		return 0, false
	}
	n = copy(b, c.rest)
	c.rest = c.rest[n:]
	if len(c.rest) == 0 {
		c.rest = nil // let the read buffer go
		c.pending.Store(false)
	}
	return n, true
}

// RemoteAddr returns the header's source address, or the underlying
// connection's when the header carried none. The caller must not modify
// it.
func (c *conn) RemoteAddr() net.Addr {
	if c.raddr != nil {
		return c.raddr
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr returns the header's destination address, or the underlying
// connection's when the header carried none. The caller must not modify
// it.
func (c *conn) LocalAddr() net.Addr {
	if c.laddr != nil {
		return c.laddr
	}
	return c.Conn.LocalAddr()
}

// CloseWrite half-closes the underlying connection, so that a server can
// send its last response, shut down writing and still drain the client
// (RFC 9112 9.6), as it would without the wrapper. It fails with an error
// wrapping errors.ErrUnsupported when the underlying connection has no
// CloseWrite.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("proxyproto: %T has no CloseWrite: %w", c.Conn, errors.ErrUnsupported)
}

// ReadFrom writes r's bytes to the underlying connection through its own
// ReadFrom when it has one, which for *net.TCPConn means splice or
// sendfile: an upgraded connection's io.Copy keeps the zero-copy path it
// would have without the wrapper.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// Interface guards: servers find these methods by type assertion.
var (
	_ net.Conn                        = (*conn)(nil)
	_ interface{ CloseWrite() error } = (*conn)(nil)
	_ io.ReaderFrom                   = (*conn)(nil)
)
