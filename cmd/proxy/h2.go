package main

import (
	"bufio"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/server/h1"
	"github.com/keelproxy/keel/internal/server/h2"
)

// h2Engine is the HTTP/2 server behind a data-plane listener: it takes
// h2c connections from the plaintext listener and TLS connections that
// negotiated "h2". HTTP/2 gets the same limits as HTTP/1: header bytes
// and timeouts here, URL length and header count in proxy.Handler
// (proxy.Options.H2Limits). The stream limits and windows are h2's
// defaults: 100 concurrent streams, 1 MiB per stream and 4 MiB per
// connection of request body in flight.
type h2Engine struct {
	srv *h2.Server
}

func newH2Engine(h http.Handler, s config.Server, logger *slog.Logger) *h2Engine {
	return &h2Engine{srv: &h2.Server{
		Handler:        h,
		MaxHeaderBytes: int(s.MaxHeaderBytes.Bytes()),
		PrefaceTimeout: s.ReadHeaderTimeout.Std(),
		IdleTimeout:    s.IdleTimeout.Std(),
		// Same slow-client bound as HTTP/1 writes.
		SlowClientTimeout: s.SlowClientTimeout.Std(),
		ErrorLog:          logger,
	}}
}

// attach makes srv hand HTTP/2 connections to e: h2c prior-knowledge
// connections when h2c is set, TLS connections that negotiated "h2" when
// srv terminates TLS. Shutdown of srv sends GOAWAY on them, so graceful
// shutdown does not wait on idle HTTP/2 clients; srv counts them as
// active and closes those that outlive the grace period.
func (e *h2Engine) attach(srv *h1.Server, h2c bool) {
	if h2c {
		srv.H2C = func(c net.Conn, br *bufio.Reader) { e.srv.ServeConn(&h1.BufferedConn{Conn: c, R: br}) }
	}
	if srv.TLSConfig != nil {
		srv.TLSNextProto = map[string]func(*tls.Conn){"h2": func(c *tls.Conn) { e.srv.ServeConn(c) }}
	}
	srv.RegisterOnShutdown(e.srv.Shutdown)
}
