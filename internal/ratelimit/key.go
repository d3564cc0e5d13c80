package ratelimit

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/keelproxy/keel/internal/httpwire"
)

// KeyFunc maps a request to its bucket key. clientIP is the client's
// address as the proxy resolved it (trusted X-Forwarded-For included) and
// routeID the matched route's id. A KeyFunc is safe for concurrent use.
type KeyFunc func(r *http.Request, clientIP, routeID string) string

// ParseKey returns the KeyFunc of a rate_limit key setting:
//
//   - "client_ip" (or ""): one bucket per client address. An empty
//     clientIP is the key "", one bucket shared by all such requests.
//   - "route": one bucket per route, shared by all clients.
//   - "header:NAME": one bucket per value of the first NAME header. A
//     request without the header (or with an empty value) is keyed by its
//     client address instead, so that omitting the header neither escapes
//     the limit nor lets one client exhaust a bucket shared by everyone
//     else who omits it. Those keys start with a NUL byte, which no header
//     value can contain, so no header value can name a client's bucket.
//     Clients choose their header values, and a fresh value is a fresh
//     bucket: key by a header only when a trusted layer sets it (an auth
//     stage forwarding a verified claim, say).
//
// Only the header form allocates, and only when it falls back to the
// client address.
func ParseKey(spec string) (KeyFunc, error) {
	switch {
	case spec == "" || spec == "client_ip":
		return func(_ *http.Request, clientIP, _ string) string { return clientIP }, nil
	case spec == "route":
		return func(_ *http.Request, _, routeID string) string { return routeID }, nil
	case strings.HasPrefix(spec, "header:"):
		name := strings.TrimPrefix(spec, "header:")
		if !httpwire.ValidToken(name) {
			return nil, fmt.Errorf("rate limit key %q: invalid header name", spec)
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		return func(r *http.Request, clientIP, _ string) string {
			if v := r.Header[name]; len(v) > 0 && v[0] != "" {
				return v[0]
			}
			return "\x00" + clientIP
		}, nil
	}
	return nil, fmt.Errorf("rate limit key %q: want client_ip, route or header:NAME", spec)
}
