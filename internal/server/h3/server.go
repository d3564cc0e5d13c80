package h3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// ErrServerClosed is returned by Serve after Shutdown or Close. It is
// net/http's value, as for the h1 server, so callers treat all
// listeners alike.
var ErrServerClosed = http.ErrServerClosed

var (
	errNoHandler   = errors.New("h3: Server.Handler is nil")
	errNoTLSConfig = errors.New("h3: Server.TLSConfig is nil")
)

// Defaults and fixed limits; see the package documentation.
const (
	// DefaultMaxHeaderBytes bounds a request's header section, as for
	// the h1 server.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultIdleTimeout closes a connection without a running
	// handler, the h1 server's default for idle connections.
	DefaultIdleTimeout = 60 * time.Second
	// HandshakeTimeout bounds a QUIC handshake; one that receives
	// nothing for half of it is dropped sooner.
	HandshakeTimeout = 10 * time.Second
	// MaxStreams is how many requests a client may have open at once on
	// one connection (QUIC's initial_max_streams_bidi).
	MaxStreams = 100
)

const (
	// maxUniStreams leaves room beyond the three unidirectional streams
	// HTTP/3 uses (control, QPACK encoder and decoder) for the reserved
	// "grease" stream types clients open (RFC 9114 6.2.3); quic-go's 100
	// would only let a client hold more server memory.
	maxUniStreams = 16
	// defaultGoAwayGrace is how long Shutdown lets a connection without
	// a running handler live after GOAWAY: time for GOAWAY to reach the
	// client, for requests already sent to start, and for the tail of
	// the last response to be acknowledged. x/net/http2 waits 1s too.
	defaultGoAwayGrace = time.Second
	// codeNoError is H3_NO_ERROR, for connections the server closes.
	codeNoError = quic.ApplicationErrorCode(http3.ErrCodeNoError)
)

// Server serves an http.Handler over HTTP/3 on one or more UDP sockets.
//
// Fields must be set before the first Serve and not changed afterwards.
// A Server must not be copied after first use. Its methods are safe for
// concurrent use; once Shutdown or Close has been called the Server
// cannot serve again.
type Server struct {
	// Handler answers every request. It is required. It runs on one of
	// quic-go's goroutines per request, and must return once the request
	// context is done: Shutdown and Close wait for it.
	Handler http.Handler

	// TLSConfig supplies certificates and the client-certificate policy.
	// It is required. Its callbacks (GetConfigForClient, GetCertificate,
	// VerifyConnection, ...) are called for every handshake, so they may
	// return a different config or certificate each time; its other
	// fields are read once when Serve starts. It is never modified, and
	// ALPN and the TLS version are set for QUIC whatever it says (see
	// the package documentation).
	TLSConfig *tls.Config

	// MaxHeaderBytes bounds a request's header section, measured as RFC
	// 9114 4.2.2 says (name, value and 32 bytes per field). Over it the
	// client gets 431. Zero or negative means DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// IdleTimeout closes a connection on which no handler has run for
	// this long (request streams still sending their headers do not
	// count); it is also QUIC's idle timeout for a peer that sends
	// nothing.
	// Zero or negative means DefaultIdleTimeout: unlike TCP, a QUIC
	// server has no other way to learn that a client has gone away, so
	// there is always a limit.
	IdleTimeout time.Duration

	// Logger receives handler panics and, at debug level, connections
	// that ended with an error. Nil means slog.Default().
	Logger *slog.Logger

	// goAwayGrace overrides defaultGoAwayGrace when positive; for tests.
	goAwayGrace time.Duration

	mu        sync.Mutex // guards closed, listeners and conns
	closed    bool       // set by Shutdown and Close; no new Serve or connection after
	listeners map[*quic.Listener]struct{}
	conns     map[*conn]struct{}

	// serving counts running Serve calls. Add is called only under mu
	// while !closed, so Shutdown and Close, which set closed first, can
	// Wait for it.
	serving sync.WaitGroup
}

// Serve accepts QUIC connections on pc and serves HTTP/3 on them. It
// takes ownership of pc, as quic-go's Transport does: nothing else may
// read from or write to it, and Serve closes it before returning.
//
// Serve blocks until Shutdown or Close has finished with the connections
// it accepted, then returns ErrServerClosed; it returns another error
// when the listener cannot start or pc fails. Serve may be called for
// several sockets (IPv4 and IPv6, say) on one Server.
func (s *Server) Serve(pc net.PacketConn) error {
	if s.Handler == nil {
		pc.Close()
		return errNoHandler
	}
	if s.TLSConfig == nil {
		pc.Close()
		return errNoTLSConfig
	}
	tr := &quic.Transport{Conn: pc}
	ln, err := s.listen(tr)
	if err != nil {
		_ = tr.Close()
		pc.Close()
		return err
	}
	// Run in reverse: wait for this Serve's connections, then stop the
	// transport (which would cut them) and the socket, and only then
	// tell Shutdown and Close that this Serve is done.
	defer s.serving.Done()
	defer pc.Close()
	defer tr.Close()
	defer s.forget(ln)
	var conns sync.WaitGroup
	defer conns.Wait()
	return s.accept(ln, &conns)
}

