//go:build !unix

package h1client

import "net"

// prober cannot probe a socket without blocking on this platform: only the
// buffers of a *tls.Conn are checked (see tlsProbe), connections are
// otherwise assumed alive, and a stale one is caught by the retry of
// RoundTrip.
type prober struct{ tls tlsProbe }

func (p *prober) init(nc net.Conn) { p.tls.init(nc) }

func (p *prober) peerGone() bool { return p.tls.pending() }
