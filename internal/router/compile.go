package router

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/keelproxy/keel/internal/httpwire"
)

// Table is a compiled set of rules. Build it with Compile; it never changes
// afterwards, so any number of goroutines may call its methods at once. A
// nil or zero Table has no rules: every request is NotFound.
type Table[V any] struct {
	rules []Rule[V] // copies of the caller's rules, in config order
	matcher
}

// matcher is the part of a Table that does not depend on the value type.
// The search runs on it, not on Table[V], so its methods are compiled once
// as plain functions (inlined where small) instead of through a generic
// shape dictionary: measurably cheaper on the per-request path.
type matcher struct {
	meta  []ruleMatch    // compiled matchers, parallel to rules
	exact frozen[*group] // lower-case host -> group
	wild  frozen[*group] // lower-case ".suffix" -> group
	// exactLens and wildLens hold the key lengths of exact and wild, so
	// that Match skips lookups that cannot hit: lookups are the costliest
	// step of Match.
	exactLens, wildLens lengths
	regex               []hostGroup // in config order of each pattern's first rule
	any                 *group      // rules without a host; nil when there are none
}

// lengths is a set of key lengths, kept to skip lookups that cannot hit
// and to find the candidate keys of a suffix or prefix search without
// scanning for separators. Lengths below 64 are recorded exactly; longer
// ones only as "some key is 64 bytes or longer" (long).
type lengths struct {
	short uint64 // bit n: some key is n bytes long
	long  bool
}

func (l *lengths) add(n int) {
	if n < 64 {
		l.short |= 1 << n
	} else {
		l.long = true
	}
}

func (l *lengths) has(n int) bool {
	if n >= 64 {
		return l.long
	}
	return l.short&(1<<n) != 0
}

// upTo returns the recorded lengths below 64 that are at most n.
func (l *lengths) upTo(n int) uint64 {
	if n >= 63 {
		return l.short
	}
	return l.short & (1<<(n+1) - 1)
}

// hostGroup is the group of rules sharing one host regex.
type hostGroup struct {
	pat *pattern
	g   *group
}

// group indexes the rules of one host by path. Every bucket lists rule
// indexes by descending constraint count, then config order, so the first
// rule in a bucket that matches is the winner within that bucket.
type group struct {
	exact  frozen[[]int32] // normalised path -> rules
	prefix frozen[[]int32] // prefix key (no trailing slash, "" for "/") -> rules
	// exactLens and prefixLens hold the key lengths of exact and prefix,
	// and prefixMax the longest prefix key, to skip lookups that cannot
	// hit.
	exactLens, prefixLens lengths
	prefixMax             int
	regex                 []pathBucket // in config order of each pattern's first rule
	none                  []int32      // rules without a path matcher

	// building holds the path indexes while Compile fills them; index
	// freezes them into exact and prefix and drops it.
	building *groupBuilder
}

// groupBuilder is the mutable form of a group's path indexes.
type groupBuilder struct {
	exact, prefix map[string][]int32
}

// pathBucket is the rules of one group sharing one path regex.
type pathBucket struct {
	pat *pattern
	ids []int32
}

// pathKind is how a rule matches the path. The order is the precedence.
type pathKind uint8

const (
	pathExact pathKind = iota + 1
	pathPrefix
	pathRegex
	pathAny
)

// ruleMatch is one rule compiled.
type ruleMatch struct {
	hostKind hostKind
	hostKey  string   // see classifyHost
	hostPat  *pattern // hostRegex only
	// hostOrder ranks regex host groups: the position of the rule's group
	// in Table.regex.
	hostOrder int

	pathKind pathKind
	pathKey  string   // normalised path, or prefix key
	pathSrc  string   // the path matcher as configured, for Explain
	pathPat  *pattern // pathRegex only
	// pathOrder ranks path regex buckets within a host group: the
	// position of the rule's bucket in group.regex.
	pathOrder int

	methods     []string
	headers     []pair // canonical names, sorted
	query       []pair // sorted by key
	constraints int
}

// pair is one required header or query entry.
type pair struct{ name, value string }

// RuleError is a problem with one rule, reported by Compile. Compile
// returns every problem it finds, joined with errors.Join; use errors.As or
// the Unwrap() []error method of the joined error to reach each RuleError.
type RuleError struct {
	// Index is the rule's position in the slice given to Compile.
	Index int
	// ID is the rule's ID, possibly "".
	ID string
	// Field is the name of the Rule field at fault, such as "PathRegex".
	Field string
	// Err says what is wrong.
	Err error
}

// Error returns the message, naming the rule by index and ID.
func (e *RuleError) Error() string {
	return fmt.Sprintf("rule %d (id %q): %s: %v", e.Index, e.ID, e.Field, e.Err)
}

// Unwrap returns e.Err.
func (e *RuleError) Unwrap() error { return e.Err }

