// Package httpwire holds the HTTP/1.1 field grammar that both of the
// proxy's own HTTP/1.1 implementations need, the server (server/h1) and the
// upstream client (upstream/h1client): tokens, field values, optional
// whitespace, list elements, canonical field names and decimal lengths
// (RFC 9110 sections 5 and 8.6), and the Date field both servers send.
// A leaf: it imports no internal package. Everything here is safe for
// concurrent use, and all but DateCache is pure.
package httpwire

import (
	"errors"
	"math"
	"net/http"
	"net/textproto"
	"strings"
)

// tchar marks the bytes of an RFC 9110 section 5.6.2 token. A constant
// lookup table.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// IsTokenByte reports whether b may appear in a token.
func IsTokenByte(b byte) bool { return tchar[b] }

// ValidToken reports whether s is a non-empty RFC 9110 token (a field name
// or a method).
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// ValidFieldValue reports whether s holds only field-value bytes: VCHAR,
// obs-text, SP and HTAB (RFC 9110 section 5.5). CR and LF in particular are
// refused, in both directions: writing one would split a message.
func ValidFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// TrimOWS removes optional whitespace (SP, HTAB) at both ends of s
// (RFC 9110 section 5.6.3).
func TrimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// HasToken reports whether the comma-separated lists in values contain
// token, compared case-insensitively (RFC 9110 section 5.6.1 list syntax,
// as in Connection and Transfer-Encoding).
func HasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(TrimOWS(elem), token) {
				return true
			}
		}
	}
	return false
}

// ParseDecimal parses 1*DIGIT into a non-negative int64, rejecting signs,
// spaces and overflow (a Content-Length or a status code).
func ParseDecimal(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// IsCanonical reports whether name is in http.CanonicalHeaderKey form:
// upper case at the start and after each '-', lower case elsewhere. It is
// the form almost every peer sends; checking first lets a parser keep the
// substring of the head and skip an allocation.
func IsCanonical(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// CanonicalKey returns the canonical form of the valid token name, the form
// http.Header keys take. It does not allocate when name is canonical or a
// common field name in another case (what peers bridged from HTTP/2 send).
func CanonicalKey(name string) string {
	if IsCanonical(name) {
		return name
	}
	if len(name) <= maxCommonLen {
		var buf [maxCommonLen]byte
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		// The compiler does not allocate for a map index by string(bytes).
		if k, ok := commonNames[string(buf[:len(name)])]; ok {
			return k
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// maxCommonLen bounds the names looked up in commonNames.
const maxCommonLen = 32

// commonNames maps the lower-case form of frequent request, response and
// trailer field names to their canonical form. A constant lookup table.
var commonNames = func() map[string]string {
	names := []string{
		// Requests.
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cookie", "Dnt", "Expect", "Forwarded", "Host", "If-Match", "If-Modified-Since",
		"If-None-Match", "If-Range", "If-Unmodified-Since", "Origin", "Range", "Referer",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Te", "Traceparent", "Tracestate",
		"Upgrade-Insecure-Requests", "User-Agent", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
		// Both directions.
		"Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
		"Date", "Keep-Alive", "Pragma", "Trailer", "Transfer-Encoding", "Upgrade", "Via",
		// Responses and trailers.
		"Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Alt-Svc", "Content-Disposition", "Content-Language",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Etag", "Expires",
		"Grpc-Message", "Grpc-Status", "Last-Modified", "Link", "Location", "Proxy-Authenticate",
		"Referrer-Policy", "Retry-After", "Server", "Server-Timing", "Set-Cookie",
		"Strict-Transport-Security", "Vary", "Www-Authenticate", "X-Content-Type-Options",
		"X-Frame-Options", "X-Powered-By", "X-Xss-Protection",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = n
	}
	return m
}()

// ForbiddenTrailer reports the canonical field names that must never come
// from a trailer section: framing and routing fields (RFC 9110 section
// 6.5.1), which a recipient has already acted on by then.
func ForbiddenTrailer(key string) bool {
	switch key {
	case "Transfer-Encoding", "Content-Length", "Trailer", "Host":
		return true
	}
	return false
}

// DeclaredTrailers parses the values of a Trailer field into a header with
// one nil-valued canonical key per announced field, as net/http presents
// them until the body ends (nil when none is announced). It reports why
// the declaration is unacceptable: a name that is not a token, or a
// forbidden field.
func DeclaredTrailers(values []string) (http.Header, error) {
	var t http.Header
	for _, v := range values {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			name = TrimOWS(name)
			if name == "" {
				continue
			}
			if !ValidToken(name) {
				return nil, errors.New("invalid Trailer field")
			}
			key := CanonicalKey(name)
			if ForbiddenTrailer(key) {
				return nil, errors.New("forbidden field " + key + " in Trailer")
			}
			if t == nil {
				t = make(http.Header, len(values))
			}
			t[key] = nil
		}
	}
	return t, nil
}
