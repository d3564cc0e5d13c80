package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/net/http2"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/server/h1"
	"github.com/keelproxy/keel/internal/server/h2guard"
)

// HTTP/2 limits of the data-plane listeners. 100 concurrent streams is
// what HAProxy, Envoy's recommended edge settings and browsers expect;
// the windows let one stream upload at ~1 MiB in flight without letting a
// connection pin more than 4 MiB of the proxy's memory.
const (
	h2MaxConcurrentStreams = 100
	h2StreamWindow         = 1 << 20
	h2ConnWindow           = 4 << 20
)

// h2Engine is the x/net/http2 server behind a data-plane listener: it
// takes h2c connections from the plaintext listener and TLS connections
// that negotiated "h2". HTTP/2 gets the same limits as HTTP/1: header
// bytes through the http2 server, URL length and header count in
// proxy.Handler (proxy.Options.H2Limits).
//
// Connections pass through h2guard, which makes the server's handling of
// malformed requests and repeated settings follow RFC 9113 (h2spec 145 of
// 145 on the TLS listener) and closes connections that reset most of the
// streams they open (rapid reset, CVE-2023-44487: x/net's cap on handlers
// in flight never trips when each reset handler ends at once). x/net/http2
// carries the other abuse defences: it bounds the header block,
// CONTINUATION frames included, by MaxHeaderBytes (CVE-2023-45288), and
// caps handlers in flight at MaxConcurrentStreams.
type h2Engine struct {
	h2s  *http2.Server
	base *http.Server
	h    http.Handler
}

func newH2Engine(h http.Handler, s config.Server, logger *slog.Logger) (*h2Engine, error) {
	e := &h2Engine{
		h: h,
		h2s: &http2.Server{
			IdleTimeout:                  s.IdleTimeout.Std(),
			MaxConcurrentStreams:         h2MaxConcurrentStreams,
			MaxUploadBufferPerStream:     h2StreamWindow,
			MaxUploadBufferPerConnection: h2ConnWindow,
			// The RFC's default frame size, which h2guard relies on: a
			// larger advertised size would let clients make it pass
			// header blocks through unchecked.
			MaxReadFrameSize: 16384,
		},
		// Protocol errors of single clients are debug-level news: at
		// info a scanner could flood the log.
		base: &http.Server{MaxHeaderBytes: int(s.MaxHeaderBytes.Bytes()),
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)},
	}
	if err := http2.ConfigureServer(e.base, e.h2s); err != nil {
		return nil, err
	}
	return e, nil
}

// serve runs one HTTP/2 connection until it ends.
func (e *h2Engine) serve(c net.Conn) {
	e.h2s.ServeConn(h2guard.New(c), &http2.ServeConnOpts{Handler: e.h, BaseConfig: e.base})
}

// attach makes srv hand HTTP/2 connections to e: h2c prior-knowledge
// connections when h2c is set, TLS connections that negotiated "h2" when
// srv terminates TLS. Shutdown of srv sends GOAWAY on them through the
// base server, so graceful shutdown does not wait on idle HTTP/2 clients.
func (e *h2Engine) attach(srv *h1.Server, h2c bool) {
	if h2c {
		srv.H2C = func(c net.Conn, br *bufio.Reader) { e.serve(&h1.BufferedConn{Conn: c, R: br}) }
	}
	if srv.TLSConfig != nil {
		srv.TLSNextProto = map[string]func(*tls.Conn){"h2": func(c *tls.Conn) { e.serve(c) }}
	}
	srv.RegisterOnShutdown(func() {
		// base has no listeners or HTTP/1 connections of its own: this
		// only starts GOAWAY on the HTTP/2 connections and returns.
		_ = e.base.Shutdown(context.Background())
	})
}
