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
// URL length and header count through limitH2.
func newH2CHandler(h http.Handler, s config.Server) func(net.Conn, *bufio.Reader) {
	h2s := &http2.Server{
		IdleTimeout:          s.IdleTimeout.Std(),
		MaxConcurrentStreams: 250,
	}
	base := &http.Server{MaxHeaderBytes: int(s.MaxHeaderBytes.Bytes())}
	lh := &limitH2{next: h, maxURL: int(s.MaxURLBytes.Bytes()), maxHeaders: s.MaxHeaderCount}
	return func(c net.Conn, br *bufio.Reader) {
		h2s.ServeConn(&bufferedConn{Conn: c, r: br}, &http2.ServeConnOpts{Handler: lh, BaseConfig: base})
	}
}

// bufferedConn replays bytes the HTTP/1 server had already read (the
// preface and whatever followed) before reading from the socket.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// limitH2 enforces server.max_url_bytes and server.max_header_count on
// HTTP/2 requests, which the HTTP/1 parser never sees.
type limitH2 struct {
	next       http.Handler
	maxURL     int
	maxHeaders int
}

func (l *limitH2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l.maxURL > 0 && len(r.RequestURI) > l.maxURL {
		http.Error(w, "URI too long", http.StatusRequestURITooLong)
		return
	}
	if l.maxHeaders > 0 {
		n := 0
		for _, vv := range r.Header {
			n += len(vv)
		}
		if n > l.maxHeaders {
			http.Error(w, "too many header fields", http.StatusRequestHeaderFieldsTooLarge)
			return
		}
	}
	l.next.ServeHTTP(w, r)
}
