// Package h3 is the proxy's HTTP/3 data-plane listener (RFC 9114 over
// QUIC, RFC 9000): it serves the same http.Handler as the TCP listeners,
// with the same certificates, on a UDP socket.
//
// The protocol work is quic-go's (github.com/quic-go/quic-go and its
// http3 package); this package owns the listener's lifecycle, its limits
// and its TLS wiring, so that it behaves like the h1 server towards the
// rest of the proxy: Serve blocks until Shutdown or Close, Shutdown
// drains in-flight requests, Close aborts them.
//
// # TLS
//
// QUIC carries TLS 1.3 inside the transport (RFC 9001) and needs the
// application protocol "h3" agreed by ALPN. The caller's tls.Config is
// the TCP listener's: its GetConfigForClient returns the current
// snapshot's per-client config, which offers "h2" and "http/1.1" and
// may allow TLS 1.2. Serve therefore wraps it with
// http3.ConfigureTLSConfig, which clones the base config once and
// replaces GetConfigForClient with a wrapper that calls the caller's
// callback on every handshake and returns a clone of its result with
// NextProtos set to ["h3"]; without it the handshake fails with
// no_application_protocol, because crypto/tls refuses a QUIC handshake
// without ALPN agreement. quic-go then clones again per connection and
// forces MinVersion to TLS 1.3 on the base and on every config returned
// by GetConfigForClient (crypto/tls rejects a QUIC config below TLS
// 1.3). The caller's configs are never modified. So certificates and
// the client-certificate policy (ClientAuth, ClientCAs) come from the
// caller's callbacks at each new handshake, and a certificate swap is
// seen by the next connection while open connections keep theirs. The
// other fields of the base config are read once, when Serve starts.
//
// Request.TLS is the connection's tls.ConnectionState, VerifiedChains
// included when a client certificate was verified, and Request.RemoteAddr
// is the client's UDP address.
//
// # No 0-RTT
//
// 0-RTT (early data) is refused. Early data can be replayed by anyone who
// captured it (RFC 8446 section 8, RFC 9001 section 9.2): a proxy cannot
// tell whether the routes behind it are safe to repeat, and it would have
// to hold back non-idempotent requests or answer 425 Too Early (RFC 8470)
// route by route. Resumption without early data still saves a round
// trip of certificate work. The listener also accepts a connection only
// after its handshake completes, so a handler never runs before the
// client certificate is verified.
//
// # Limits
//
// A client may open MaxStreams concurrent requests per connection (16
// unidirectional streams: HTTP/3 needs three). A handshake that stays
// silent for half of HandshakeTimeout, or does not finish within it, is
// dropped. IdleTimeout closes a connection on which no handler has run
// for that long; a request stream that has not delivered its headers
// does not count, so it also bounds, per connection, clients that open
// streams and never send a request (quic-go's http3 has no read-header
// timeout). It is also QUIC's idle timeout for a silent peer; the server
// sends keep-alive PINGs at half of it so that a long request on a quiet
// connection is not timed out by a client that sends none. MaxHeaderBytes bounds a
// request's header section (the HEADERS frame and its decoded size, RFC
// 9114 4.2.2); over it the client gets 431.
//
// # Shutdown
//
// Shutdown closes the listeners, sends GOAWAY on every connection and
// waits for their requests. Well-behaved clients close a connection
// themselves once GOAWAY arrives and their requests are done; a
// connection that has had no running handler for a second after GOAWAY
// is closed by the server, so idle or misbehaving clients cannot hold
// Shutdown until its deadline.
//
// # Deviations from the h1 server
//
//   - quic-go's ResponseWriter sniffs a Content-Type for a response
//     without one (as net/http does); set the field to nil to prevent it.
//   - Handler panics are recovered and logged by quic-go, which resets
//     the request stream; http.ErrAbortHandler is not logged.
//   - The request context carries http3.ServerContextKey (an internal
//     *http3.Server, one per connection), http.LocalAddrContextKey and
//     http3.RemoteAddrContextKey.
package h3
