// Package h2 is the proxy's HTTP/2 server (RFC 9113) for connections a
// listener hands over: TLS connections that negotiated "h2" and h2c
// prior-knowledge connections. It serves a standard http.Handler with
// net/http's semantics.
//
// Why not x/net/http2's server: every frame a handler writes there is
// handed to the connection's serve goroutine and waited for, and every
// flush runs on a goroutine of its own, so a small response crosses
// goroutines three times; on the proxy's HTTP/2 benchmark that was about
// a quarter of the CPU. Here the handler goroutine writes its frames
// itself under the connection's write lock, a small response's HEADERS
// and DATA leave in one write, and the last writer out flushes, so
// concurrent responses share TLS records and syscalls. Frames are read
// and written with x/net's Framer and HPACK, which also enforce frame
// sizes, frame order, header-field validity and the header-block bound
// that stops CONTINUATION floods (CVE-2023-45288).
//
// # Strictness
//
// Beyond the frame layer, the server treats as malformed (RST_STREAM
// PROTOCOL_ERROR, the handler never runs): connection-specific fields
// (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade),
// TE other than "trailers", unknown or missing pseudo-header fields, an
// invalid :authority, a Content-Length that is malformed, disagrees
// with itself or with the DATA received, and trailers with pseudo-header
// or framing fields. A decoded header block over MaxHeaderBytes gets a
// 431 response. Repeated SETTINGS parameters apply in order, so the last
// value wins (6.5.3). Frames that cross a RST_STREAM we sent (the last
// 32 such streams are remembered) are ignored, as 5.4.2 asks, rather
// than answered with another reset.
//
// Responses are strict too: a Write beyond the declared Content-Length
// fails with http.ErrContentLength, and a handler that returns having
// written less gets its stream reset (INTERNAL_ERROR) instead of a
// truncated body marked complete.
//
// # Abuse limits
//
//   - Streams over MaxConcurrentStreams are refused (REFUSED_STREAM).
//   - Rapid reset (CVE-2023-44487): a connection that opened at least
//     100 streams and reset more than half of them is closed with
//     ENHANCE_YOUR_CALM, like Envoy's premature-reset limit. Handlers of
//     reset streams still running count too: over 4x
//     MaxConcurrentStreams closes the connection the same way.
//   - Control-frame floods (PING, SETTINGS) cannot queue: the read loop
//     writes each answer itself, so a client that does not read stalls
//     only its own connection until SlowClientTimeout ends it.
//   - A response waiting for flow-control window longer than
//     SlowClientTimeout fails, so a client cannot hold a handler (and
//     its upstream connection) by never granting window.
//
// # Deviations from net/http
//
//   - No server push, no extended CONNECT (RFC 8441); priorities are
//     accepted and ignored (RFC 9113 deprecates them).
//   - No Content-Type sniffing, as for the HTTP/1 server.
//   - The request context has http.LocalAddrContextKey but no
//     http.ServerContextKey.
//   - SetReadDeadline and SetWriteDeadline are not supported
//     (http.ResponseController reports ErrNotSupported).
package h2
