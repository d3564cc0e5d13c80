package traffic

import (
	"net/http"
	"net/textproto"
	"strings"
)

// keyValue returns the key k of request r (clientIP for KeyClientIP) and
// whether it is present; an empty value counts as absent. It does not
// allocate.
func keyValue(r *http.Request, k Key, clientIP string) (string, bool) {
	switch k.Kind {
	case KeyClientIP:
		return clientIP, clientIP != ""
	case KeyHeader:
		if r == nil {
			return "", false
		}
		// k.Name is canonical (see Settings.normalized), so the map is
		// indexed directly: Header.Get would canonicalize on every call.
		if v := r.Header[k.Name]; len(v) > 0 && v[0] != "" {
			return v[0], true
		}
	case KeyCookie:
		if r == nil {
			return "", false
		}
		return cookieValue(r.Header, k.Name)
	}
	return "", false
}

// cookieValue returns the value of the first cookie named name in the
// Cookie headers of h, with surrounding double quotes removed, and whether
// it is present and not empty. It reads the headers the way
// http.Request.Cookie does (RFC 6265 section 5.4: name=value pairs
// separated by ";", whitespace around a pair and a name ignored; HTTP/2 may split them
// over several Cookie fields, RFC 9113 section 8.2.3) but allocates
// nothing, where Request.Cookie parses every pair into a new http.Cookie.
// It is more lenient: it does not drop pairs with bytes RFC 6265 forbids,
// and skips a bare value without "=", which net/http takes for a name.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			// IndexByte, not Cut, and no TrimRight with a cutset: those
			// took most of the time of a sticky cookie lookup.
			pair := line
			line = ""
			if i := strings.IndexByte(pair, ';'); i >= 0 {
				pair, line = pair[:i], pair[i+1:]
			}
			eq := strings.IndexByte(pair, '=')
			if eq < 0 || textproto.TrimString(pair[:eq]) != name {
				continue
			}
			// The pair is trimmed, not the value: a space after "=" stays.
			v := pair[eq+1:]
			for v != "" && isSpace(v[len(v)-1]) {
				v = v[:len(v)-1]
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, v != ""
		}
	}
	return "", false
}

// isSpace reports whether b is ASCII whitespace as textproto.TrimString
// trims it.
func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// Sticky buckets: a key lands in one of 10000 buckets, and the canary
// takes buckets below weight*100.
const stickyBuckets = 10000

// stickyBucket returns the bucket of a sticky key: FNV-1a 64 over its
// bytes, then the MurmurHash3 fmix64 finalizer, mod 10000. FNV-1a alone
// mixes its low bits poorly for short keys that differ in one character
// ("user-41", "user-42"), which skews a modulus; the finalizer fixes that.
// The function has no seed and must never change: every proxy of a fleet,
// and every restart, must put a client in the same bucket, or sticky
// clients would flip variants on deploys.
func stickyBucket(key string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h % stickyBuckets
}
