package router

import (
	"math/bits"
	"net/http"
	"strings"
	"unsafe"
)

// request is one request as the matcher sees it.
type request struct {
	host   string // hostname(): no port, original case
	method string
	path   string // normalised
	query  string // raw
	header http.Header
	// methodMiss records that some rule matched everything but the
	// method, which turns a miss into MethodNotAllowed.
	methodMiss bool
}

// Match returns the rule that wins for a request, per the precedence in the
// package documentation. host is the Host header or :authority, with or
// without a port, in any case; method is the request method; path is the
// escaped request path (r.URL.EscapedPath()); rawQuery is r.URL.RawQuery;
// h holds the request headers with canonical names (as net/http provides
// them) and may be nil.
//
// Match does not allocate when the host has at most 256 bytes and the path
// is already normal, except to build Allow for MethodNotAllowed. It is safe
// for concurrent use; a nil Table returns NotFound.
func (t *Table[V]) Match(host, method, path, rawQuery string, h http.Header) Result[V] {
	if t == nil {
		return Result[V]{Status: NotFound}
	}
	req := request{
		host:   hostname(host),
		method: method,
		path:   Normalize(path),
		query:  rawQuery,
		header: h,
	}
	var lh []byte
	var ascii bool
	if isLowerASCII(req.host) {
		// The common case: the host is already lower-case ASCII, so the
		// lookups can read it in place. find only reads lh.
		lh, ascii = unsafe.Slice(unsafe.StringData(req.host), len(req.host)), true
	} else if len(req.host) <= 256 {
		// Map lookups index with string(lh[...]), which Go does not
		// allocate for, so the lower-cased host lives in this stack buffer.
		var buf [256]byte
		lh, ascii = lowerASCII(buf[:0], req.host)
	} else {
		lh, ascii = lowerASCII(nil, req.host)
	}
	id, prefix := t.find(lh, ascii, &req)
	switch {
	case id >= 0:
		return Result[V]{Status: Matched, Rule: &t.rules[id], MatchedPrefix: prefix}
	case req.methodMiss:
		return Result[V]{Status: MethodNotAllowed, Allow: t.allow(&req)}
	}
	return Result[V]{Status: NotFound}
}

// find searches the host groups in precedence order and returns the
// winning rule's index, or -1, and the matched prefix.
func (t *matcher) find(lh []byte, ascii bool, req *request) (int, string) {
	if t.exactLens.has(len(lh)) {
		if g := t.exact.get(bytesString(lh)); g != nil {
			if id, prefix := t.matchGroup(g, req); id >= 0 {
				return id, prefix
			}
		}
	}
	// Wildcard keys start at a dot that has at least one byte before it:
	// "*.example.com" is keyed ".example.com" and must not match
	// "example.com". The longest suffix wins.
	if t.wild.len() > 0 {
		if id, prefix := t.matchWild(lh, req); id >= 0 {
			return id, prefix
		}
	}
	for _, hg := range t.regex {
		if !hg.pat.mayMatchHost(lh, ascii) || !hg.pat.re.MatchString(req.host) {
			continue
		}
		if id, prefix := t.matchGroup(hg.g, req); id >= 0 {
			return id, prefix
		}
	}
	if t.any != nil {
		return t.matchGroup(t.any, req)
	}
	return -1, ""
}

// matchGroup searches one host group: exact path, longest prefix, path
// regexes, then rules without a path matcher.
func (t *matcher) matchGroup(g *group, req *request) (int, string) {
	if g.exactLens.has(len(req.path)) {
		if id := t.first(g.exact.get(req.path), req); id >= 0 {
			return id, ""
		}
	}
	if g.prefix.len() > 0 {
		if id, prefix := t.prefixMatch(g, req); id >= 0 {
			return id, prefix
		}
	}
	for _, b := range g.regex {
		if !b.pat.matchPath(req.path) {
			continue
		}
		if id := t.first(b.ids, req); id >= 0 {
			return id, ""
		}
	}
	return t.first(g.none, req), ""
}

// matchWild searches the wildcard host groups whose suffix lh ends with,
// longest first. It tries only the suffix lengths some key has (where lh
// has a dot), so a host that no wildcard can match costs a few bit tests.
func (t *matcher) matchWild(lh []byte, req *request) (int, string) {
	if t.wildLens.long && len(lh) > 64 {
		for i := 1; i < len(lh)-63; i++ {
			if lh[i] == '.' {
				if id, prefix := t.matchWildAt(lh, i, req); id >= 0 {
					return id, prefix
				}
			}
		}
	}
	// A key is shorter than lh, so that a label precedes its dot.
	for cand := t.wildLens.upTo(len(lh) - 1); cand != 0; {
		n := bits.Len64(cand) - 1
		cand &^= 1 << n
		if lh[len(lh)-n] == '.' {
			if id, prefix := t.matchWildAt(lh, len(lh)-n, req); id >= 0 {
				return id, prefix
			}
		}
	}
	return -1, ""
}

