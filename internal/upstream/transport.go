package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DialError wraps a failure to open a TCP connection to an endpoint. It is
// what an Endpoint's Transport().RoundTrip returns when the dial fails, so
// callers classify connect failures (SPEC category upstream_connect_failed,
// always safe to retry since nothing was sent) with errors.As instead of
// matching error strings.
type DialError struct {
	// Address is the endpoint's "host:port".
	Address string
	// Err is the dialer's error (refused, timeout, DNS failure, ...).
	Err error
}

// Error describes the failed dial.
func (e *DialError) Error() string {
	if e.Err == nil {
		return "dial " + e.Address + ": unknown error"
	}
	return "dial " + e.Address + ": " + e.Err.Error()
}

// Unwrap returns the dialer's error, so errors.Is(err, context.Canceled)
// and net.Error checks see through the wrapper.
func (e *DialError) Unwrap() error { return e.Err }

// Settings fixed for every upstream transport; the tunable ones are in
// TransportConfig.
const (
	tcpKeepAlive          = 30 * time.Second
	ioBufferSize          = 32 << 10
	expectContinueTimeout = time.Second
	// h2PingAfter sends an HTTP/2 PING on a connection silent this long, and
	// h2PingTimeout closes it when the PING goes unanswered, so a dead peer
	// behind a NAT or load balancer is noticed instead of hanging streams.
	h2PingAfter   = 30 * time.Second
	h2PingTimeout = 15 * time.Second
)

// transport is the http.RoundTripper of one endpoint. It wraps a private
// *http.Transport, which always dials the endpoint's address, and tracks
// enough to drain it: the round trips in flight and the raw connections it
// opened. Once released, idle connections are closed at once and busy ones
// as soon as the last round trip using the transport ends, so requests
// started on an old snapshot finish while no keep-alive connection to a
// removed endpoint lingers. Safe for concurrent use.
type transport struct {
	base    *http.Transport
	dialer  net.Dialer
	address string

	// active counts round trips from RoundTrip's entry until their response
	// body is closed or read to the end (or RoundTrip failed).
	active atomic.Int64
	// draining is set once by release and never cleared.
	draining atomic.Bool

	// mu guards conns, and orders connection registration against the
	// drain so that no connection dialed during release escapes it.
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

// newTransport builds the transport for an endpoint at address (already
// normalised) speaking proto with the defaulted settings cfg. It starts no
// goroutines: connections, and their goroutines, appear on first use.
func newTransport(address string, proto Protocol, cfg TransportConfig) *transport {
	t := &transport{
		address: address,
		dialer:  net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: tcpKeepAlive},
		conns:   make(map[*trackedConn]struct{}),
	}
	var protocols http.Protocols
	var h2 *http.HTTP2Config
	if proto == H2C {
		// net/http speaks HTTP/2 with prior knowledge to http:// URLs when
		// UnencryptedHTTP2 is the only protocol; x/net's h2c package is
		// deprecated in its favour. Unlike x/net's http2.Transport it honours
		// ResponseHeaderTimeout.
		protocols.SetUnencryptedHTTP2(true)
		h2 = &http.HTTP2Config{SendPingTimeout: h2PingAfter, PingTimeout: h2PingTimeout}
	} else {
		protocols.SetHTTP1(true)
	}
	t.base = &http.Transport{
		// A proxy never follows the environment's HTTP_PROXY to reach its
		// own backends.
		Proxy:       nil,
		DialContext: t.dial,
		// Compression is the client's business: an Accept-Encoding added
		// here would make the transport decompress bodies behind the
		// client's back and drop Content-Length.
		DisableCompression:    true,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   cfg.MaxIdlePerEndpoint,
		IdleConnTimeout:       cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
		ForceAttemptHTTP2:     false,
		ReadBufferSize:        ioBufferSize,
		WriteBufferSize:       ioBufferSize,
		Protocols:             &protocols,
		HTTP2:                 h2,
	}
	return t
}