// accept hands each connection of ln to its own goroutine, counted in
// conns, until ln is closed or fails.
func (s *Server) accept(ln *quic.Listener, conns *sync.WaitGroup) error {
	for {
		qc, err := ln.Accept(context.Background())
		if err != nil {
			// After Shutdown or Close the listener was closed on
			// purpose; otherwise the transport failed, and quic-go has
			// already torn down its connections.
			if s.isClosed() {
				return ErrServerClosed
			}
			return fmt.Errorf("h3: accept: %w", err)
		}
		c := s.track(qc)
		if c == nil { // accepted while shutting down
			_ = qc.CloseWithError(codeNoError, "server closed")
			continue
		}
		conns.Go(func() { s.serveConn(c) })
	}
}

// listen starts a QUIC listener on tr and registers it for Shutdown and
// Close.
func (s *Server) listen(tr *quic.Transport) (*quic.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	// Listen, not ListenEarly: the handler must never see a connection
	// before its handshake, and with it the client certificate, is
	// complete.
	ln, err := tr.Listen(http3.ConfigureTLSConfig(s.TLSConfig), s.quicConfig())
	if err != nil {
		return nil, fmt.Errorf("h3: listen: %w", err)
	}
	if s.listeners == nil {
		s.listeners = make(map[*quic.Listener]struct{})
		s.conns = make(map[*conn]struct{})
	}
	s.listeners[ln] = struct{}{}
	s.serving.Add(1)
	return ln, nil
}

func (s *Server) forget(ln *quic.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	_ = ln.Close()
}

func (s *Server) quicConfig() *quic.Config {
	idle := s.idleTimeout()
	return &quic.Config{
		HandshakeIdleTimeout: HandshakeTimeout / 2, // quic-go allows twice this for the whole handshake
		MaxIdleTimeout:       idle,
		// quic-go sends a PING at most every half of the negotiated
		// idle timeout, so a live client always answers in time.
		KeepAlivePeriod:       idle / 2,
		MaxIncomingStreams:    MaxStreams,
		MaxIncomingUniStreams: maxUniStreams,
		Allow0RTT:             false, // replayable; see the package documentation
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops the server gracefully: it closes the listeners, sends
// GOAWAY on every connection (RFC 9114 5.2) and waits until their
// requests have finished and the connections are closed, then until
// every Serve has returned. A connection without a running handler is
// closed by the server one second after GOAWAY if the client has not
// closed it. When ctx is done first, the remaining connections are
// closed, their handlers' contexts cancelled, and Shutdown returns
// ctx.Err() once those handlers have returned. Calling Shutdown before
// Serve, or again, is harmless.
func (s *Server) Shutdown(ctx context.Context) error {
	conns := s.stop()
	// One goroutine per connection, because quic-go's Shutdown both
	// sends GOAWAY and blocks until the connection is done. Shutdown
	// receives every result before it returns.
	results := make(chan error, len(conns))
	for _, c := range conns {
		go func() { results <- c.h3.Shutdown(ctx) }()
	}
	grace := s.grace()
	start := time.Now()
	tick := time.NewTicker(grace / 4)
	defer tick.Stop()
	var err error
	for left := len(conns); left > 0; {
		select {
		case e := <-results:
			left--
			if err == nil {
				err = e
			}
		case now := <-tick.C:
			if now.Sub(start) >= grace {
				closeIdle(conns, now, grace)
			}
		}
	}
	s.serving.Wait()
	return err
}

// Close stops the server at once: it closes the listeners and every
// connection (H3_NO_ERROR), which cancels the contexts of running
// handlers, and returns when every Serve has returned, that is when
// those handlers have. Calling Close before Serve, again, or during
// Shutdown is harmless.
func (s *Server) Close() error {
	for _, c := range s.stop() {
		_ = c.qc.CloseWithError(codeNoError, "server closed")
	}
	s.serving.Wait()
	return nil
}

// stop marks the server closed, closes its listeners and returns the
// connections open at that moment; connections accepted later are
// closed by Serve.
func (s *Server) stop() []*conn {
	s.mu.Lock()
	s.closed = true
	lns := slices.Collect(maps.Keys(s.listeners))
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()
	// Outside mu: closing waits for handshakes in flight to be refused.
	for _, ln := range lns {
		_ = ln.Close()
	}
	return conns
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes <= 0 {
		return DefaultMaxHeaderBytes
	}
	return s.MaxHeaderBytes
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return s.IdleTimeout
}

func (s *Server) grace() time.Duration {
	if s.goAwayGrace <= 0 {
		return defaultGoAwayGrace
	}
	return s.goAwayGrace
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}
