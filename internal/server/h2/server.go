package h2

import (
	"bufio"
	"cmp"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/keelproxy/keel/internal/httpwire"
)

// Defaults applied when the corresponding Server field is zero.
const (
	// DefaultMaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS: what
	// HAProxy, Envoy's edge recommendation and browsers expect.
	DefaultMaxConcurrentStreams = 100
	// DefaultStreamWindow is the receive window of each stream: one
	// upload can have 1 MiB in flight.
	DefaultStreamWindow = 1 << 20
	// DefaultConnWindow is the receive window of a connection: no client
	// pins more than 4 MiB of request bodies in the proxy.
	DefaultConnWindow = 4 << 20
	// DefaultMaxHeaderBytes bounds a decoded header (or trailer) block,
	// SETTINGS_MAX_HEADER_LIST_SIZE; over it the request gets 431.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultPrefaceTimeout bounds the wait for the client preface and
	// its SETTINGS after the connection is handed over.
	DefaultPrefaceTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a connection with no open stream.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultSlowClientTimeout bounds a write to the client that makes
	// no progress.
	DefaultSlowClientTimeout = 30 * time.Second
)

// Server serves HTTP/2 connections (RFC 9113) handed to it by a listener
// that already chose the protocol: TLS with ALPN "h2", or a plaintext
// connection that starts with the prior-knowledge preface (h2c).
//
// Fields must be set before the first ServeConn and not changed
// afterwards. A Server must not be copied after first use. Its methods
// are safe for concurrent use. The zero value with a Handler is ready to
// use.
type Server struct {
	// Handler answers every request. It is required. A handler that
	// panics with http.ErrAbortHandler resets its stream silently; any
	// other panic is logged and resets the stream.
	Handler http.Handler

	// MaxConcurrentStreams is advertised in SETTINGS and enforced:
	// streams over it are refused (REFUSED_STREAM). Zero means
	// DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32

	// StreamWindow and ConnWindow are the receive windows for request
	// bodies, per stream and per connection. Zero means
	// DefaultStreamWindow and DefaultConnWindow; values are clamped to
	// [65535, 2^31-1].
	StreamWindow int32
	ConnWindow   int32

	// MaxHeaderBytes bounds a decoded request header block, counted as
	// RFC 9113 6.5.2 counts SETTINGS_MAX_HEADER_LIST_SIZE, and each
	// header block's size on the wire, CONTINUATION frames included.
	// A decoded block over it gets 431; a wire block over it ends the
	// connection. Zero or negative means DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// PrefaceTimeout bounds the wait for the client's connection preface
	// and first SETTINGS. Zero means DefaultPrefaceTimeout; negative
	// means no limit.
	PrefaceTimeout time.Duration

	// IdleTimeout closes (GOAWAY) a connection that has had no open
	// stream for this long. Zero means DefaultIdleTimeout; negative
	// means no limit.
	IdleTimeout time.Duration

	// SlowClientTimeout ends a connection when a write to it makes no
	// progress for this long. Zero means DefaultSlowClientTimeout;
	// negative means no limit.
	SlowClientTimeout time.Duration

	// ErrorLog receives handler panics. Nil means slog.Default().
	// Protocol errors of clients are logged at debug level.
	ErrorLog *slog.Logger

	dates    httpwire.DateCache
	bufs     sync.Pool // *[]byte of bufferSize: responses' held-back bodies
	fields   sync.Pool // *[]field: responses' header snapshots
	writers  sync.Pool // *bufio.Writer of writeBufferSize: connections' write buffers
	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
}

// ServeConn serves one HTTP/2 connection until it ends: the client closes
// it, a connection error, the idle timeout, or Shutdown once its streams
// are done. The connection must still hold the client preface. Requests
// carry Request.TLS when c is a *tls.Conn whose handshake is complete.
// ServeConn closes c before it returns.
func (s *Server) ServeConn(c net.Conn) {
	cn := newConn(s, c)
	if s.track(cn) {
		defer s.untrack(cn)
	} else {
		// Shutting down: the client gets our SETTINGS and a GOAWAY
		// admitting no stream, then the usual half-close and linger.
		cn.goingAway = true
	}
	cn.serve()
}

// Shutdown starts a graceful shutdown: every connection is sent GOAWAY
// with the last stream it accepted, refuses new streams and closes once
// its open streams are done; connections served later are refused.
// Shutdown does not wait: the caller closes connections that outlive
// its grace period (for the data-plane listeners the HTTP/1 server
// that handed them over does this).
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.goAway()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) logger() *slog.Logger {
	if s.ErrorLog != nil {
		return s.ErrorLog
	}
	return slog.Default()
}

func (s *Server) maxStreams() uint32 {
	return cmp.Or(s.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
}

func (s *Server) streamWindow() int32 { return clampWindow(s.StreamWindow, DefaultStreamWindow) }
func (s *Server) connWindow() int32   { return clampWindow(s.ConnWindow, DefaultConnWindow) }

func clampWindow(v, def int32) int32 {
	switch {
	case v == 0:
		return def
	case v < initialWindow:
		return initialWindow
	}
	return v
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes <= 0 {
		return DefaultMaxHeaderBytes
	}
	return s.MaxHeaderBytes
}

func (s *Server) prefaceTimeout() time.Duration {
	return orDuration(s.PrefaceTimeout, DefaultPrefaceTimeout)
}
func (s *Server) idleTimeout() time.Duration { return orDuration(s.IdleTimeout, DefaultIdleTimeout) }
func (s *Server) slowClientTimeout() time.Duration {
	return orDuration(s.SlowClientTimeout, DefaultSlowClientTimeout)
}

// orDuration maps zero to def and negative to 0 (no limit).
func orDuration(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// tlsState returns the connection state of a completed TLS handshake, or
// nil for plaintext connections.
func tlsState(c net.Conn) *tls.ConnectionState {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete {
		return nil
	}
	return &st
}

func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, bufferSize)
	return &b
}

func (s *Server) getFields() *[]field {
	if f, ok := s.fields.Get().(*[]field); ok {
		return f
	}
	f := make([]field, 0, 16)
	return &f
}

func (s *Server) getWriter(w io.Writer) *bufio.Writer {
	if bw, ok := s.writers.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, writeBufferSize)
}

func (s *Server) putWriter(bw *bufio.Writer) {
	bw.Reset(nil) // the pool must not pin the connection
	s.writers.Put(bw)
}
