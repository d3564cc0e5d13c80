package router

import (
	"encoding/binary"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// pattern is a compiled, anchored rule regex plus literal text that every
// match must begin and end with. The literals let Match reject most
// non-matching inputs with a string comparison instead of running the regex
// engine, which matters because a request that falls through to the regex
// groups (a 404, for example) would otherwise run every regex.
type pattern struct {
	src string
	re  *regexp.Regexp
	// prefix and suffix are required literals; "" when none is known.
	// For host patterns they are lower-case and compared with the
	// lower-cased host.
	prefix, suffix string
	// The first eight bytes of prefix and the last eight of suffix
	// (fewer when they are shorter) as the masked words an input's first
	// and last eight bytes must equal: one comparison rejects almost
	// every input that falls through to the regex rules (a 404 tries
	// them all) without a call to compare strings.
	preWord, preMask, sufWord, sufMask uint64
	minLen                             int // max(len(prefix), len(suffix))
}

// setLiterals sets the literal prefix and suffix and the words derived from
// them.
func (p *pattern) setLiterals(prefix, suffix string) {
	p.prefix, p.suffix = prefix, suffix
	p.minLen = max(len(prefix), len(suffix))
	var buf [8]byte
	k := copy(buf[:], prefix)
	p.preMask = 1<<(8*k) - 1 // all ones for k == 8: the shift gives 0
	p.preWord = binary.LittleEndian.Uint64(buf[:]) & p.preMask
	buf = [8]byte{}
	k = min(len(suffix), 8)
	copy(buf[8-k:], suffix[len(suffix)-k:])
	p.sufMask = ^uint64(0) << (8 * (8 - k)) // 0 for k == 0
	p.sufWord = binary.LittleEndian.Uint64(buf[:]) & p.sufMask
}

// mayMatch reports whether s could match as far as the literals tell.
func (p *pattern) mayMatch(s string) bool {
	n := len(s)
	if n < p.minLen {
		return false
	}
	if n >= 8 && (word(s, 0)&p.preMask != p.preWord || word(s, n-8)&p.sufMask != p.sufWord) {
		return false
	}
	return s[:len(p.prefix)] == p.prefix && s[n-len(p.suffix):] == p.suffix
}

// compilePattern compiles src anchored as ^(?:src)$, case-insensitive when
// fold is set (hosts).
func compilePattern(src string, fold bool) (*pattern, error) {
	// Parse src on its own first: a pattern with unbalanced parentheses
	// such as "a)|(b" would otherwise escape the anchoring group.
	if _, err := syntax.Parse(src, syntax.Perl); err != nil {
		return nil, err
	}
	full := "^(?:" + src + ")$"
	if fold {
		full = "(?i)" + full
	}
	re, err := regexp.Compile(full)
	if err != nil {
		return nil, err
	}
	tree, err := syntax.Parse(full, syntax.Perl)
	if err != nil {
		return nil, err
	}
	p := &pattern{src: src, re: re}
	prefix, _ := literalPrefix(tree, fold)
	suffix, _ := literalSuffix(tree, fold)
	p.setLiterals(prefix, suffix)
	return p, nil
}

// matchPath reports whether the normalised path p matches.
func (p *pattern) matchPath(path string) bool {
	return p.mayMatch(path) && p.re.MatchString(path)
}

// matchHost reports whether the host matches. lh is host lower-cased (ASCII
// only) and ascii says whether host is all ASCII.
func (p *pattern) matchHost(lh []byte, ascii bool, host string) bool {
	return p.mayMatchHost(lh, ascii) && p.re.MatchString(host)
}

// mayMatchHost is the literal pre-check of matchHost, small enough to be
// inlined into the match loop. It is only sound for ASCII hosts, because
// case folding in the regex engine maps some non-ASCII runes to ASCII
// letters (KELVIN SIGN to "k").
func (p *pattern) mayMatchHost(lh []byte, ascii bool) bool {
	return !ascii || p.mayMatch(bytesString(lh))
}

// literalPrefix returns literal text every match of re starts with, and
// whether re is exactly that text (so a following node continues it).
// Zero-width assertions consume nothing and are skipped. Case-folded
// literals are used (lower-cased) only in fold mode, where the input is
// compared lower-cased; otherwise they end the literal.
func literalPrefix(re *syntax.Regexp, fold bool) (string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return literalText(re, fold, false)
	case syntax.OpEmptyMatch, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpBeginLine, syntax.OpEndLine:
		return "", true
	case syntax.OpCapture:
		return literalPrefix(re.Sub[0], fold)
	case syntax.OpConcat:
		var b strings.Builder
		for _, sub := range re.Sub {
			s, complete := literalPrefix(sub, fold)
			b.WriteString(s)
			if !complete {
				return b.String(), false
			}
		}
		return b.String(), true
	}
	return "", false
}

// literalSuffix is literalPrefix from the end.
func literalSuffix(re *syntax.Regexp, fold bool) (string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return literalText(re, fold, true)
	case syntax.OpEmptyMatch, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpBeginLine, syntax.OpEndLine:
		return "", true
	case syntax.OpCapture:
		return literalSuffix(re.Sub[0], fold)
	case syntax.OpConcat:
		suffix := ""
		for i := len(re.Sub) - 1; i >= 0; i-- {
			s, complete := literalSuffix(re.Sub[i], fold)
			suffix = s + suffix
			if !complete {
				return suffix, false
			}
		}
		return suffix, true
	}
	return "", false
}

// literalText returns the usable text of a literal node: all of it, or the
// longest ASCII run at the start (or, fromEnd, at the end) when it contains
// runes that cannot be compared byte by byte.
func literalText(re *syntax.Regexp, fold, fromEnd bool) (string, bool) {
	foldCase := re.Flags&syntax.FoldCase != 0
	if foldCase && !fold {
		return "", false
	}
	// The engine matches an invalid input byte as utf8.RuneError, so a
	// literal RuneError says nothing about the input's bytes.
	usable := func(r rune) bool { return r != utf8.RuneError && (!fold || r < 0x80) }
	runes := re.Rune
	n := 0
	if fromEnd {
		for n < len(runes) && usable(runes[len(runes)-1-n]) {
			n++
		}
		runes = runes[len(runes)-n:]
	} else {
		for n < len(runes) && usable(runes[n]) {
			n++
		}
		runes = runes[:n]
	}
	s := string(runes)
	if fold {
		s = strings.ToLower(s)
	}
	return s, n == len(re.Rune)
}
