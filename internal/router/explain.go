package router

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// verdict is how one rule relates to one request.
type verdict uint8

const (
	verdictMatch  verdict = iota + 1 // every criterion met
	verdictMethod                    // everything but the method met
	verdictReject                    // some other criterion not met
)

// evaluation is one rule judged on its own against a request, the slow and
// obvious way: Explain and the Allow list use it, and tests check Match
// against it.
type evaluation struct {
	id      int
	hostOK  bool
	verdict verdict
	reason  string // why not, for rejected rules
	rank    rank
}

// rank orders the rules whose host matches a request; lower wins. Its
// fields follow the precedence of the package documentation.
type rank struct {
	host, hostSub, path, pathSub, constraints, index int
}

func (a rank) compare(b rank) int {
	return cmp.Or(
		cmp.Compare(a.host, b.host),
		cmp.Compare(a.hostSub, b.hostSub),
		cmp.Compare(a.path, b.path),
		cmp.Compare(a.pathSub, b.pathSub),
		cmp.Compare(a.constraints, b.constraints),
		cmp.Compare(a.index, b.index),
	)
}

// evaluate judges every rule against the request and returns them in
// precedence order: rules whose host matches first, ranked, then the others
// in config order.
func (t *Table[V]) evaluate(req *request) []evaluation {
	lh := lower(req.host)
	evs := make([]evaluation, len(t.meta))
	for i := range t.meta {
		evs[i] = t.meta[i].evaluate(i, lh, req)
	}
	slices.SortStableFunc(evs, func(a, b evaluation) int {
		switch {
		case a.hostOK && b.hostOK:
			return a.rank.compare(b.rank)
		case a.hostOK:
			return -1
		case b.hostOK:
			return 1
		}
		return cmp.Compare(a.id, b.id)
	})
	return evs
}

// evaluate judges rule m, at index i, against the request; lh is the
// lower-cased request host.
func (m *ruleMatch) evaluate(i int, lh string, req *request) evaluation {
	ev := evaluation{id: i, verdict: verdictReject}
	ev.rank = rank{host: int(m.hostKind), path: int(m.pathKind), constraints: -m.constraints, index: i}
	switch m.hostKind {
	case hostWildcard:
		ev.rank.hostSub = -len(m.hostKey)
	case hostRegex:
		ev.rank.hostSub = m.hostOrder
	}
	switch m.pathKind {
	case pathPrefix:
		ev.rank.pathSub = -len(m.pathKey)
	case pathRegex:
		ev.rank.pathSub = m.pathOrder
	}
	if ev.hostOK = m.hostMatches(lh, req.host); !ev.hostOK {
		ev.reason = fmt.Sprintf("host %q does not match %s", req.host, m.describeHost())
		return ev
	}
	if !m.pathMatches(req.path) {
		ev.reason = fmt.Sprintf("path %q does not match %s", req.path, m.describePath())
		return ev
	}
	// Values are not echoed: header values can be credentials.
	for _, p := range m.headers {
		if vs := req.header[p.name]; len(vs) == 0 || vs[0] != p.value {
			ev.reason = fmt.Sprintf("header %q is missing or has another value", p.name)
			return ev
		}
	}
	for _, p := range m.query {
		if enc, ok := queryGet(req.query, p.name); !ok || !unescapedEqual(enc, p.value) {
			ev.reason = fmt.Sprintf("query parameter %q is missing or has another value", p.name)
			return ev
		}
	}
	if !slices.Contains(m.methods, req.method) && len(m.methods) > 0 {
		ev.verdict = verdictMethod
		ev.reason = fmt.Sprintf("method %q is not one of %s", req.method, strings.Join(m.methods, ", "))
		return ev
	}
	ev.verdict = verdictMatch
	return ev
}

// hostMatches is the plain definition of a host match; lh is host
// lower-cased.
func (m *ruleMatch) hostMatches(lh, host string) bool {
	switch m.hostKind {
	case hostExact:
		return lh == m.hostKey
	case hostWildcard:
		return len(lh) > len(m.hostKey) && strings.HasSuffix(lh, m.hostKey)
	case hostRegex:
		return m.hostPat.re.MatchString(host)
	}
	return true
}

// pathMatches is the plain definition of a path match on the normalised
// path.
func (m *ruleMatch) pathMatches(path string) bool {
	switch m.pathKind {
	case pathExact:
		return path == m.pathKey
	case pathPrefix:
		return strings.HasPrefix(path, m.pathKey) &&
			(len(path) == len(m.pathKey) || path[len(m.pathKey)] == '/')
	case pathRegex:
		return m.pathPat.re.MatchString(path)
	}
	return true
}