// matchWildAt searches the wildcard group keyed by lh[i:], if any.
func (t *matcher) matchWildAt(lh []byte, i int, req *request) (int, string) {
	if g := t.wild.get(bytesString(lh[i:])); g != nil {
		return t.matchGroup(g, req)
	}
	return -1, ""
}

// prefixMatch looks the path up at each segment boundary, longest first:
// for "/a/b" the keys "/a/b", "/a" and "" (the prefix "/"). Keys never end
// in "/", so a trailing slash of the path is looked up without it. It
// tries only the key lengths some prefix has, so a path costs one lookup
// per prefix length that falls on one of its segment boundaries.
func (t *matcher) prefixMatch(g *group, req *request) (int, string) {
	p := req.path
	if g.prefixLens.long && len(p) >= 64 {
		// Keys of 64 bytes and more are not in the bit set: walk the
		// segment boundaries down to 64.
		i := len(p)
		if p[i-1] == '/' {
			i--
		}
		if i > g.prefixMax {
			i = strings.LastIndexByte(p[:g.prefixMax+1], '/')
		}
		for ; i >= 64; i = strings.LastIndexByte(p[:i], '/') {
			if id := t.first(g.prefix.get(p[:i]), req); id >= 0 {
				return id, p[:i]
			}
		}
	}
	for cand := g.prefixLens.upTo(len(p)); cand != 0; {
		i := bits.Len64(cand) - 1
		cand &^= 1 << i
		// p[:i] is a whole-segment prefix when the next byte is a
		// slash or the end. A key never ends in "/", so a path with a
		// trailing slash is found at the length before it.
		if i < len(p) && p[i] != '/' {
			continue
		}
		if id := t.first(g.prefix.get(p[:i]), req); id >= 0 {
			if i == 0 {
				return id, "/"
			}
			return id, p[:i]
		}
	}
	return -1, ""
}

// first returns the first rule of ids whose constraints the request meets,
// or -1, noting in req a rule that failed only on the method.
func (t *matcher) first(ids []int32, req *request) int {
	for _, id := range ids {
		m := &t.meta[id]
		if !headersMatch(m.headers, req.header) || !queryMatch(m.query, req.query) {
			continue
		}
		if methodMatch(m.methods, req.method) {
			return int(id)
		}
		req.methodMiss = true
	}
	return -1
}

func methodMatch(methods []string, method string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, m := range methods {
		if m == method {
			return true
		}
	}
	return false
}

// headersMatch compares the first value of each header, like h.Get, but
// without canonicalising the name per request: the names were canonicalised
// at compile time.
func headersMatch(want []pair, h http.Header) bool {
	for _, p := range want {
		vs := h[p.name]
		if len(vs) == 0 || vs[0] != p.value {
			return false
		}
	}
	return true
}

func queryMatch(want []pair, rawQuery string) bool {
	for _, p := range want {
		enc, ok := queryGet(rawQuery, p.name)
		if !ok || !unescapedEqual(enc, p.value) {
			return false
		}
	}
	return true
}

// queryGet returns the still-encoded value of the first pair of rawQuery
// whose decoded key is key, skipping the pairs url.ParseQuery skips (those
// containing ";" and those with malformed escapes), so that it agrees with
// url.ParseQuery(rawQuery).Get(key) without building the map.
func queryGet(rawQuery, key string) (string, bool) {
	for rawQuery != "" {
		var kv string
		kv, rawQuery, _ = strings.Cut(rawQuery, "&")
		if kv == "" || strings.IndexByte(kv, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if !unescapedEqual(k, key) || !validEscapes(v) {
			continue
		}
		return v, true
	}
	return "", false
}

// unescapedEqual reports whether the query component enc decodes (as
// url.QueryUnescape does: "+" is a space) to want. A malformed enc is equal
// to nothing.
func unescapedEqual(enc, want string) bool {
	if strings.IndexByte(enc, '%') < 0 && strings.IndexByte(enc, '+') < 0 {
		return enc == want
	}
	j := 0
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch c {
		case '%':
			if i+2 >= len(enc) || !isHex(enc[i+1]) || !isHex(enc[i+2]) {
				return false
			}
			c = unhex(enc[i+1])<<4 | unhex(enc[i+2])
			i += 2
		case '+':
			c = ' '
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// validEscapes reports whether every "%" in s starts a two-digit escape.
func validEscapes(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; i = strings.IndexByte(s, '%') {
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		s = s[i+3:]
	}
	return true
}

// bytesString returns b as a string without copying. The lookups that use
// it only compare the string and do not keep it, so the bytes (the
// lower-cased host, possibly in a stack buffer) need to live only as long
// as the call.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
