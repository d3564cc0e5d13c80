//go:build unix

package h1client

import (
	"net"
	"syscall"
)

// peerGone reports whether a parked connection is unusable: the upstream
// closed it (FIN), reset it, or sent something nobody asked for (an
// unsolicited 408, say, which would otherwise be read as the answer to the
// next request). It makes one non-blocking read system call: the
// descriptor is non-blocking, so an open, silent connection answers EAGAIN
// at once. Connections that are not system sockets are assumed alive.
func peerGone(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, err := syscall.Read(int(fd), b[:])
		gone = !(n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK))
		return true // never wait for readiness
	})
	return gone || err != nil
}
