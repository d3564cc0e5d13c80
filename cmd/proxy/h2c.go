package main

import (
	"bufio"
	"context"
	"net"
	"net/http"

	"golang.org/x/net/http2"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/server/h1"
)

// enableH2C makes srv hand connections that open with the HTTP/2
// prior-knowledge preface to an x/net/http2 server. HTTP/2 gets the same
// limits as HTTP/1: header bytes through the http2 server, URL length and
// header count in proxy.Handler (proxy.Options.H2Limits). Shutdown of srv
// sends GOAWAY on the HTTP/2 connections through the base server, so
// graceful shutdown does not wait on idle HTTP/2 clients.
func enableH2C(srv *h1.Server, h http.Handler, s config.Server) error {
	h2s := &http2.Server{
		IdleTimeout:          s.IdleTimeout.Std(),
		MaxConcurrentStreams: 250,
	}
	base := &http.Server{MaxHeaderBytes: int(s.MaxHeaderBytes.Bytes())}
	if err := http2.ConfigureServer(base, h2s); err != nil {
		return err
	}
	srv.H2C = func(c net.Conn, br *bufio.Reader) {
		h2s.ServeConn(&h1.BufferedConn{Conn: c, R: br}, &http2.ServeConnOpts{Handler: h, BaseConfig: base})
	}
	srv.RegisterOnShutdown(func() {
		// base has no listeners or HTTP/1 connections of its own: this
		// only starts GOAWAY on the HTTP/2 connections and returns.
		_ = base.Shutdown(context.Background())
	})
	return nil
}
