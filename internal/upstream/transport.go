package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keelproxy/keel/internal/upstream/h1client"
)

// DialError wraps a failure to open a connection to an endpoint: the TCP
// connect, the TLS handshake (certificate verification included), or, for
// protocol http2, the ALPN negotiation of h2. It is what an Endpoint's
// Transport().RoundTrip returns when connecting fails, so callers classify
// connect failures (SPEC category upstream_connect_failed, always safe to
// retry since nothing was sent) with errors.As instead of matching error
// strings.
type DialError struct {
	// Address is the endpoint's "host:port".
	Address string
	// Err is the cause: the dialer's error (refused, timeout, DNS failure,
	// ...), or crypto/tls's prefixed with "tls handshake: ".
	Err error
}

// Error describes the failed dial.
func (e *DialError) Error() string {
	if e.Err == nil {
		return "dial " + e.Address + ": unknown error"
	}
	return "dial " + e.Address + ": " + e.Err.Error()
}

// Unwrap returns the cause, so errors.Is(err, context.Canceled), net.Error
// and *tls.CertificateVerificationError checks see through the wrapper.
func (e *DialError) Unwrap() error { return e.Err }

// Settings fixed for every upstream transport; the tunable ones are in
// TransportConfig.
const (
	tcpKeepAlive          = 30 * time.Second
	expectContinueTimeout = time.Second
	// h2BufferSize sizes net/http's buffers for HTTP/2 connections.
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
// endpoint's address, whatever the request URL says, and wraps connect
// failures (TCP, TLS handshake, ALPN) in *DialError. Once released it
// drains: idle connections close at once and busy ones when their round
// trips end, so requests started on an old snapshot finish while no
// keep-alive connection to a removed endpoint lingers. Safe for concurrent
// use.
//
// HTTP/1.1 (over TCP or TLS) goes through h1client, which pools and drains
// per connection itself; for TLS its Dial returns a handshaken *tls.Conn.
// HTTP/2 (h2c, or TLS with ALPN h2) goes through net/http, which
// multiplexes requests over a connection it owns, so h2Transport tracks
// round trips and connections to know when a drained connection may be
// closed.
type transport struct {
	address string
	dialer  net.Dialer
	// tls is the endpoint's client config, nil for plaintext. Shared by all
	// its connections, so its session cache lets reconnects resume; never
	// modified.
	tls *tls.Config
	// draining is set once by release and never cleared.
	draining atomic.Bool

	// Exactly one of h1 and h2 is set, by protocol.
	h1 *h1client.Transport
	h2 *h2Transport
}

// newTransport builds the transport for an endpoint at address (already
// normalised) speaking proto with the defaulted settings cfg, over TLS with
// tc when tc is not nil. It starts no goroutines: connections appear on
// first use.
func newTransport(address string, proto Protocol, cfg TransportConfig, tc *tls.Config) *transport {
	t := &transport{
		address: address,
		dialer:  net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: tcpKeepAlive},
		tls:     tc,
	}
	if proto == H2C || proto == HTTP2 {
		t.h2 = newH2Transport(t, cfg)
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

// dial opens a connection to the endpoint: TCP, then for a TLS endpoint the
// handshake, both within DialTimeout. It ignores the address derived from
// the request URL: a per-endpoint transport must never reach anything but
// its endpoint.
func (t *transport) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	if t.tls == nil {
		return t.dialTCP(ctx, network)
	}
	ctx, cancel := context.WithTimeout(ctx, t.dialer.Timeout)
	defer cancel()
	c, err := t.dialTCP(ctx, network)
	if err != nil {
		return nil, err
	}
	return t.handshake(ctx, c)
}

// dialTCP opens the TCP connection.
func (t *transport) dialTCP(ctx context.Context, network string) (net.Conn, error) {
	c, err := t.dialer.DialContext(ctx, network, t.address)
	if err != nil {
		return nil, &DialError{Address: t.address, Err: err}
	}
	return c, nil
}

// handshake runs the TLS handshake over c, bounded by ctx, and closes c on
// failure. The failure is a *DialError: nothing of the request was sent,
// so it is as safe to retry as a refused connect. An http2 endpoint that
// does not select h2 fails the same way (see errNoHTTP2).
func (t *transport) handshake(ctx context.Context, c net.Conn) (net.Conn, error) {
	tc := tls.Client(c, t.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, &DialError{Address: t.address, Err: fmt.Errorf("tls handshake: %w", err)}
	}
	if t.h2 != nil && tc.ConnectionState().NegotiatedProtocol != alpnHTTP2 {
		_ = tc.Close()
		return nil, &DialError{Address: t.address, Err: errNoHTTP2}
	}
	return tc, nil
}

// RoundTrip sends req to the endpoint. The response body must be closed (or
// read to EOF) as with any RoundTripper; that is what ends the round trip
// for pooling and draining.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.h1 != nil {
		return t.h1.RoundTrip(req)
	}
	return t.h2.roundTrip(req)
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
	t.h2.release()
}

