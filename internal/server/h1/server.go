package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/httpwire"
)

// ErrServerClosed is returned by Serve after Shutdown or Close. It is
// net/http's value, so callers can treat both servers alike.
var ErrServerClosed = http.ErrServerClosed

// Defaults applied when the corresponding Server field is zero; the
// values are SPEC section 3's server defaults.
const (
	// DefaultMaxHeaderBytes bounds a request head or trailer section.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxHeaderCount bounds the field lines of a head or trailer section.
	DefaultMaxHeaderCount = 100
	// DefaultMaxURLBytes bounds the request-target.
	DefaultMaxURLBytes = 8 << 10
	// DefaultReadHeaderTimeout bounds reading a request head.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout bounds the wait for the next request.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultSlowClientTimeout bounds a response write without progress.
	DefaultSlowClientTimeout = 30 * time.Second
)

const (
	readBufferSize  = 4 << 10 // a request head usually fits in one read
	writeBufferSize = 4 << 10
	preBufferSize   = 4 << 10 // response bytes held back to compute Content-Length
	// newConnGrace is how long Shutdown leaves a connection that has not
	// sent its first byte yet, since the request may be in flight (the
	// same 5s net/http uses).
	newConnGrace = 5 * time.Second
	// lingerTimeout and lingerMaxBytes bound the read-and-discard after a
	// final response, see lingerClose.
	lingerTimeout  = 500 * time.Millisecond
	lingerMaxBytes = 256 << 10
)

// Server is a strict, lean HTTP/1.1 server for an http.Handler: one
// goroutine per connection, pooled buffers, requests processed in order.
// It rejects ambiguous request framing that net/http accepts (see the
// package documentation).
//
// Fields must be set before Serve and not changed afterwards. A Server
// must not be copied after first use. Its methods are safe for concurrent
// use.
type Server struct {
	// Handler answers every request. It is required.
	Handler http.Handler

	// MaxHeaderBytes bounds the request line plus header section, and
	// separately a request's trailer section. Over it the client gets 431
	// (category header_too_large) and the connection closes. Zero or
	// negative means DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// MaxHeaderCount bounds the header (and trailer) field lines. Over it
	// the client gets 431. Zero or negative means DefaultMaxHeaderCount.
	MaxHeaderCount int

	// MaxURLBytes bounds the request-target. Over it the client gets 414
	// (category uri_too_long) and the connection closes. Zero or negative
	// means DefaultMaxURLBytes.
	MaxURLBytes int

	// ReadHeaderTimeout bounds reading a request head: for a new
	// connection from accept, on a kept-alive one from its first byte.
	// It also bounds draining an unread body after the handler. Zero
	// means DefaultReadHeaderTimeout; negative means no limit.
	ReadHeaderTimeout time.Duration

	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. Zero means DefaultIdleTimeout; negative means no limit.
	IdleTimeout time.Duration

	// SlowClientTimeout closes a connection when a response write makes
	// no progress for this long; the deadline moves forward whenever
	// bytes are written, so slow readers of long streams are served.
	// Zero means DefaultSlowClientTimeout; negative means no limit.
	SlowClientTimeout time.Duration

	// H2C, when non-nil, receives connections that start with the HTTP/2
	// prior-knowledge preface (RFC 9113 3.3), with a reader holding the
	// bytes already read (the preface included): wrap both in
	// BufferedConn for http2.Server.ServeConn. It runs on the
	// connection's goroutine and owns the connection until it returns;
	// meanwhile Shutdown counts the connection as active and Close
	// closes it. "Upgrade: h2c" (RFC 7540 3.2) is never honoured.
	H2C func(net.Conn, *bufio.Reader)

	// PrepareConn, when non-nil, runs first on every accepted connection,
	// on the connection's goroutine and within ReadHeaderTimeout of the
	// accept: it returns the connection to serve (for example one whose
	// RemoteAddr comes from a PROXY protocol header) or an error, which
	// closes the connection. The returned conn should keep CloseWrite.
	PrepareConn func(net.Conn) (net.Conn, error)

	// TLSConfig, when non-nil, makes the server terminate TLS: the
	// handshake runs on the connection's goroutine after PrepareConn,
	// within ReadHeaderTimeout of the accept, and requests carry
	// Request.TLS. Certificates are usually chosen per handshake through
	// GetConfigForClient.
	TLSConfig *tls.Config

	// TLSNextProto maps an ALPN protocol to the function that takes over
	// connections that negotiated it ("h2" for HTTP/2). Like H2C it runs
	// on the connection's goroutine and owns the connection until it
	// returns. A negotiated protocol other than "http/1.1" that has no
	// entry closes the connection once the handshake is done (an ACME
	// tls-alpn-01 validation, for one).
	TLSNextProto map[string]func(*tls.Conn)

	// ErrorLog receives handler panics and accept errors. Nil means
	// slog.Default().
	ErrorLog *slog.Logger

	// BaseContext, when non-nil, returns the base context of the
	// connections accepted from a listener; it must not return nil. Nil
	// means context.Background().
	BaseContext func(net.Listener) context.Context

	// ConnContext, when non-nil, derives a connection's context from the
	// base context; it must not return nil. Request contexts derive from
	// it and carry http.LocalAddrContextKey.
	ConnContext func(ctx context.Context, c net.Conn) context.Context

	mu         sync.Mutex // guards listeners, conns, onShutdown and done
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	onShutdown []func()
	done       chan struct{} // closed by Shutdown and Close; wakes accept back-off

	inShutdown        atomic.Bool
	disableKeepAlives atomic.Bool

	watchOnce sync.Once
	watcher   sync.WaitGroup // the watch goroutine, see watch
	watchWake chan struct{}  // wakes an idle watcher; set by watchOnce
	watching  atomic.Bool    // the watcher is ticking

	readers sync.Pool // *bufio.Reader of readBufferSize
	writers sync.Pool // *writeBufs
	date    httpwire.DateCache
}

