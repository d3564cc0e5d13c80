//go:build !unix

package h1client

import "net"

// prober cannot probe without blocking on this platform: connections are
// assumed alive, and a stale one is caught by the retry of RoundTrip.
type prober struct{}

func (p *prober) init(net.Conn) {}

func (p *prober) peerGone() bool { return false }