// openConns returns how many connections the transport holds open, for tests
// and status output.
func (t *transport) openConns() int {
	if t.h1 != nil {
		return t.h1.OpenConns()
	}
	return t.h2.openConns()
}

// h2Transport wraps a private *http.Transport speaking HTTP/2, with prior
// knowledge over TCP (h2c) or negotiated by ALPN over TLS, and tracks
// enough to drain it: the round trips in flight and the TCP connections it
// opened (under the TLS layer, for TLS).
type h2Transport struct {
	t    *transport
	base *http.Transport
	// scheme is the URL scheme net/http must see: "https" makes it use
	// DialTLSContext and HTTP/2 by ALPN, "http" DialContext and h2c.
	scheme string

	// active counts round trips from roundTrip's entry until their response
	// body is closed or read to the end (or roundTrip failed).
	active atomic.Int64

	// mu guards conns, and orders connection registration against the
	// drain so that no connection dialed during release escapes it.
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newH2Transport(t *transport, cfg TransportConfig) *h2Transport {
	h := &h2Transport{t: t, scheme: schemeHTTP, conns: make(map[*trackedConn]struct{})}
	h.base = &http.Transport{
		// A proxy never follows the environment's HTTP_PROXY to reach its
		// own backends.
		Proxy: nil,
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
		Protocols:             new(http.Protocols),
		HTTP2:                 &http.HTTP2Config{SendPingTimeout: h2PingAfter, PingTimeout: h2PingTimeout},
	}
	if t.tls == nil {
		// net/http speaks HTTP/2 with prior knowledge to http:// URLs when
		// UnencryptedHTTP2 is the only protocol; x/net's h2c package is
		// deprecated in its favour. Unlike x/net's http2.Transport it
		// honours ResponseHeaderTimeout.
		h.base.Protocols.SetUnencryptedHTTP2(true)
		h.base.DialContext = h.dial
		return h
	}
	// net/http speaks HTTP/2 over a *tls.Conn from DialTLSContext when its
	// handshake selected h2 (handshake refuses anything else). TLS is done
	// there, not by net/http, so the TCP connection under it can be
	// tracked and the DialTimeout covers the handshake.
	h.scheme = schemeHTTPS
	h.base.Protocols.SetHTTP2(true)
	h.base.DialTLSContext = h.dial
	return h
}

// dial opens and registers a connection, and runs the TLS handshake over it
// for a TLS endpoint.
func (h *h2Transport) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	if h.t.tls != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.t.dialer.Timeout)
		defer cancel()
	}
	c, err := h.t.dialTCP(ctx, network)
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
	if h.t.tls == nil {
		return tc, nil
	}
	return h.t.handshake(ctx, tc)
}

func (h *h2Transport) roundTrip(req *http.Request) (*http.Response, error) {
	h.active.Add(1)
	draining := h.t.draining.Load() && !req.Close
	foreign := req.URL.Scheme != h.scheme || req.URL.Host != h.t.address
	if draining || foreign {
		// The shallow copy leaves the caller's request untouched.
		req = req.WithContext(req.Context())
		if foreign {
			// The endpoint decides scheme and address: net/http picks TLS
			// (and ALPN) or h2c by the scheme, and keys its connection
			// pool by both, which must stay one pool. The authority
			// sent stays the caller's.
			u := *req.URL
			u.Scheme, u.Host = h.scheme, h.t.address
			if req.Host == "" {
				req.Host = req.URL.Host
			}
			req.URL = &u
		}
		if draining {
			// The request picked this endpoint from a snapshot that has
			// since been replaced; ask net/http not to reuse its
			// connection.
			req.Close = true
		}
	}
	resp, err := h.base.RoundTrip(req)
	if err != nil && draining && (req.Body == nil || req.Body == http.NoBody) && errors.Is(err, net.ErrClosed) {
		// net/http may hand a straggler the drained connection that
		// finish just closed, before its read loop noticed. Almost
		// always the request's write is what failed; if the close came
		// just after the HEADERS frame went out, the upstream may have
		// seen it, which is why only body-less requests (GET-like, the
		// ones net/http itself replays) get one more try on a new
		// connection.
		resp, err = h.base.RoundTrip(req)
	}
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
func (h *h2Transport) finish() {
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
func (h *h2Transport) release() {
	h.base.CloseIdleConnections()
	h.closeQuiet()
}

// closeQuiet closes every connection when no round trip is in flight. The
// http.Transport notices the closed connections and discards them.
func (h *h2Transport) closeQuiet() {
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

func (h *h2Transport) openConns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// trackedConn is a TCP connection of an h2Transport (under the TLS layer
// for TLS), registered with its transport until closed.
type trackedConn struct {
	net.Conn
	h *h2Transport
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
	h  *h2Transport
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
