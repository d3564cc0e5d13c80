// Package h1 is the proxy's HTTP/1.1 server for the plaintext data-plane
// listener: a strict and lean replacement for net/http's server that
// serves a standard http.Handler with net/http's semantics.
//
// Why not net/http: its server accepts a request with both Content-Length
// and Transfer-Encoding (dropping Content-Length), which the proxy must
// reject to rule out request smuggling (SPEC section 5), and it costs more
// CPU and allocations per keep-alive request than the proxy can afford.
//
// # Strictness
//
// A request is refused before the handler runs, with Connection: close
// and the connection closed, when (status in brackets):
//   - it has both Content-Length and Transfer-Encoding [400];
//   - Transfer-Encoding is anything but a single "chunked" [400], or names
//     a coding other than chunked [501]; or it comes with HTTP/1.0 [400];
//   - Content-Length is malformed (sign, non-digit, overflow) or repeated
//     with differing values [400]; identical repeats collapse to one;
//   - a field line is folded (obs-fold), has whitespace before the colon,
//     an invalid name, or a control character in its value [400];
//   - the method is not a token, the request line is not exactly
//     "method SP target SP version", or the target is invalid (control
//     characters, space, '#', asterisk-form but for OPTIONS,
//     authority-form but for CONNECT, absolute-form that is not http or
//     https with a host, or has userinfo) [400];
//   - the version is HTTP/x.y other than 1.0 and 1.1 [505], or malformed [400];
//   - an HTTP/1.1 request has no Host, or any request several Host fields
//     or an invalid one [400];
//   - Expect holds anything but 100-continue [417];
//   - the request-target is longer than MaxURLBytes [414], the head
//     longer than MaxHeaderBytes or with more than MaxHeaderCount fields
//     [431].
//
// Rejections carry the SPEC section 6 JSON body and X-Proxy-Error and
// X-Request-Id fields. Lines may end in a bare LF in the head and trailers
// (RFC 9112 2.2); a CR anywhere else is an error. Chunked bodies are
// strict: hexadecimal sizes, CRLF everywhere, bounded extensions and
// trailers; a violation makes the body return a *BodyError and closes the
// connection (with a 400 if the handler did not answer).
//
// # Deviations from net/http
//
//   - No Content-Type sniffing: a response without Content-Type is sent
//     without one, as a proxy should.
//   - The request context has no http.ServerContextKey value (there is no
//     *http.Server); it has http.LocalAddrContextKey.
//   - The request body is never consumed when the response starts, so
//     reading the body while writing the response always works (HTTP/1
//     full duplex); EnableFullDuplex only reports success.
//   - The background read that cancels the request context when the
//     client disconnects (net/http's backgroundRead) starts only for a
//     request whose context is being watched (Done was called), whose
//     body is fully read, and which has been running for 5-10ms; a
//     departed client is noticed that much later, and short requests
//     never pay for the read.
//   - OPTIONS * reaches the handler (net/http answers it itself), and
//     empty lines before a request line are skipped (RFC 9112 2.2; net/http
//     answers 400).
//   - A CONNECT request in authority-form is passed to the handler with
//     URL.Host set, like net/http; the handler decides (405 or tunnel by
//     Hijack).
//   - 1xx responses are never sent to HTTP/1.0 clients, and a second
//     100 Continue is dropped (RFC 9110 15.2).
//   - Request.TLS is always nil: this server is for plaintext listeners.
//   - http.MaxBytesReader cannot ask this ResponseWriter to close the
//     connection (net/http's hook is unexported); an unread remainder is
//     drained up to 256KB or the connection is closed anyway.
//   - After a final response the connection is half-closed and drained
//     briefly before closing, which needs a CloseWrite method on the
//     net.Conn; listener wrappers (PROXY protocol) should keep it.
package h1