// allow returns the Allow header value for a MethodNotAllowed result: the
// methods of every rule that failed only on the method. It runs only on
// that rare path, so it may allocate.
func (t *Table[V]) allow(req *request) string {
	var methods []string
	for _, ev := range t.evaluate(req) {
		if ev.verdict == verdictMethod {
			methods = append(methods, t.meta[ev.id].methods...)
		}
	}
	slices.Sort(methods)
	return strings.Join(slices.Compact(methods), ", ")
}

// Explain returns the result of Match for the request together with every
// rule of the table, for the admin "routes/match" endpoint: first the rules
// whose host matches, in precedence order, each "matched" (the winner),
// "lost" (it matched but ranks below the winner) or "rejected" (with the
// first criterion it fails), then the rules whose host does not match, in
// config order, all "rejected". It allocates freely and is safe for
// concurrent use; the returned slice belongs to the caller.
func (t *Table[V]) Explain(host, method, path, rawQuery string, h http.Header) (Result[V], []Candidate) {
	res := t.Match(host, method, path, rawQuery, h)
	if t == nil {
		return res, nil
	}
	req := request{host: hostname(host), method: method, path: Normalize(path), query: rawQuery, header: h}
	evs := t.evaluate(&req)
	winner := -1
	if res.Rule != nil {
		winner = t.indexOf(res.Rule)
	}
	var win *evaluation
	for i := range evs {
		if evs[i].id == winner {
			win = &evs[i]
		}
	}
	out := make([]Candidate, len(evs))
	for i, ev := range evs {
		c := Candidate{ID: t.rules[ev.id].ID, Result: candidateRejected, Reason: ev.reason}
		switch {
		case ev.id == winner:
			c.Result, c.Reason = candidateMatched, t.meta[ev.id].describeWin()
		case ev.verdict == verdictMatch && win != nil:
			c.Result, c.Reason = candidateLost, t.lostReason(ev, *win)
		}
		out[i] = c
	}
	return res, out
}

// indexOf returns the index of r, which points into t.rules.
func (t *Table[V]) indexOf(r *Rule[V]) int {
	for i := range t.rules {
		if &t.rules[i] == r {
			return i
		}
	}
	return -1
}

// lostReason says why a matching rule ranks below the winner, naming the
// first precedence step where they differ.
func (t *Table[V]) lostReason(loser, win evaluation) string {
	l, w := &t.meta[loser.id], &t.meta[win.id]
	var why string
	switch {
	case l.hostKind != w.hostKind:
		why = fmt.Sprintf("%s ranks before %s", w.describeHost(), l.describeHost())
	case loser.rank.hostSub != win.rank.hostSub && l.hostKind == hostWildcard:
		why = fmt.Sprintf("%s is a longer suffix than %s", w.describeHost(), l.describeHost())
	case loser.rank.hostSub != win.rank.hostSub:
		why = fmt.Sprintf("%s comes first in config", w.describeHost())
	case l.pathKind != w.pathKind:
		why = fmt.Sprintf("%s ranks before %s", w.describePath(), l.describePath())
	case loser.rank.pathSub != win.rank.pathSub && l.pathKind == pathPrefix:
		why = fmt.Sprintf("%s is longer than %s", w.describePath(), l.describePath())
	case loser.rank.pathSub != win.rank.pathSub:
		why = fmt.Sprintf("%s comes first in config", w.describePath())
	case l.constraints != w.constraints:
		why = fmt.Sprintf("it has more constraints (%d > %d)", w.constraints, l.constraints)
	default:
		why = "it comes first in config"
	}
	return fmt.Sprintf("shadowed by %q: %s", t.rules[win.id].ID, why)
}

func (m *ruleMatch) describeHost() string {
	switch m.hostKind {
	case hostExact:
		return fmt.Sprintf("exact host %q", m.hostKey)
	case hostWildcard:
		return fmt.Sprintf("wildcard host %q", "*"+m.hostKey)
	case hostRegex:
		return fmt.Sprintf("host regex %q", m.hostKey)
	}
	return "any host"
}

func (m *ruleMatch) describePath() string {
	switch m.pathKind {
	case pathExact:
		return fmt.Sprintf("exact path %q", m.pathKey)
	case pathPrefix:
		return fmt.Sprintf("path prefix %q", m.pathSrc)
	case pathRegex:
		return fmt.Sprintf("path regex %q", m.pathKey)
	}
	return "any path"
}

func (m *ruleMatch) describeWin() string {
	return fmt.Sprintf("%s, %s, %d constraints", m.describeHost(), m.describePath(), m.constraints)
}
