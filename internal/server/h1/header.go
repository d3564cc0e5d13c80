package h1

import (
	"strings"
)

// Byte classes used by the parser. One table lookup per byte keeps the hot
// loops branch-light; the grammar comes from RFC 9110 section 5.6.2 (token)
// and section 5.5 (field values).
const (
	classValue  = 1 << iota // field-vchar, SP, HTAB or obs-text
	classTarget             // a byte allowed in a request-target (see validTarget)
	classHost               // a byte allowed in a Host value (reg-name, IP-literal, port)
	classPath               // a path byte net/url keeps as is (see originForm)
)

// byteClass is a constant lookup table: byteClass[b] holds the class bits of b.
var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		isAlnum := b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
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
