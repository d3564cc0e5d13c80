package h1client

import (
	"errors"
	"io"
)

// ErrMalformedResponse is wrapped by every error about a response that
// breaks HTTP/1.1 syntax or framing (RFC 9112): a garbled status line, a
// field line without a colon, obs-fold, both Transfer-Encoding and
// Content-Length, a bad chunk size, a head over the size limit. Match it
// with errors.Is; the connection that carried such a response is closed.
var ErrMalformedResponse = errors.New("h1client: malformed HTTP response")

// ErrResponseHeaderTimeout is returned when Transport.ResponseHeaderTimeout
// expires before the response head arrives. It is a net.Error whose
// Timeout method reports true, and its text contains "timeout awaiting
// response headers", the phrase net/http uses, so callers that classify
// either transport the same way keep working.
var ErrResponseHeaderTimeout error = timeoutError{}

// errClosedBeforeResponse reports a connection that ended cleanly (FIN)
// before the first byte of a response: on a reused connection the classic
// keep-alive race, elsewhere an upstream that gave up. Its text contains
// "EOF" so that callers classify it as a reset; it wraps
// io.ErrUnexpectedEOF rather than io.EOF because for a RoundTrip caller an
// end of stream here is never a normal end.
var errClosedBeforeResponse = &closedError{}

// errBodyClosed is what Read returns after Close. Same text as net/http's.
var errBodyClosed = errors.New("http: read on closed response body")

// errBodySkipped is the body writer's result when it did not send the
// request body because the upstream answered an "Expect: 100-continue"
// request with a final status: the request on the wire is then incomplete
// and the connection must not be reused.
var errBodySkipped = errors.New("h1client: request body not sent")

// timeoutError is the type of ErrResponseHeaderTimeout.
type timeoutError struct{}

func (timeoutError) Error() string   { return "h1client: timeout awaiting response headers" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// closedError is the type of errClosedBeforeResponse.
type closedError struct{}

func (*closedError) Error() string {
	return "h1client: connection closed before response: unexpected EOF"
}
func (*closedError) Unwrap() error { return io.ErrUnexpectedEOF }

// malformedError describes what was wrong with a response; it matches
// ErrMalformedResponse under errors.Is.
type malformedError struct{ why string }

func malformed(why string) error { return &malformedError{why: why} }

func (e *malformedError) Error() string        { return ErrMalformedResponse.Error() + ": " + e.why }
func (e *malformedError) Is(target error) bool { return target == ErrMalformedResponse }

// requestError reports a request that cannot be written (an invalid method,
// target, host or header): nothing is sent for it.
type requestError struct{ why string }

func (e *requestError) Error() string { return "h1client: invalid request: " + e.why }

// bodyReadError wraps an error returned by the request body's Read. The
// round trip fails with it (errors.Is sees the original error through
// Unwrap), so that a caller's own sentinel, for instance a body size
// limiter's, reaches the caller instead of a generic network error.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "h1client: reading request body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }
