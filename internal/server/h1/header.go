package h1

import (
	"net/textproto"
	"strings"
)

// Byte classes used by the parser. One table lookup per byte keeps the hot
// loops branch-light; the grammar comes from RFC 9110 section 5.6.2 (token)
// and section 5.5 (field values).
const (
	classToken  = 1 << iota // tchar: a field name or method byte
	classValue              // field-vchar, SP, HTAB or obs-text
	classTarget             // a byte allowed in a request-target (see validTarget)
	classHost               // a byte allowed in a Host value (reg-name, IP-literal, port)
	classPath               // a path byte net/url keeps as is (see originForm)
)

// byteClass is a constant lookup table: byteClass[b] holds the class bits of b.
var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		isAlnum := b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
		if isAlnum || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			t[c] |= classToken
		}
		// RFC 9110 5.5: field-vchar = VCHAR / obs-text, plus SP and HTAB
		// inside the value. Every other CTL (CR and LF included) and DEL
		// are invalid.
		if b == ' ' || b == '\t' || b > 0x20 && b != 0x7f {
			t[c] |= classValue
		}
		// Visible ASCII except '#': the fragment never travels in a
		// request-target (RFC 9112 3.2). obs-text is tolerated like
		// net/http and nginx do, since some clients send raw UTF-8 paths.
		if b > 0x20 && b != 0x7f && b != '#' {
			t[c] |= classTarget
		}
		// RFC 3986 reg-name / IP-literal / port characters, the same
		// set golang.org/x/net/http/httpguts.ValidHostHeader accepts.
		if isAlnum || strings.IndexByte("!$%&'()*+,-.:;=[]_~", b) >= 0 {
			t[c] |= classHost
		}
		// The bytes net/url's path escaping leaves alone: a path made of
		// them parses to Path == the raw path and an empty RawPath.
		if isAlnum || strings.IndexByte("-_.~$&+,/:;=@", b) >= 0 {
			t[c] |= classPath
		}
	}
	return t
}()

// validToken reports whether s is a non-empty RFC 9110 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if byteClass[s[i]]&classToken == 0 {
			return false
		}
	}
	return true
}

// validValue reports whether s contains only field-value bytes.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if byteClass[s[i]]&classValue == 0 {
			return false
		}
	}
	return true
}

// validHost reports whether s is an acceptable Host field value. An empty
// value is allowed (RFC 9110 7.2: a target URI without authority).
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if byteClass[s[i]]&classHost == 0 {
			return false
		}
	}
	return true
}

// trimOWS removes optional whitespace (SP, HTAB) at both ends of s
// (RFC 9110 5.6.3).
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// hasToken reports whether the comma-separated list values contains token,
// compared case-insensitively (RFC 9110 5.6.1 list syntax, 7.6.1 Connection).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(trimOWS(elem), token) {
				return true
			}
		}
	}
	return false
}

// isCanonical reports whether name is already in canonical MIME form
// ("Content-Type"), the form almost every client sends. Checking first lets
// the parser keep the substring of the head and skip an allocation.
func isCanonical(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && c >= 'a' && c <= 'z' || !upper && c >= 'A' && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// canonicalKey returns the canonical form of the valid token name without
// allocating when name is canonical or a common header in another case.
func canonicalKey(name string) string {
	if isCanonical(name) {
		return name
	}
	if len(name) <= maxCommonLen {
		var buf [maxCommonLen]byte
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		// The compiler does not allocate for a map index by string(bytes).
		if k, ok := commonHeaders[string(buf[:len(name)])]; ok {
			return k
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// maxCommonLen bounds the names looked up in commonHeaders.
const maxCommonLen = 32

// commonHeaders is a constant lookup table from lower-case names to their
// canonical form, for clients (and HTTP/2-minded libraries) that send
// lower-case field names.
var commonHeaders = map[string]string{
	"accept":                    "Accept",
	"accept-charset":            "Accept-Charset",
	"accept-encoding":           "Accept-Encoding",
	"accept-language":           "Accept-Language",
	"authorization":             "Authorization",
	"cache-control":             "Cache-Control",
	"connection":                "Connection",
	"content-encoding":          "Content-Encoding",
	"content-length":            "Content-Length",
	"content-type":              "Content-Type",
	"cookie":                    "Cookie",
	"date":                      "Date",
	"dnt":                       "Dnt",
	"expect":                    "Expect",
	"forwarded":                 "Forwarded",
	"host":                      "Host",
	"if-match":                  "If-Match",
	"if-modified-since":         "If-Modified-Since",
	"if-none-match":             "If-None-Match",
	"if-range":                  "If-Range",
	"if-unmodified-since":       "If-Unmodified-Since",
	"keep-alive":                "Keep-Alive",
	"origin":                    "Origin",
	"pragma":                    "Pragma",
	"range":                     "Range",
	"referer":                   "Referer",
	"sec-fetch-dest":            "Sec-Fetch-Dest",
	"sec-fetch-mode":            "Sec-Fetch-Mode",
	"sec-fetch-site":            "Sec-Fetch-Site",
	"te":                        "Te",
	"traceparent":               "Traceparent",
	"tracestate":                "Tracestate",
	"trailer":                   "Trailer",
	"transfer-encoding":         "Transfer-Encoding",
	"upgrade":                   "Upgrade",
	"upgrade-insecure-requests": "Upgrade-Insecure-Requests",
	"user-agent":                "User-Agent",
	"via":                       "Via",
	"x-forwarded-for":           "X-Forwarded-For",
	"x-forwarded-host":          "X-Forwarded-Host",
	"x-forwarded-proto":         "X-Forwarded-Proto",
	"x-real-ip":                 "X-Real-Ip",
	"x-request-id":              "X-Request-Id",
}
