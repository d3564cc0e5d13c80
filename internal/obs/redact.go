package obs

import "strings"

// alwaysSecretHeaders carry credentials in every deployment, so they are
// never logged whatever the config says (SPEC section 9).
var alwaysSecretHeaders = [...]string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// Redactor decides what of a request may appear in a log line: it hides
// credential headers and, when configured (logging.redact_query), query
// strings, which often carry tokens and personal data.
//
// Build it with NewRedactor when compiling a snapshot; it is immutable and
// safe for concurrent use. A nil *Redactor redacts only the always-secret
// headers (Authorization, Proxy-Authorization, Cookie, Set-Cookie) and never
// the query.
type Redactor struct {
	redactQuery bool
	// headers holds the configured names that are not already always
	// secret. A slice scanned with strings.EqualFold beats a map here:
	// the list is short and the lookup then needs no lower-casing
	// allocation per call.
	headers []string
}

// NewRedactor returns a Redactor hiding the always-secret headers plus
// headers (names in any case; empty and duplicate names are ignored; the
// slice is not retained), and the query string when redactQuery is true.
func NewRedactor(headers []string, redactQuery bool) *Redactor {
	r := &Redactor{redactQuery: redactQuery}
	for _, h := range headers {
		h = strings.TrimSpace(h)
		if h == "" || r.Header(h) {
			continue
		}
		r.headers = append(r.headers, h)
	}
	return r
}

// Path returns pathWithQuery (a request URI such as "/a/b?token=x") safe
// for logging. With query redaction on, a non-empty query is replaced by
// "REDACTED" ("/a/b?REDACTED") so a reader still sees that there was one;
// otherwise, or without a query, pathWithQuery is returned unchanged.
func (r *Redactor) Path(pathWithQuery string) string {
	if r == nil || !r.redactQuery {
		return pathWithQuery
	}
	i := strings.IndexByte(pathWithQuery, '?')
	if i < 0 || i == len(pathWithQuery)-1 {
		return pathWithQuery
	}
	return pathWithQuery[:i] + "?REDACTED"
}

// Header reports whether the header called name (any case) must never be
// logged, its value nor a hint of it.
func (r *Redactor) Header(name string) bool {
	for _, h := range alwaysSecretHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	if r == nil {
		return false
	}
	for _, h := range r.headers {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}