// Serve accepts connections on ln and serves each on its own goroutine.
// It blocks until ln fails or the server is shut down, and then returns
// ErrServerClosed (after Shutdown or Close) or the accept error. Serve
// closes ln. Temporary accept errors are retried with back-off.
//
// The first Serve also starts the Server's one helper goroutine, which
// starts the background reads of long-running requests (see the package
// documentation); it ends once the server is shut down (Shutdown or
// Close) and has no connections left, and a successful Shutdown waits
// for it. Serve may be called for several listeners at once.
func (s *Server) Serve(ln net.Listener) error {
	if s.Handler == nil {
		return errors.New("h1: Server.Handler is nil")
	}
	l := &ln
	if !s.trackListener(l) {
		return ErrServerClosed
	}
	defer s.untrackListener(l)

	base := context.Background()
	if s.BaseContext != nil {
		if base = s.BaseContext(ln); base == nil {
			panic("h1: BaseContext returned a nil context")
		}
	}
	var delay time.Duration
	for {
		rw, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if !temporary(err) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger().Warn("h1: accept error; retrying", "error", err, "delay", delay)
			if !s.sleep(delay) {
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		ctx := base
		if s.ConnContext != nil {
			if ctx = s.ConnContext(ctx, rw); ctx == nil {
				panic("h1: ConnContext returned a nil context")
			}
		}
		c := s.newConn(rw)
		if !s.track(c) {
			_ = rw.Close()
			return ErrServerClosed
		}
		// Owner: the Server. Stop: Shutdown/Close close the connection.
		// Waiter: Shutdown, until the connection untracks itself.
		go c.serve(ctx)
	}
}

// watchIdleTicks is how many ticks without an eligible request the
// watcher waits before it stops ticking, so an idle server does not wake
// up every watchDelay.
const watchIdleTicks = 200

// watch starts the background reads of requests watched for longer than
// watchDelay (see connReader). One goroutine scanning every watchDelay
// costs far less than a timer or a goroutine per request. It stops
// ticking while no request is eligible and is woken through wake.
func (s *Server) watch(wake, done <-chan struct{}) {
	defer s.watcher.Done()
	t := time.NewTicker(watchDelay)
	defer t.Stop()
	quiet := 0
	for {
		select {
		case <-done:
			done = nil // shut down: tick until the connections are gone
			continue
		case <-wake:
			quiet = 0
			continue
		case now := <-t.C:
			eligible, last := s.scanWatches(now)
			if last {
				return
			}
			if quiet++; eligible {
				quiet = 0
			}
			if quiet < watchIdleTicks || done == nil {
				continue
			}
		}
		// Go idle. A request marked eligible after the Store sees
		// watching false and wakes us; one marked before it is found
		// by the scan (both sides use sequentially consistent atomics).
		s.watching.Store(false)
		if eligible, _ := s.scanWatches(time.Now()); eligible {
			s.watching.Store(true)
			quiet = 0
			continue
		}
		t.Stop()
		select {
		case <-wake:
		case <-done:
			done = nil
		}
		s.watching.Store(true)
		t.Reset(watchDelay)
		quiet = 0
	}
}

// scanWatches starts the due background reads. It reports whether any
// request is eligible, and whether the watcher should end (the server is
// shut down and has no connections).
func (s *Server) scanWatches(now time.Time) (eligible, last bool) {
	cutoff := now.Add(-watchDelay).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.cr.since.Load() != 0 {
			eligible = true
			c.cr.startIfDue(cutoff)
		}
	}
	return eligible, s.inShutdown.Load() && len(s.conns) == 0
}

