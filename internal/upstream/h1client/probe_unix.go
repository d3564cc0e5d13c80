//go:build unix

package h1client

import (
	"net"
	"syscall"
)

// prober checks whether a parked connection is unusable: the upstream
// closed it (FIN), reset it, or sent something nobody asked for (an
// unsolicited 408, say, which would otherwise be read as the answer to the
// next request). It makes one non-blocking read system call: the
// descriptor is non-blocking, so an open, silent connection answers EAGAIN
// at once. The raw connection and the callback are made once per
// connection, so a probe of a plaintext connection allocates nothing. A
// *tls.Conn is probed twice: its own buffers first (see tlsProbe), then
// the socket under it, where any byte (the start of a TLS record) or the
// end of the stream likewise makes it unusable. A record that is harmless
// after all (a session ticket a server sends late) then costs one new,
// resumed, connection: a rare, cheap mistake. A zero prober
// (connections that are not system sockets) reports every connection
// alive.
type prober struct {
	raw  syscall.RawConn
	fn   func(fd uintptr) bool
	gone bool
	tls  tlsProbe
}

func (p *prober) init(nc net.Conn) {
	nc = p.tls.init(nc)
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.raw = raw
	p.fn = func(fd uintptr) bool {
		var b [1]byte
		n, err := syscall.Read(int(fd), b[:])
		p.gone = !(n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK))
		return true // never wait for readiness
	}
}

// peerGone reports whether the connection must not be reused.
func (p *prober) peerGone() bool {
	if p.tls.pending() {
		return true
	}
	if p.raw == nil {
		return false
	}
	p.gone = false
	err := p.raw.Read(p.fn)
	return p.gone || err != nil
}
