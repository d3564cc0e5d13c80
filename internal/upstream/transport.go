package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/upstream/h1client"
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
	expectContinueTimeout = time.Second
	// h2BufferSize sizes net/http's buffers for h2c connections.
	h2BufferSize = 32 << 10
	// h1ReadBufferSize holds a whole response head, large cookies and
	// policies included, in one read; body reads of a proxy's 32KB copy
	// buffer bypass it. Requests need less: a head, or a small body sent
	// with it (h1client streams larger bodies through pooled buffers).
	h1ReadBufferSize  = 8 << 10
	h1WriteBufferSize = 4 << 10
	// h2PingAfter sends an HTTP/2 PING on a connection silent this long, and
	// h2PingTimeout closes it when the PING goes unanswered, so a dead peer
	// behind a NAT or load balancer is noticed instead of hanging streams.
	h2PingAfter   = 30 * time.Second
	h2PingTimeout = 15 * time.Second
)

// transport is the http.RoundTripper of one endpoint. It always dials the
// endpoint's address, whatever the request URL says, and wraps dial
// failures in *DialError. Once released it drains: idle connections close
// at once and busy ones when their round trips end, so requests started on
// an old snapshot finish while no keep-alive connection to a removed
// endpoint lingers. Safe for concurrent use.
//
// HTTP/1.1 goes through h1client, which pools and drains per connection
// itself. h2c goes through net/http, which multiplexes requests over a
// connection it owns, so h2cTransport tracks round trips and connections
// to know when a drained connection may be closed.
type transport struct {
	address string
	dialer  net.Dialer
	// draining is set once by release and never cleared.
	draining atomic.Bool

	// Exactly one of h1 and h2c is set, by protocol.
	h1  *h1client.Transport
	h2c *h2cTransport
}

// newTransport builds the transport for an endpoint at address (already
// normalised) speaking proto with the defaulted settings cfg. It starts no
// goroutines: connections appear on first use.
func newTransport(address string, proto Protocol, cfg TransportConfig) *transport {
	t := &transport{
		address: address,
		dialer:  net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: tcpKeepAlive},
	}
	if proto == H2C {
		t.h2c = newH2CTransport(t, cfg)
		return t
	}
	t.h1 = &h1client.Transport{
		Address:               address,
		Dial:                  t.dial,
		MaxIdle:               cfg.MaxIdlePerEndpoint,
		IdleTimeout:           cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
		ReadBufferSize:        h1ReadBufferSize,
		WriteBufferSize:       h1WriteBufferSize,
	}
	return t
}

// dial opens a connection to the endpoint. It ignores the address derived
// from the request URL: a per-endpoint transport must never reach anything
// but its endpoint.
func (t *transport) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	c, err := t.dialer.DialContext(ctx, network, t.address)
	if err != nil {
		return nil, &DialError{Address: t.address, Err: err}
	}
	return c, nil
}

// RoundTrip sends req to the endpoint. The response body must be closed (or
// read to EOF) as with any RoundTripper; that is what ends the round trip
// for pooling and draining.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.h1 != nil {
		return t.h1.RoundTrip(req)
	}
	return t.h2c.roundTrip(req)
}

// release starts draining: idle connections close now, busy ones once
// their round trips end. Idempotent.
func (t *transport) release() {
	if t.draining.Swap(true) {
		return
	}
	if t.h1 != nil {
		t.h1.Drain()
		return
	}
	t.h2c.release()
}

// openConns returns how many connections the transport holds open, for tests
// and status output.
func (t *transport) openConns() int {
	if t.h1 != nil {
		return t.h1.OpenConns()
	}
	return t.h2c.openConns()
}