// dial opens a connection to the endpoint. It ignores the address derived
// from the request URL: a per-endpoint transport must never reach anything
// but its endpoint, whatever the caller put in the URL.
func (t *transport) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	c, err := t.dialer.DialContext(ctx, network, t.address)
	if err != nil {
		return nil, &DialError{Address: t.address, Err: err}
	}
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	// A dial that completes after the drain finished (a background dial
	// whose request was served by another connection) would otherwise
	// park an idle connection nobody closes until IdleTimeout.
	if t.draining.Load() && t.active.Load() == 0 {
		t.mu.Unlock()
		c.Close()
		return tc, nil
	}
	t.conns[tc] = struct{}{}
	t.mu.Unlock()
	return tc, nil
}

// RoundTrip sends req to the endpoint. The response body must be closed (or
// read to EOF) as with any RoundTripper; that is what ends the round trip
// for draining.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.active.Add(1)
	if t.draining.Load() && !req.Close {
		// The request picked this endpoint from a snapshot that has since
		// been replaced; ask for the connection to be closed after it
		// instead of returning it to a pool that is being emptied. The
		// shallow copy leaves the caller's request untouched.
		req = req.WithContext(req.Context())
		req.Close = true
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.finish()
		return nil, err
	}
	switch b := resp.Body.(type) {
	case nil:
		t.finish()
	case io.ReadWriteCloser:
		// 101 Switching Protocols: the body is the upgraded connection.
		// Keep it writable, and count it in flight until closed since the
		// peer closing its half says nothing about ours.
		resp.Body = &upgradedBody{trackedBody: trackedBody{rc: b, t: t}, w: b}
	default:
		if b == http.NoBody {
			// The connection went back to the pool already; callers often
			// do not close an empty body.
			t.finish()
			break
		}
		resp.Body = &trackedBody{rc: b, t: t, endOnError: true}
	}
	return resp, nil
}

// finish ends one round trip and, while draining, closes what it can.
func (t *transport) finish() {
	n := t.active.Add(-1)
	if !t.draining.Load() {
		return
	}
	// The connection of the round trip that just ended may not be back in
	// the idle pool yet (net/http returns it from another goroutine), so
	// this can miss it; closeQuiet below or a later finish catches it.
	t.base.CloseIdleConnections()
	if n == 0 {
		t.closeQuiet()
	}
}

// release starts draining: idle connections close now, busy ones once no
// round trip is in flight. Idempotent.
func (t *transport) release() {
	if t.draining.Swap(true) {
		return
	}
	t.base.CloseIdleConnections()
	t.closeQuiet()
}

// closeQuiet closes every connection of the transport when no round trip is
// in flight. The transport notices the closed connections and discards them.
func (t *transport) closeQuiet() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active.Load() != 0 {
		return
	}
	for c := range t.conns {
		delete(t.conns, c)
		c.Conn.Close()
	}
}

// openConns returns how many connections the transport holds open, for tests
// and status output.
func (t *transport) openConns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// trackedConn is a connection registered with its transport until closed.
type trackedConn struct {
	net.Conn
	t *transport
}

// Close unregisters and closes the connection. Closing twice is harmless:
// the second close reports the net package's error.
func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}

// trackedBody ends its round trip on Close, or, when endOnError is set, on
// the first read error (EOF included), which is when net/http returns the
// connection to its pool.
type trackedBody struct {
	rc         io.ReadCloser
	t          *transport
	endOnError bool
	// ended makes the end count once: Close may race a Read from another
	// goroutine, and callers may Close after EOF.
	ended atomic.Bool
}

// Read reads from the upstream response body.
func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && b.endOnError {
		b.end()
	}
	return n, err
}

// Close closes the upstream response body and ends the round trip.
func (b *trackedBody) Close() error {
	err := b.rc.Close()
	b.end()
	return err
}

func (b *trackedBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.t.finish()
	}
}

// upgradedBody is the body of a 101 response: the upgraded connection,
// readable and writable (what httputil.ReverseProxy-style upgrade handling
// asserts with resp.Body.(io.ReadWriteCloser)).
type upgradedBody struct {
	trackedBody
	w io.Writer
}

// Write writes to the upgraded connection.
func (b *upgradedBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// Interface guards.
var (
	_ http.RoundTripper  = (*transport)(nil)
	_ io.ReadWriteCloser = (*upgradedBody)(nil)
	_ net.Conn           = (*trackedConn)(nil)
	_ error              = (*DialError)(nil)
)