// wakeWatcher wakes an idle watcher; a request just became eligible.
func (s *Server) wakeWatcher() {
	if s.watching.Load() {
		return
	}
	select {
	case s.watchWake <- struct{}{}:
	default:
	}
}

func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// sleep waits d unless the server shuts down first; it reports whether
// the full time passed.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.doneChan():
		return false
	}
}

// Shutdown stops the server gracefully: it closes the listeners, runs the
// RegisterOnShutdown hooks, closes idle connections, and waits for active
// ones to finish their current response (which announces Connection:
// close) and close. It returns nil when every connection is gone, or
// ctx.Err() if ctx ends first; Close then ends the rest. Hijacked
// connections are not tracked.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	err := s.closeListenersLocked()
	s.closeDoneLocked()
	hooks := slices.Clone(s.onShutdown)
	s.mu.Unlock()
	for _, f := range hooks {
		f()
	}

	interval := time.Millisecond
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		if s.closeIdle() {
			s.watcher.Wait() // it ends within a tick once no connection is left
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			interval = min(2*interval, 50*time.Millisecond)
			t.Reset(interval)
		}
	}
}

// Close closes the listeners and every tracked connection at once,
// interrupting responses in progress. It does not wait for handlers;
// Shutdown does.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeListenersLocked()
	s.closeDoneLocked()
	for c := range s.conns {
		c.state.Store(stateClosed)
		_ = c.raw.Close()
	}
	return err
}

// RegisterOnShutdown registers f to be called, synchronously and in
// order, when Shutdown starts; f must not block. The usual use is to
// start the graceful shutdown of HTTP/2 connections handed to H2C.
func (s *Server) RegisterOnShutdown(f func()) {
	s.mu.Lock()
	s.onShutdown = append(s.onShutdown, f)
	s.mu.Unlock()
}

// SetKeepAlivesEnabled controls HTTP keep-alive. When disabled (during a
// drain), every later response carries Connection: close and idle
// connections are closed at once. Keep-alives are enabled by default.
func (s *Server) SetKeepAlivesEnabled(v bool) {
	s.disableKeepAlives.Store(!v)
	if !v {
		s.closeIdle()
	}
}

func (s *Server) keepAlivesOn() bool {
	return !s.disableKeepAlives.Load() && !s.inShutdown.Load()
}

func (s *Server) shuttingDown() bool { return s.inShutdown.Load() }

// closeIdle closes idle connections and those that have sent nothing for
// newConnGrace, and reports whether no connection is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for c := range s.conns {
		st := c.state.Load()
		if st == stateNew && now.Sub(c.acceptedAt) < newConnGrace {
			continue
		}
		// The CAS decides the race with a connection that is just
		// becoming active: exactly one of the two wins.
		if (st == stateIdle || st == stateNew) && c.state.CompareAndSwap(st, stateClosed) {
			_ = c.raw.Close()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) trackListener(l *net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
	}
	s.listeners[l] = struct{}{}
	// Started under mu, so that Add happens before Shutdown's Wait.
	s.watchOnce.Do(func() {
		s.watcher.Add(1)
		s.watchWake = make(chan struct{}, 1)
		s.watching.Store(true)
		if s.done == nil {
			s.done = make(chan struct{})
		}
		// Owner: the Server. Stop: it returns once the server is shut
		// down and has no connections left. Waiter: Shutdown.
		go s.watch(s.watchWake, s.done)
	})
	return true
}