// Compile validates rules and builds a Table from them; the order of rules
// is the config order that breaks ties. On error it returns a nil Table and
// one *RuleError per problem, joined. Compile does not keep rules or
// anything reachable from them except Value.
func Compile[V any](rules []Rule[V]) (*Table[V], error) {
	t := &Table[V]{
		rules:   make([]Rule[V], len(rules)),
		matcher: matcher{meta: make([]ruleMatch, len(rules))},
	}
	c := compiler{
		ids:      make(map[string]int),
		hostPats: make(map[string]*pattern),
		pathPats: make(map[string]*pattern),
	}
	var errs []error
	for i := range rules {
		m, err := compileRule(&c, i, &rules[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.rules[i] = copyRule(&rules[i])
		t.meta[i] = m
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t.index()
	return t, nil
}

// Len returns the number of rules in t.
func (t *Table[V]) Len() int {
	if t == nil {
		return 0
	}
	return len(t.rules)
}

// compiler holds what Compile shares between rules.
type compiler struct {
	ids      map[string]int // rule ID -> index, to refuse duplicates
	hostPats map[string]*pattern
	pathPats map[string]*pattern
}

// compileRule compiles one rule, or returns a *RuleError. It is a function
// rather than a method because methods cannot have type parameters.
func compileRule[V any](c *compiler, i int, r *Rule[V]) (ruleMatch, error) {
	fail := func(field string, err error) (ruleMatch, error) {
		return ruleMatch{}, &RuleError{Index: i, ID: r.ID, Field: field, Err: err}
	}
	if r.ID != "" {
		if j, dup := c.ids[r.ID]; dup {
			return fail("ID", fmt.Errorf("duplicate of rule %d", j))
		}
		c.ids[r.ID] = i
	}
	var m ruleMatch
	var err error
	m.hostKind, m.hostKey, err = classifyHost(r.Host)
	if err != nil {
		return fail("Host", err)
	}
	if m.hostKind == hostRegex {
		if m.hostPat, err = c.pattern(c.hostPats, r.Host, true); err != nil {
			return fail("Host", err)
		}
	}
	if field, err := c.path(&m, r.Path, r.PathPrefix, r.PathRegex); err != nil {
		return fail(field, err)
	}
	if m.methods, err = methods(r.Methods); err != nil {
		return fail("Methods", err)
	}
	if m.headers, err = headers(r.Headers); err != nil {
		return fail("Headers", err)
	}
	if m.query, err = query(r.Query); err != nil {
		return fail("Query", err)
	}
	m.constraints = len(m.headers) + len(m.query)
	if len(m.methods) > 0 {
		m.constraints++
	}
	return m, nil
}

// path fills in the path matcher of m and on error returns the name of the
// field at fault.
func (c *compiler) path(m *ruleMatch, exact, prefix, regex string) (string, error) {
	set := 0
	for _, s := range []string{exact, prefix, regex} {
		if s != "" {
			set++
		}
	}
	switch {
	case set > 1:
		return "Path", errors.New("set at most one of Path, PathPrefix and PathRegex")
	case exact != "":
		if exact[0] != '/' {
			return "Path", fmt.Errorf("%q does not start with \"/\"", exact)
		}
		m.pathKind, m.pathKey = pathExact, Normalize(exact)
	case prefix != "":
		if prefix[0] != '/' {
			return "PathPrefix", fmt.Errorf("%q does not start with \"/\"", prefix)
		}
		// The key drops the trailing slash, so "/api" and "/api/" are
		// the same prefix, and "/" becomes "" (see Table.prefixMatch).
		m.pathKind, m.pathKey = pathPrefix, strings.TrimSuffix(Normalize(prefix), "/")
		m.pathSrc = prefix
	case regex != "":
		p, err := c.pattern(c.pathPats, regex, false)
		if err != nil {
			return "PathRegex", err
		}
		m.pathKind, m.pathKey, m.pathPat = pathRegex, regex, p
	default:
		m.pathKind = pathAny
	}
	return "", nil
}

// pattern returns the compiled pattern for src from cache, compiling it on
// first use so that rules sharing a regex share one *regexp.Regexp.
func (c *compiler) pattern(cache map[string]*pattern, src string, fold bool) (*pattern, error) {
	if p, ok := cache[src]; ok {
		return p, nil
	}
	p, err := compilePattern(src, fold)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", src, err)
	}
	cache[src] = p
	return p, nil
}

// methods validates and deduplicates a methods list.
func methods(in []string) ([]string, error) {
	var out []string
	for _, m := range in {
		if !httpwire.ValidToken(m) {
			return nil, fmt.Errorf("%q is not a method token", m)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// headers canonicalises header names; two names that canonicalise alike
// are an error because only one value could win.
func headers(in map[string]string) ([]pair, error) {
	if len(in) == 0 {
		// Most rules have no header condition; skip the sort machinery.
		return nil, nil
	}
	out := make([]pair, 0, len(in))
	for _, name := range slices.Sorted(maps.Keys(in)) {
		if !httpwire.ValidToken(name) {
			return nil, fmt.Errorf("%q is not a header name", name)
		}
		out = append(out, pair{http.CanonicalHeaderKey(name), in[name]})
	}
	slices.SortStableFunc(out, func(a, b pair) int { return cmp.Compare(a.name, b.name) })
	for i := 1; i < len(out); i++ {
		if out[i].name == out[i-1].name {
			return nil, fmt.Errorf("header %q given twice (names are case-insensitive)", out[i].name)
		}
	}
	return out, nil
}

// query validates query keys.
func query(in map[string]string) ([]pair, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]pair, 0, len(in))
	for _, key := range slices.Sorted(maps.Keys(in)) {
		if key == "" {
			return nil, errors.New("empty query key")
		}
		out = append(out, pair{key, in[key]})
	}
	return out, nil
}

// copyRule copies r deeply enough that the caller's later changes to its
// slices and maps cannot reach the table.
func copyRule[V any](r *Rule[V]) Rule[V] {
	c := *r
	c.Methods = slices.Clone(r.Methods)
	c.Headers = maps.Clone(r.Headers)
	c.Query = maps.Clone(r.Query)
	return c
}

// index builds the host and path indexes from t.meta.
func (t *Table[V]) index() {
	b := indexBuilder{
		exact:      make(map[string]*group),
		wild:       make(map[string]*group),
		regexIndex: make(map[string]int),
	}
	for i := range t.meta {
		m := &t.meta[i]
		b.groupOf(&t.matcher, m).add(int32(i), m)
	}
	// Sort every bucket, then freeze the indexes. Buckets were filled in
	// config order and the sort is stable, so config order breaks the
	// remaining ties.
	byConstraints := func(a, b int32) int {
		return cmp.Compare(t.meta[b].constraints, t.meta[a].constraints)
	}
	finish := func(g *group) {
		if gb := g.building; gb != nil {
			for _, ids := range gb.exact {
				slices.SortStableFunc(ids, byConstraints)
			}
			for _, ids := range gb.prefix {
				slices.SortStableFunc(ids, byConstraints)
			}
			g.exact, g.prefix, g.building = freeze(gb.exact), freeze(gb.prefix), nil
		}
		for _, pb := range g.regex {
			slices.SortStableFunc(pb.ids, byConstraints)
		}
		slices.SortStableFunc(g.none, byConstraints)
	}
	for _, g := range b.exact {
		finish(g)
	}
	for _, g := range b.wild {
		finish(g)
	}
	for _, hg := range t.regex {
		finish(hg.g)
	}
	if t.any != nil {
		finish(t.any)
	}
	t.exact, t.wild = freeze(b.exact), freeze(b.wild)
}

// indexBuilder holds the host indexes while index fills them.
type indexBuilder struct {
	exact, wild map[string]*group
	regexIndex  map[string]int // host pattern -> position in matcher.regex
}

// groupOf returns the host group of m, creating it on first use, and sets
// m.hostOrder.
func (b *indexBuilder) groupOf(t *matcher, m *ruleMatch) *group {
	switch m.hostKind {
	case hostExact:
		t.exactLens.add(len(m.hostKey))
		return groupIn(b.exact, m.hostKey)
	case hostWildcard:
		t.wildLens.add(len(m.hostKey))
		return groupIn(b.wild, m.hostKey)
	case hostRegex:
		j, ok := b.regexIndex[m.hostKey]
		if !ok {
			j = len(t.regex)
			b.regexIndex[m.hostKey] = j
			t.regex = append(t.regex, hostGroup{pat: m.hostPat, g: &group{}})
		}
		m.hostOrder = j
		return t.regex[j].g
	}
	if t.any == nil {
		t.any = &group{}
	}
	return t.any
}

func groupIn(m map[string]*group, key string) *group {
	g, ok := m[key]
	if !ok {
		g = &group{}
		m[key] = g
	}
	return g
}

// add puts rule id into the bucket of its path matcher and sets
// m.pathOrder.
func (g *group) add(id int32, m *ruleMatch) {
	if g.building == nil && (m.pathKind == pathExact || m.pathKind == pathPrefix) {
		g.building = &groupBuilder{}
	}
	switch m.pathKind {
	case pathExact:
		g.building.exact = addTo(g.building.exact, m.pathKey, id)
		g.exactLens.add(len(m.pathKey))
	case pathPrefix:
		g.building.prefix = addTo(g.building.prefix, m.pathKey, id)
		g.prefixLens.add(len(m.pathKey))
		g.prefixMax = max(g.prefixMax, len(m.pathKey))
	case pathRegex:
		// Rules with the same regex share one *pattern (compiler.pattern).
		j := slices.IndexFunc(g.regex, func(b pathBucket) bool { return b.pat == m.pathPat })
		if j < 0 {
			j = len(g.regex)
			g.regex = append(g.regex, pathBucket{pat: m.pathPat})
		}
		g.regex[j].ids = append(g.regex[j].ids, id)
		m.pathOrder = j
	default:
		g.none = append(g.none, id)
	}
}

func addTo(m map[string][]int32, key string, id int32) map[string][]int32 {
	if m == nil {
		m = make(map[string][]int32)
	}
	m[key] = append(m[key], id)
	return m
}
