package router

import (
	"bytes"
)

// Normalize returns the form of an escaped request path that routing
// compares: it always starts with "/"; percent-escapes of unreserved
// characters (RFC 3986 section 2.3: ALPHA DIGIT - . _ ~) are decoded and the
// other escapes kept with upper-case hex digits, so "%41" is "A" while "%2F"
// stays "%2F" and never becomes a segment separator; a "%" that does not
// start a valid escape becomes "%25", so that decoding never happens twice;
// "." and ".." segments are resolved (RFC 3986 section 5.2.4, never above the
// root) and repeated slashes collapsed. A trailing slash is kept.
//
// Pass the escaped path (r.URL.EscapedPath(), which does not allocate for
// ordinary paths); a decoded r.URL.Path works too but cannot tell "%2F" from
// "/". Normalize(Normalize(p)) == Normalize(p) for every p. It does not
// allocate when p is already normal, the common case. It is safe for
// concurrent use.
func Normalize(p string) string {
	if isNormal(p) {
		return p
	}
	return normalize(p)
}

// isDotSegment reports whether s, which starts with ".", starts with a
// whole "." or ".." segment.
func isDotSegment(s string) bool {
	switch {
	case len(s) == 1 || s[1] == '/':
		return true
	case s[1] != '.':
		return false
	}
	return len(s) == 2 || s[2] == '/'
}

// normalize is the allocating slow path of Normalize.
func normalize(p string) string {
	// Small paths decode into a stack buffer; only the result is allocated.
	var stack [256]byte
	d := unescapePath(stack[:0], p)
	out := make([]byte, 0, len(d))
	trailing := false
	for i := 0; i < len(d); {
		// d[i] == '/' here: unescapePath starts d with one.
		j := i + 1
		for j < len(d) && d[j] != '/' {
			j++
		}
		seg := d[i+1 : j]
		switch {
		case len(seg) == 0 || string(seg) == ".":
			trailing = true
		case string(seg) == "..":
			if k := bytes.LastIndexByte(out, '/'); k >= 0 {
				out = out[:k]
			}
			trailing = true
		default:
			out = append(out, '/')
			out = append(out, seg...)
			trailing = false
		}
		i = j
	}
	if trailing || len(out) == 0 {
		out = append(out, '/')
	}
	return string(out)
}

// unescapePath appends "/" and p to dst with the escapes of p rewritten as
// Normalize documents. The leading "/" makes relative input ("", "*", "a/b")
// absolute; a doubled slash it creates collapses later.
func unescapePath(dst []byte, p string) []byte {
	const upper = "0123456789ABCDEF"
	dst = append(dst, '/')
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			dst = append(dst, c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			dst = append(dst, "%25"...)
			continue
		}
		b := unhex(p[i+1])<<4 | unhex(p[i+2])
		i += 2
		if isUnreserved(b) {
			dst = append(dst, b)
			continue
		}
		dst = append(dst, '%', upper[b>>4], upper[b&15])
	}
	return dst
}

// isUnreserved reports whether c is an RFC 3986 unreserved character, the
// only ones whose escaped and literal forms are equivalent in a path.
func isUnreserved(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isUpperHex(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'F'
}

// unhex returns the value of the hex digit c; c must satisfy isHex.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
