package h1client

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"time"
)

// tlsProbe is the part of the idle probe that looks into crypto/tls's
// buffers. A TLS connection reads the socket record by record and may hold
// bytes the response parser never asked for: whole records read along with
// the last response (an unsolicited 408, a close_notify alert) sit in the
// *tls.Conn, no longer in the socket, where the socket probe alone would
// miss them and call the connection idle. The zero value (a plaintext
// connection) finds nothing.
type tlsProbe struct {
	c *tls.Conn
	b [1]byte
}

// init records nc when it is a *tls.Conn, and returns the connection the
// socket probe must look at: the TCP connection under the TLS layer, since
// a *tls.Conn exposes no descriptor.
func (p *tlsProbe) init(nc net.Conn) net.Conn {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nc
	}
	p.c = tc
	return tc.NetConn()
}

// pending reports whether the TLS layer holds data, an alert or an error,
// any of which makes the connection unusable. It reads with a deadline in
// the past: crypto/tls then serves what it buffered without a system call
// (processing post-handshake messages such as session tickets, which do
// not count) and, once it needs the socket, fails with a timeout, which it
// does not keep as a sticky error. One byte of data consumed by the probe
// does not matter: a connection with data is closed. The connection is
// parked, so no round trip owns its deadlines.
func (p *tlsProbe) pending() bool {
	if p.c == nil {
		return false
	}
	if p.c.SetReadDeadline(pastDeadline()) != nil {
		return true
	}
	n, err := p.c.Read(p.b[:])
	if p.c.SetReadDeadline(time.Time{}) != nil {
		return true
	}
	return n > 0 || !errors.Is(err, os.ErrDeadlineExceeded)
}
