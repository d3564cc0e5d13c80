package main

import (
	"bufio"
	"net"
	"net/http"

	"golang.org/x/net/http2"

	"github.com/keelproxy/keel/internal/config"
)

// newH2CHandler returns the hand-off the HTTP/1.1 server uses for
// connections that open with the HTTP/2 prior-knowledge preface. HTTP/2
// gets the same limits as HTTP/1: header bytes through the http2 server,
// URL length and header count in proxy.Handler (proxy.Options.H2Limits).
func newH2CHandler(h http.Handler, s config.Server) func(net.Conn, *bufio.Reader) {
	h2s := &http2.Server{
		IdleTimeout:          s.IdleTimeout.Std(),
		MaxConcurrentStreams: 250,
	}
	base := &http.Server{MaxHeaderBytes: int(s.MaxHeaderBytes.Bytes())}
	return func(c net.Conn, br *bufio.Reader) {
		h2s.ServeConn(&bufferedConn{Conn: c, r: br}, &http2.ServeConnOpts{Handler: h, BaseConfig: base})
	}
}

// bufferedConn replays bytes the HTTP/1 server had already read (the
// preface and whatever followed) before reading from the socket.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
