//go:build !unix

package h1client

import "net"

// peerGone cannot probe without blocking on this platform: the connection
// is assumed alive, and a stale one is caught by the retry of RoundTrip.
func peerGone(net.Conn) bool { return false }
