package router

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// hostKind is how a rule matches the host. The order is the precedence.
type hostKind uint8

const (
	hostExact hostKind = iota + 1
	hostWildcard
	hostRegex
	hostAny
)

// hostname returns the request host without its port, IPv6 brackets and one
// trailing dot, in its original case. It does not allocate.
func hostname(h string) string {
	if h == "" {
		return h
	}
	if h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	// A single colon separates the port; more colons make a bare IPv6
	// address (not valid in a Host header, but harmless to accept).
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	if len(h) > 1 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	return h
}

// lowerASCII appends s to dst with ASCII letters lowered and reports whether
// s is all ASCII. Only ASCII is folded: hosts on the wire are ASCII (IDNA
// names travel as punycode), and folding only ASCII keeps compile and match
// time in agreement without Unicode tables.
//
// It runs on every request and works on eight bytes at a time (SWAR); the
// byte loop for the tail is the plain definition, and TestLowerASCII
// checks the two against each other.
func lowerASCII(dst []byte, s string) ([]byte, bool) {
	n := len(dst)
	dst = append(dst, s...)
	b := dst[n:]
	var nonASCII uint64
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		nonASCII |= w
		// For each byte x < 0x80 (the high bit of w masks the others
		// out), x+(0x80-'A') has its high bit set when x >= 'A' and
		// x+(0x80-'Z'-1) when x > 'Z'; neither sum carries into the
		// next byte because x+0x3f < 0x100.
		x := w &^ high
		upper := (x + (0x80-'A')*ones) &^ (x + (0x80-'Z'-1)*ones) &^ w & high
		binary.LittleEndian.PutUint64(b[i:], w|upper>>2) // 0x80>>2 is 'a'-'A'
	}
	var tail byte
	for ; i < len(b); i++ {
		c := b[i]
		tail |= c
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return dst, nonASCII&high == 0 && tail < 0x80
}

// isRegexHost reports whether a rule host is meant as a regular expression:
// it contains syntax that no host name or "*." wildcard contains.
func isRegexHost(h string) bool {
	return strings.ContainsAny(h, `\()[]{}^$|+?`) || strings.Contains(h, ".*")
}

// classifyHost returns how a rule's host matches and the key it is indexed
// by: the lower-case host for exact, the lower-case suffix with its leading
// dot (".example.com") for wildcard, the pattern itself for regex and "" for
// any.
func classifyHost(h string) (hostKind, string, error) {
	switch {
	case h == "" || h == "*":
		return hostAny, "", nil
	case isBracketedIPv6(h):
		// Brackets are regex syntax too, but "[::1]" is the usual way
		// to write an IPv6 host.
		return hostExact, lower(h[1 : len(h)-1]), nil
	case isRegexHost(h):
		return hostRegex, h, nil
	case strings.HasPrefix(h, "*."):
		rest := trimDot(h[2:])
		if rest == "" || strings.Contains(rest, "*") || strings.Contains(rest, ":") {
			return 0, "", fmt.Errorf("wildcard host %q: want \"*.\" followed by a host name", h)
		}
		return hostWildcard, "." + lower(rest), nil
	case strings.Contains(h, "*"):
		return 0, "", fmt.Errorf("host %q: \"*\" is allowed only as a whole leading label (\"*.example.com\")", h)
	}
	if strings.Count(h, ":") == 1 {
		// The request port is stripped before matching, so a rule with
		// a port could never match.
		return 0, "", fmt.Errorf("host %q must not include a port", h)
	}
	return hostExact, lower(trimDot(h)), nil
}

// isBracketedIPv6 reports whether h is an IPv6 address in brackets.
func isBracketedIPv6(h string) bool {
	if len(h) < 2 || h[0] != '[' || h[len(h)-1] != ']' {
		return false
	}
	a, err := netip.ParseAddr(h[1 : len(h)-1])
	return err == nil && a.Is6()
}

func trimDot(h string) string {
	if len(h) > 1 && h[len(h)-1] == '.' {
		return h[:len(h)-1]
	}
	return h
}

func lower(s string) string {
	b, _ := lowerASCII(make([]byte, 0, len(s)), s)
	return string(b)
}
