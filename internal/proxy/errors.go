package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/keelproxy/keel/internal/upstream"
)

// Category is an error category of SPEC section 6. It is what clients see
// in the JSON body and the X-Proxy-Error header, and what the access log's
// error field holds.
type Category string

// The error categories the core can produce. Later features add theirs.
const (
	ErrNoRoute          Category = "no_route"
	ErrMethodNotAllowed Category = "method_not_allowed"
	ErrBadRequest       Category = "bad_request"
	ErrRequestTooLarge  Category = "request_too_large"
	ErrHeaderTooLarge   Category = "header_too_large"
	ErrURITooLong       Category = "uri_too_long"
	ErrTLSRequired      Category = "tls_required"
	ErrMTLSRequired     Category = "mtls_required"
	ErrConnectFailed    Category = "upstream_connect_failed"
	ErrUpstreamReset    Category = "upstream_reset"
	ErrUpstreamTimeout  Category = "upstream_timeout"
	ErrRequestTimeout   Category = "request_timeout"
	ErrNoHealthy        Category = "no_healthy_upstream"
	ErrCircuitOpen      Category = "circuit_open"
	ErrUnauthorized     Category = "unauthorized"
	ErrRateLimited      Category = "rate_limited"
	ErrOverloaded       Category = "overloaded"
	// ErrClientClosed is not sent to anyone (the client is gone); it labels
	// the access-log line and metrics with nginx's 499 convention.
	ErrClientClosed Category = "client_closed"
)

// StatusClientClosed is the status logged when the client went away before
// the response was complete (nginx's 499).
const StatusClientClosed = 499

// Status returns the HTTP status of a category.
func (c Category) Status() int {
	switch c {
	case ErrNoRoute:
		return http.StatusNotFound
	case ErrMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case ErrBadRequest:
		return http.StatusBadRequest
	case ErrRequestTooLarge:
		return http.StatusRequestEntityTooLarge
	case ErrHeaderTooLarge:
		return http.StatusRequestHeaderFieldsTooLarge
	case ErrURITooLong:
		return http.StatusRequestURITooLong
	case ErrTLSRequired, ErrMTLSRequired:
		return http.StatusForbidden
	case ErrConnectFailed, ErrUpstreamReset:
		return http.StatusBadGateway
	case ErrUpstreamTimeout, ErrRequestTimeout:
		return http.StatusGatewayTimeout
	case ErrNoHealthy, ErrCircuitOpen, ErrOverloaded:
		return http.StatusServiceUnavailable
	case ErrUnauthorized:
		return http.StatusUnauthorized
	case ErrRateLimited:
		return http.StatusTooManyRequests
	case ErrClientClosed:
		return StatusClientClosed
	}
	return http.StatusInternalServerError
}

// message is the human-readable text of the JSON error body. It never
// contains request data, so it cannot leak secrets or reflect input.
func (c Category) message() string {
	switch c {
	case ErrNoRoute:
		return "no route matches this request"
	case ErrMethodNotAllowed:
		return "method not allowed on this route"
	case ErrBadRequest:
		return "malformed request"
	case ErrRequestTooLarge:
		return "request body exceeds the route's limit"
	case ErrHeaderTooLarge:
		return "request headers too large"
	case ErrURITooLong:
		return "request URL too long"
	case ErrTLSRequired:
		return "this route requires TLS"
	case ErrMTLSRequired:
		return "this route requires a verified client certificate"
	case ErrConnectFailed:
		return "could not connect to an upstream"
	case ErrUpstreamReset:
		return "upstream closed the connection before responding"
	case ErrUpstreamTimeout:
		return "upstream did not respond in time"
	case ErrRequestTimeout:
		return "request exceeded the route's timeout"
	case ErrNoHealthy:
		return "no healthy upstream"
	case ErrCircuitOpen:
		return "the upstream's circuit breaker is open"
	case ErrUnauthorized:
		return "missing or invalid credentials"
	case ErrRateLimited:
		return "rate limit exceeded"
	case ErrOverloaded:
		return "the route is at capacity; retry later"
	}
	return string(c)
}

// errBodyTooLarge is returned by the body limiter once a request body
// exceeds the route's body_size_limit.
var errBodyTooLarge = errors.New("request body exceeds limit")

// errTimeout marks the expiry of the route policy's whole-request timeout,
// so it can be told apart from the client going away.
var errTimeout = errors.New("route timeout")

// classify maps an upstream round-trip failure to its category. It is the
// one place that decides: dial errors are connect failures, timeouts split
// by whose deadline fired, everything else before headers is a reset.
func classify(ctx context.Context, err error) Category {
	if errors.Is(err, errBodyTooLarge) {
		return ErrRequestTooLarge
	}
	if context.Cause(ctx) == errTimeout {
		return ErrRequestTimeout
	}
	if ctx.Err() != nil {
		return ErrClientClosed
	}
	var de *upstream.DialError
	if errors.As(err, &de) {
		return ErrConnectFailed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrUpstreamTimeout
	}
	// net/http's Transport reports its ResponseHeaderTimeout with this text
	// and no typed error.
	if strings.Contains(err.Error(), "timeout awaiting response headers") {
		return ErrUpstreamTimeout
	}
	return ErrUpstreamReset
}

// writeError is the one exit for errors the proxy generates itself: status
// from the category, a JSON body, X-Request-Id and X-Proxy-Error.
func writeError(w http.ResponseWriter, c Category, requestID string) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["X-Proxy-Error"] = []string{string(c)}
	if requestID != "" {
		h["X-Request-Id"] = []string{requestID}
	}
	if c == ErrBadRequest {
		h["Connection"] = []string{"close"}
	}
	buf := make([]byte, 0, 128)
	buf = append(buf, `{"error":"`...)
	buf = append(buf, c...)
	buf = append(buf, `","message":"`...)
	buf = append(buf, c.message()...)
	buf = append(buf, `","request_id":`...)
	buf = strconv.AppendQuote(buf, requestID)
	buf = append(buf, "}\n"...)
	h["Content-Length"] = []string{strconv.Itoa(len(buf))}
	w.WriteHeader(c.Status())
	w.Write(buf)
}
