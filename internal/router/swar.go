package router

import (
	"encoding/binary"
	"unsafe"
)

// The per-request scans of the path and the host read eight bytes at a
// time (SWAR). A byte loop with a branch per '/' and '.' mispredicted often
// enough to be a quarter of a 10,000-route match (BenchmarkMatch10000).
// Each word-wise function has a plain byte loop it must agree with, checked
// exhaustively on short inputs and fuzzed (swar_test.go).

const (
	ones = 0x0101010101010101
	high = 0x8080808080808080
	low7 = 0x7f7f7f7f7f7f7f7f
)

// eqMask returns the high bit of every byte of w that equals c, and no other
// bit. Unlike the classic has-zero-byte trick it has no false positives
// above a match, because no addition carries across a byte.
func eqMask(w uint64, c byte) uint64 {
	x := w ^ ones*uint64(c)
	return ^((x&low7 + low7) | x | low7)
}

// word loads the eight bytes of s at i, little-endian; i+8 <= len(s).
func word(s string, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s), len(s))[i:])
}

// isNormal reports whether Normalize would return p unchanged: p starts
// with "/" and has no "//", no "/." (a superset of the dot segments) and no
// "%". Paths that fail this coarse test (escapes, names starting with a
// dot) get the exact answer from isNormalBytes.
func isNormal(p string) bool {
	if len(p) < 8 {
		return isNormalBytes(p)
	}
	if p[0] != '/' {
		return false
	}
	var carry uint64 // the high bit of a slash ending the previous word, moved to byte 0
	for i := 0; ; i += 8 {
		if i+8 > len(p) {
			// The last word overlaps the one before; every pair of
			// adjacent bytes it shares with it was checked there.
			i, carry = len(p)-8, 0
		}
		w := word(p, i)
		slash := eqMask(w, '/')
		afterSlash := slash<<8 | carry
		if eqMask(w, '%') != 0 || afterSlash&(slash|eqMask(w, '.')) != 0 {
			return isNormalBytes(p)
		}
		if i+8 == len(p) {
			return true
		}
		carry = slash >> 56
	}
}

// isNormalBytes is the exact definition of isNormal, one byte at a time.
func isNormalBytes(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 1; i < len(p); i++ {
		switch c := p[i]; c {
		case '/':
			if p[i-1] == '/' {
				return false
			}
		case '.':
			if p[i-1] == '/' && isDotSegment(p[i:]) {
				return false
			}
		case '%':
			if i+2 >= len(p) || !isUpperHex(p[i+1]) || !isUpperHex(p[i+2]) ||
				isUnreserved(unhex(p[i+1])<<4|unhex(p[i+2])) {
				return false
			}
			i += 2
		}
	}
	return true
}

// isLowerASCII reports whether s has no upper-case letter and no byte
// outside ASCII, so that lowerASCII would return it unchanged.
func isLowerASCII(s string) bool {
	if len(s) < 8 {
		return isLowerASCIIBytes(s)
	}
	for i := 0; ; i += 8 {
		if i+8 > len(s) {
			i = len(s) - 8
		}
		w := word(s, i)
		// As in lowerASCII: with the high bits masked off no sum
		// carries into the next byte.
		x := w &^ high
		if (w|(x+(0x80-'A')*ones)&^(x+(0x80-'Z'-1)*ones))&high != 0 {
			return false
		}
		if i+8 == len(s) {
			return true
		}
	}
}

// isLowerASCIIBytes is the definition of isLowerASCII, one byte at a time.
func isLowerASCIIBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c-'A' < 26 || c >= 0x80 {
			return false
		}
	}
	return true
}
