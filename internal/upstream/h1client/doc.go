// Package h1client is a lean HTTP/1.1 client transport for a reverse
// proxy's upstream connections: an http.RoundTripper bound to one address.
//
// Compared with net/http.Transport it drops what a proxy does not need
// (proxies from the environment, compression, HTTP/2, per-host routing),
// leaves TLS to the Dial function (which returns a handshaken *tls.Conn),
// and avoids the goroutines a round trip hops across there: the request
// is written and the response head read on the caller's goroutine, with
// per-connection buffers, and idle connections wait in a LIFO pool without
// a goroutine. Only a request body is streamed from a second goroutine,
// for full duplex: an upstream may answer, say 413, before reading it.
//
// Parsing is strict (RFC 9112): responses with ambiguous framing (both
// Transfer-Encoding and Content-Length, differing Content-Length values,
// a coding other than chunked), obs-fold, control characters in fields or
// malformed chunks fail with an error matching ErrMalformedResponse, and
// the connection is closed. Requests whose fields would break the framing
// are refused before anything is written.
//
// The package imports only the standard library.
package h1client
