package router

import (
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
	p.prefix, _ = literalPrefix(tree, fold)
	p.suffix, _ = literalSuffix(tree, fold)
	return p, nil
}

// matchPath reports whether the normalised path p matches.
func (p *pattern) matchPath(path string) bool {
	if !strings.HasPrefix(path, p.prefix) || !strings.HasSuffix(path, p.suffix) {
		return false
	}
	return p.re.MatchString(path)
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
	if !ascii {
		return true
	}
	return len(lh) >= len(p.prefix) && len(lh) >= len(p.suffix) &&
		string(lh[:len(p.prefix)]) == p.prefix && string(lh[len(lh)-len(p.suffix):]) == p.suffix
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