func (s *Server) untrackListener(l *net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.listeners[l]; ok {
		_ = (*l).Close()
		delete(s.listeners, l)
	}
}

func (s *Server) closeListenersLocked() error {
	var err error
	for l := range s.listeners {
		if cerr := (*l).Close(); cerr != nil && err == nil {
			err = cerr
		}
		delete(s.listeners, l)
	}
	return err
}

func (s *Server) doneChan() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

func (s *Server) closeDoneLocked() {
	if s.done == nil {
		s.done = make(chan struct{})
	}
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
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

// forget hands a connection over (Hijack): the server no longer waits
// for it nor closes it.
func (s *Server) forget(c *conn) {
	c.state.Store(stateClosed)
	s.untrack(c)
}

func (s *Server) logger() *slog.Logger {
	if s.ErrorLog != nil {
		return s.ErrorLog
	}
	return slog.Default()
}

func (s *Server) getReader(r io.Reader) *bufio.Reader {
	if br, ok := s.readers.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, readBufferSize)
}

func (s *Server) putReader(br *bufio.Reader) {
	br.Reset(nil)
	s.readers.Put(br)
}

// writeBufs are a connection's response buffers. They are pooled and held
// only while a request is being served, so an idle kept-alive connection
// holds just its read buffer.
type writeBufs struct {
	bw  *bufio.Writer
	pre []byte // see conn.pre
}

// acquireWrite gives c its response buffers.
func (s *Server) acquireWrite(c *conn) {
	wb, ok := s.writers.Get().(*writeBufs)
	if !ok {
		wb = &writeBufs{
			bw:  bufio.NewWriterSize(nil, writeBufferSize),
			pre: make([]byte, 0, preBufferSize),
		}
	}
	wb.bw.Reset(connWriter{c})
	c.wb, c.bw, c.pre = wb, wb.bw, wb.pre[:0]
}

// releaseWrite takes c's response buffers back; they must be flushed.
func (s *Server) releaseWrite(c *conn) {
	wb := c.wb
	if wb == nil {
		return
	}
	wb.bw.Reset(nil)
	c.wb, c.bw, c.pre = nil, nil, nil
	s.writers.Put(wb)
}

func (s *Server) maxHeaderBytes() int { return orInt(s.MaxHeaderBytes, DefaultMaxHeaderBytes) }
func (s *Server) maxHeaderCount() int { return orInt(s.MaxHeaderCount, DefaultMaxHeaderCount) }
func (s *Server) maxURLBytes() int    { return orInt(s.MaxURLBytes, DefaultMaxURLBytes) }

func (s *Server) readHeaderTimeout() time.Duration {
	return orDuration(s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
}

func (s *Server) idleTimeout() time.Duration { return orDuration(s.IdleTimeout, DefaultIdleTimeout) }

func (s *Server) slowClientTimeout() time.Duration {
	return orDuration(s.SlowClientTimeout, DefaultSlowClientTimeout)
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// orDuration maps zero to the default and a negative value to "none" (0).
func orDuration(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// BufferedConn is a net.Conn whose reads first drain R, the reader an H2C
// function receives, so the bytes the server already read (the HTTP/2
// preface) reach the HTTP/2 server. Writes and the rest go to Conn.
type BufferedConn struct {
	net.Conn
	// R reads the buffered bytes, then the connection.
	R *bufio.Reader
}

// Read implements net.Conn.
func (c *BufferedConn) Read(p []byte) (int, error) { return c.R.Read(p) }

// NetConn returns the wrapped connection, for code that needs its other
// methods (CloseWrite).
func (c *BufferedConn) NetConn() net.Conn { return c.Conn }
