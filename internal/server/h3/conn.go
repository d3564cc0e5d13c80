package h3

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// conn is one accepted QUIC connection and its HTTP/3 engine.
//
// Each connection gets its own http3.Server rather than sharing one. In
// quic-go v0.65.0, http3.Server.ServeQUICConn counts the connection
// (connCount.Add) after releasing the mutex that Shutdown takes; when a
// connection starts inside that window while another one finishes after
// GOAWAY, the count reaches zero twice and Shutdown's channel is closed
// twice, a panic. With one engine per connection ServeQUICConn is called
// once per engine and the window holds nothing else. It also lets
// Shutdown send GOAWAY and wait connection by connection.
//
// The idle timeout is this package's, not the engine's: quic-go's timer
// is stopped by any open request stream, even one that never sends its
// HEADERS, and is left armed when the connection ends, keeping the
// closed connection in memory for IdleTimeout after its last request.
type conn struct {
	qc          *quic.Conn
	h3          *http3.Server // serves qc only
	next        http.Handler  // the Server's Handler
	idleTimeout time.Duration

	mu     sync.Mutex  // guards active, idleAt and the arming of idle
	active int         // handlers running
	idleAt time.Time   // when active last became zero; the accept time at first
	idle   *time.Timer // runs closeIfIdle; armed while active == 0, stopped when qc ends
}

// track registers a new connection, or returns nil once the server is
// closed.
func (s *Server) track(qc *quic.Conn) *conn {
	c := &conn{qc: qc, next: s.Handler, idleTimeout: s.idleTimeout(), idleAt: time.Now()}
	c.h3 = &http3.Server{
		Handler:        http.HandlerFunc(c.serveHTTP),
		MaxHeaderBytes: s.maxHeaderBytes(),
		Logger:         s.Logger, // nil makes quic-go use slog.Default, as documented for Logger
		// IdleTimeout stays zero: see conn.
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.conns[c] = struct{}{}
	return c
}

// serveConn runs HTTP/3 on c until the connection ends.
func (s *Server) serveConn(c *conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	// Armed before any handler can run: handlers start on goroutines
	// of ServeQUICConn.
	c.idle = time.AfterFunc(c.idleTimeout, c.closeIfIdle)
	err := c.h3.ServeQUICConn(c.qc)
	// Every handler has returned, so nothing re-arms the timer.
	c.idle.Stop()
	// quic-go leaves the connection open when it fails to set it up
	// (control stream); closing a closed connection does nothing.
	_ = c.qc.CloseWithError(codeNoError, "")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.logger().Debug("h3: connection ended", "remote", c.qc.RemoteAddr().String(), "error", err)
	}
}

// serveHTTP runs the handler, counted as running while it does.
func (c *conn) serveHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.active++
	if c.active == 1 {
		c.idle.Stop()
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.active--
		if c.active == 0 {
			c.idleAt = time.Now()
			c.idle.Reset(c.idleTimeout)
		}
		c.mu.Unlock()
	}()
	c.next.ServeHTTP(w, r)
}

// idleFor reports how long c has had no running handler at now, and
// false while one is running.
func (c *conn) idleFor(now time.Time) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active > 0 {
		return 0, false
	}
	return now.Sub(c.idleAt), true
}

// closeIfIdle closes c after IdleTimeout without a running handler. It
// checks again because a handler may have started and ended while the
// timer fired.
func (c *conn) closeIfIdle() {
	if d, idle := c.idleFor(time.Now()); idle && d >= c.idleTimeout {
		_ = c.qc.CloseWithError(codeNoError, "idle timeout")
	}
}

// closeIdle closes the connections that have had no running handler
// for grace; Shutdown calls it once GOAWAY is grace old. A request whose
// handler starts between the check and the close is cut, which takes a
// client that left its request stream silent for the whole grace.
func closeIdle(conns []*conn, now time.Time, grace time.Duration) {
	for _, c := range conns {
		if c.qc.Context().Err() != nil {
			continue
		}
		if d, idle := c.idleFor(now); idle && d >= grace {
			_ = c.qc.CloseWithError(codeNoError, "server shutting down")
		}
	}
}
