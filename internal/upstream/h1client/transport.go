package h1client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Transport fields.
const (
	DefaultMaxIdle               = 256
	DefaultIdleTimeout           = 90 * time.Second
	DefaultExpectContinueTimeout = time.Second
	DefaultReadBufferSize        = 4 << 10
	DefaultWriteBufferSize       = 4 << 10
)

// Transport is an http.RoundTripper speaking HTTP/1.1 to exactly one
// address, for a reverse proxy's upstream connections. It writes the
// request and reads the response head on the caller's goroutine; only a
// request body is streamed from a second goroutine, so that an upstream
// may answer before reading it. Idle keep-alive connections wait in a LIFO
// pool without any goroutine of their own.
//
// It forwards requests as given: it adds no Accept-Encoding, User-Agent or
// other field, never decompresses, never follows redirects and ignores
// proxy environment variables.
//
// A parked connection is probed (one non-blocking read) before reuse, so
// that one the upstream closed, or wrote an unsolicited 408 on, is
// discarded rather than used. For TLS, Dial returns a handshaken
// *tls.Conn; the probe then also checks crypto/tls's buffers, which may
// hold records read ahead with the last response.
//
// Set the fields before the first RoundTrip and do not change them after.
// A Transport must not be copied after first use. All methods are safe for
// concurrent use.
type Transport struct {
	// Address is the "host:port" every request is sent to, whatever its URL
	// says. Required.
	Address string
	// Dial opens connections. Its errors are returned by RoundTrip
	// unchanged, so a caller can wrap them in its own type to tell connect
	// failures apart. Nil means a zero net.Dialer's DialContext. For
	// HTTPS, Dial returns a *tls.Conn whose handshake is done (so that its
	// failures are Dial's errors too, and ALPN was "http/1.1" or none).
	// The request URL's scheme is ignored either way.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdle caps the idle keep-alive connections kept; a connection
	// finishing when the pool is full is closed. Zero means DefaultMaxIdle;
	// negative keeps none.
	MaxIdle int
	// IdleTimeout is how long an idle connection may wait in the pool.
	// Expiry is checked lazily when the pool is used (no timer, no
	// goroutine). Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response head after
	// the request, body included, was written. On expiry RoundTrip returns
	// ErrResponseHeaderTimeout. Zero means no limit beyond the request's
	// context.
	ResponseHeaderTimeout time.Duration
	// ExpectContinueTimeout is how long a request with "Expect:
	// 100-continue" and a body waits for the 100 (Continue) response
	// before sending the body anyway. Zero means
	// DefaultExpectContinueTimeout.
	ExpectContinueTimeout time.Duration
	// ReadBufferSize and WriteBufferSize size each connection's buffers.
	// Zero means DefaultReadBufferSize and DefaultWriteBufferSize; sizes
	// below 256 bytes are raised to it. The read buffer also bounds the
	// chunk-size and trailer lines accepted. Large and chunked request
	// bodies bypass the write buffer through pooled 32KB buffers.
	ReadBufferSize, WriteBufferSize int

	// open counts the connections dialed and not yet closed.
	open atomic.Int64
	// draining is set once by Drain and never cleared; read without mu on
	// the request path, written with mu held.
	draining atomic.Bool

	// copyBuffers holds *[]byte of copyBufferSize for request bodies.
	copyBuffers sync.Pool
	// probeIdle replaces probeAfter when set, for tests.
	probeIdle time.Duration

	// mu guards idle. idle is a LIFO stack: the most recently used
	// connection is reused first (its server-side idle timer is the
	// freshest), and the oldest sit at the bottom where put expires them.
	mu   sync.Mutex
	idle []*conn
}

// RoundTrip sends req to Address and returns the response head; the body
// streams from the connection. The caller must read the body to EOF or
// close it; that is what returns the connection to the pool. req.Body, if
// any, is always closed, possibly after RoundTrip returned.
//
// A request on a pooled connection that fails before any response byte
// arrives is retried once on a new connection, when its body (if any) was
// not read yet: that is the race of an upstream closing an idle
// connection as the request goes out (RFC 9112 section 9.3.1). A canceled
// request.Context fails the round trip, or the body read, with an error
// wrapping the context's error.
//
// Interim (1xx) responses are skipped; a 100 (Continue) releases the body
// of an "Expect: 100-continue" request. A 101 (Switching Protocols)
// response to a request with an Upgrade field has a Body that is an
// io.ReadWriteCloser over the connection, which the caller then owns.
// Errors: Dial's unchanged; ErrResponseHeaderTimeout; errors matching
// ErrMalformedResponse; a request body's read error, wrapped; and network
// errors, whose text says "EOF" or "connection reset" when the connection
// ended before a response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	w, err := prepare(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	w.close = w.close || t.draining.Load() && !w.upgrade
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	fresh := false
	for {
		pc, err := t.getConn(ctx, fresh)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, retry, err := pc.roundTrip(req, &w, !fresh)
		if err == nil {
			return resp, nil
		}
		if !retry {
			return nil, err
		}
		fresh = true
	}
}