// h2cTransport wraps a private *http.Transport speaking HTTP/2 with prior
// knowledge, and tracks enough to drain it: the round trips in flight and
// the raw connections it opened.
type h2cTransport struct {
	t    *transport
	base *http.Transport

	// active counts round trips from roundTrip's entry until their response
	// body is closed or read to the end (or roundTrip failed).
	active atomic.Int64

	// mu guards conns, and orders connection registration against the
	// drain so that no connection dialed during release escapes it.
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newH2CTransport(t *transport, cfg TransportConfig) *h2cTransport {
	h := &h2cTransport{t: t, conns: make(map[*trackedConn]struct{})}
	// net/http speaks HTTP/2 with prior knowledge to http:// URLs when
	// UnencryptedHTTP2 is the only protocol; x/net's h2c package is
	// deprecated in its favour. Unlike x/net's http2.Transport it honours
	// ResponseHeaderTimeout.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h.base = &http.Transport{
		// A proxy never follows the environment's HTTP_PROXY to reach its
		// own backends.
		Proxy:       nil,
		DialContext: h.dial,
		// Compression is the client's business: an Accept-Encoding added
		// here would make the transport decompress bodies behind the
		// client's back and drop Content-Length.
		DisableCompression:    true,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   cfg.MaxIdlePerEndpoint,
		IdleConnTimeout:       cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
		ReadBufferSize:        h2BufferSize,
		WriteBufferSize:       h2BufferSize,
		Protocols:             &protocols,
		HTTP2:                 &http.HTTP2Config{SendPingTimeout: h2PingAfter, PingTimeout: h2PingTimeout},
	}
	return h
}

// dial opens and registers a connection.
func (h *h2cTransport) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := h.t.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, h: h}
	h.mu.Lock()
	// A dial that completes after the drain finished (a background dial
	// whose request was served by another connection) would otherwise
	// park an idle connection nobody closes until IdleTimeout.
	if h.t.draining.Load() && h.active.Load() == 0 {
		h.mu.Unlock()
		c.Close()
		return tc, nil
	}
	h.conns[tc] = struct{}{}
	h.mu.Unlock()
	return tc, nil
}

func (h *h2cTransport) roundTrip(req *http.Request) (*http.Response, error) {
	h.active.Add(1)
	if h.t.draining.Load() && !req.Close {
		// The request picked this endpoint from a snapshot that has since
		// been replaced; ask net/http not to reuse its connection. The
		// shallow copy leaves the caller's request untouched.
		req = req.WithContext(req.Context())
		req.Close = true
	}
	resp, err := h.base.RoundTrip(req)
	if err != nil {
		h.finish()
		return nil, err
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		// Callers often do not close an empty body.
		h.finish()
		return resp, nil
	}
	resp.Body = &trackedBody{rc: resp.Body, h: h}
	return resp, nil
}

// finish ends one round trip and, while draining, closes what it can.
func (h *h2cTransport) finish() {
	n := h.active.Add(-1)
	if !h.t.draining.Load() {
		return
	}
	h.base.CloseIdleConnections()
	if n == 0 {
		h.closeQuiet()
	}
}

// release closes idle connections now and the rest once no round trip is
// in flight.
func (h *h2cTransport) release() {
	h.base.CloseIdleConnections()
	h.closeQuiet()
}

// closeQuiet closes every connection when no round trip is in flight. The
// http.Transport notices the closed connections and discards them.
func (h *h2cTransport) closeQuiet() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.active.Load() != 0 {
		return
	}
	for c := range h.conns {
		delete(h.conns, c)
		c.Conn.Close()
	}
}

func (h *h2cTransport) openConns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// trackedConn is an h2c connection registered with its transport until
// closed.
type trackedConn struct {
	net.Conn
	h *h2cTransport
}

// Close unregisters and closes the connection. Closing twice is harmless:
// the second close reports the net package's error.
func (c *trackedConn) Close() error {
	c.h.mu.Lock()
	delete(c.h.conns, c)
	c.h.mu.Unlock()
	return c.Conn.Close()
}

// trackedBody ends its round trip on Close or on the first read error (EOF
// included), which is when net/http is done with the stream.
type trackedBody struct {
	rc io.ReadCloser
	h  *h2cTransport
	// ended makes the end count once: Close may race a Read from another
	// goroutine, and callers may Close after EOF.
	ended atomic.Bool
}

// Read reads from the upstream response body.
func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
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
		b.h.finish()
	}
}

// Interface guards.
var (
	_ http.RoundTripper = (*transport)(nil)
	_ net.Conn          = (*trackedConn)(nil)
	_ error             = (*DialError)(nil)
)