// getConn returns an idle connection, or a new one when there is none or
// fresh is set.
func (t *Transport) getConn(ctx context.Context, fresh bool) (*conn, error) {
	if !fresh {
		if pc := t.popIdle(); pc != nil {
			return pc, nil
		}
	}
	if t.Address == "" {
		return nil, errors.New("h1client: Transport.Address is empty")
	}
	dial := t.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", t.Address)
	if err != nil {
		return nil, err
	}
	t.open.Add(1)
	return newConn(t, nc), nil
}

// probeAfter is how long a connection must have been parked before popIdle
// probes it with peerGone. Zero: every reuse is probed. Without a read
// loop per connection (net/http's, which costs two goroutine hand-offs per
// request) the probe is how a close by the upstream between two requests
// is noticed before a request is sent into a dead connection; requests
// arriving back to back would otherwise fail, since a request whose body
// was already written cannot be retried. The probe is one non-blocking
// read system call, well under a microsecond and no allocation.
const probeAfter = 0

// popIdle takes the most recently parked connection from the pool, or nil.
// When even that one outlived IdleTimeout, all of them did: the pool is
// emptied. A connection parked longer than probeAfter is probed first and
// skipped when the upstream closed it or wrote to it meanwhile.
func (t *Transport) popIdle() *conn {
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			return nil
		}
		pc := t.idle[n-1]
		idle := time.Since(pc.idleAt)
		if idle > t.idleTimeout() {
			stale := t.idle
			t.idle = nil
			t.mu.Unlock()
			closeAll(stale)
			return nil
		}
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if idle < t.probeAfter() || !pc.peerGone() {
			return pc
		}
		pc.close()
	}
}

// put parks pc in the pool, or closes it when the transport is draining or
// the pool is full. It also closes the oldest parked connections when they
// outlived IdleTimeout, so a pool that shrank after a burst does not hold
// its surplus open for ever.
func (t *Transport) put(pc *conn) {
	now := time.Now()
	pc.idleAt = now
	pc.reused = true
	timeout := t.idleTimeout()
	t.mu.Lock()
	if t.draining.Load() || len(t.idle) >= t.maxIdle() {
		t.mu.Unlock()
		pc.close()
		return
	}
	expired := 0
	for expired < len(t.idle) && now.Sub(t.idle[expired].idleAt) > timeout {
		expired++
	}
	var stale []*conn
	if expired > 0 {
		stale = make([]*conn, expired)
		copy(stale, t.idle)
		n := copy(t.idle, t.idle[expired:])
		clear(t.idle[n:])
		t.idle = t.idle[:n]
	}
	t.idle = append(t.idle, pc)
	t.mu.Unlock()
	closeAll(stale)
}

// CloseIdleConnections closes the idle connections. Connections in use
// are not affected and may be pooled again when their round trip ends.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	closeAll(idle)
}

// Drain closes the idle connections now and makes every connection close,
// instead of returning to the pool, when its round trip ends. Requests
// keep working afterwards but each uses a new connection and asks the
// upstream to close it ("Connection: close"). Use it when the upstream is
// being removed. Idempotent; there is no undo.
func (t *Transport) Drain() {
	t.mu.Lock()
	t.draining.Store(true)
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	closeAll(idle)
}

// IdleConns returns the number of idle connections in the pool, for tests
// and status output.
func (t *Transport) IdleConns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle)
}

// OpenConns returns the number of connections open, idle or in use
// (upgraded ones included until closed), for tests and status output.
func (t *Transport) OpenConns() int { return int(t.open.Load()) }

// getCopyBuffer returns a buffer from copyBuffers, or a new one; put it
// back with copyBuffers.Put.
func (t *Transport) getCopyBuffer() *[]byte {
	if bp, ok := t.copyBuffers.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, copyBufferSize)
	return &b
}

func closeAll(conns []*conn) {
	for _, pc := range conns {
		pc.close()
	}
}

func (t *Transport) maxIdle() int {
	if t.MaxIdle == 0 {
		return DefaultMaxIdle
	}
	return t.MaxIdle
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return t.IdleTimeout
}

func (t *Transport) probeAfter() time.Duration {
	if t.probeIdle > 0 {
		return t.probeIdle
	}
	return probeAfter
}

func (t *Transport) expectContinueTimeout() time.Duration {
	if t.ExpectContinueTimeout <= 0 {
		return DefaultExpectContinueTimeout
	}
	return t.ExpectContinueTimeout
}

// minBufferSize keeps buffers large enough for a chunk-size line with
// room for data, and for common status lines.
const minBufferSize = 256

func (t *Transport) readBufferSize() int {
	if t.ReadBufferSize == 0 {
		return DefaultReadBufferSize
	}
	return max(t.ReadBufferSize, minBufferSize)
}

func (t *Transport) writeBufferSize() int {
	if t.WriteBufferSize == 0 {
		return DefaultWriteBufferSize
	}
	return max(t.WriteBufferSize, minBufferSize)
}

// closeBody closes req.Body, which RoundTrip owns from its start.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

var _ http.RoundTripper = (*Transport)(nil)
