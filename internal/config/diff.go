package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Change operations, the values of Change.Op.
const (
	// OpAdd is a member, list element or value present only in the new
	// config; Change.After holds it.
	OpAdd = "add"
	// OpRemove is one present only in the old config; Change.Before holds
	// it.
	OpRemove = "remove"
	// OpChange is a value that differs; Change.Before and Change.After hold
	// both sides.
	OpChange = "change"
)

// Change is one difference between two configs, as the admin API's
// POST /api/v2/config/diff answers it (SPEC section 8).
//
// Before and After are JSON values in the form encoding/json decodes with
// UseNumber: map[string]any, []any, string, json.Number, bool. Nil means
// "absent on that side": Before is nil for OpAdd, After is nil for
// OpRemove. The values belong to the Change; nothing else refers to them.
type Change struct {
	// Op is OpAdd, OpRemove or OpChange.
	Op string `json:"op"`
	// Path names what changed with the config's own key names, list
	// elements by identity: "routes[api].pool",
	// "pools[backend].endpoints[127.0.0.1:9001].weight",
	// "middleware[auth].stages[0].type", "routes.order". See Diff.
	Path string `json:"path"`
	// Before is the old value; nil for OpAdd.
	Before any `json:"before,omitempty"`
	// After is the new value; nil for OpRemove.
	After any `json:"after,omitempty"`
}

// Diff returns what changed from one config to the other, in the order a
// person reads a config: nil when both have the same Version.
//
// Both sides are compared in their canonical form (Canonical: defaults
// applied, durations and sizes normalised), so Diff reports a difference
// exactly when the versions differ and an explicit default equals an
// omitted one. A nil config is the empty config, defaults included: its
// routes, pools and other list entries are all added (or removed), while
// server, logging, metrics and shutdown show only fields that differ from
// their defaults. The comparison is generic over the JSON tree, so every
// field, present or future, is covered.
//
// Paths use the JSON key names, joined by "." ("server.idle_timeout"); a
// map key that is not made of letters, digits, "_" and "-" is written
// quoted in brackets (`headers["X.Y"]`). A list of objects is matched by
// identity: the first of "id", "address", "route", "name" that every
// element on both sides has as a string, with distinct values per side
// ("routes[api]", "endpoints[10.0.0.1:80]", "traffic_management[api]"),
// else by position ("stages[0]"). An identity that is empty, all digits
// (it would read as a position) or holds a space, a control character,
// `[`, `]`, `"` or `\` is quoted: `routes["a]b"]`. Lists of scalars
// (methods, retry_on, trusted_proxies) are one value and change as a
// whole.
//
// An element, object or value present on one side only is one OpAdd or
// OpRemove carrying the whole value; only scalars, scalar lists and values
// of different kinds are OpChange. A list of objects present on one side
// only is reported element by element. When the elements present on both
// sides of an identity-matched list are in a different relative order,
// one OpChange with path "<list>.order" (before and after: the identity
// lists) comes first for that list: route order breaks precedence ties,
// and because Version covers the order of every list, so does Diff.
//
// Order: object members in the struct's field order (server, routes,
// policies, pools, ... at the top), map keys sorted; list elements in the
// order of to, each removed element right after the element that preceded
// it in from and survives in to (first when none does). The result is a
// pure function of the inputs: the same configs always give the same
// slice. Diff does not modify from or to and is safe for concurrent use as
// long as nobody mutates them; the caller owns the returned slice. It
// costs two Canonical calls and a walk of both trees: meant for the
// control plane, not the request path.
func Diff(from, to *Config) []Change {
	d := &differ{}
	d.value("", canonicalTree(from), canonicalTree(to), reflect.TypeFor[Config]())
	return d.changes
}

// canonicalTree decodes c's canonical form into a generic tree. Working on
// the very bytes Version hashes (rather than marshalling afresh) is what
// guarantees that Diff is empty exactly when the versions are equal; the
// Go types only supply the member order (see memberOrder).
func canonicalTree(c *Config) any {
	dec := json.NewDecoder(bytes.NewReader(c.Canonical()))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		// Canonical produced it; a failure is a bug in this package.
		panic("config: diff decode: " + err.Error())
	}
	return v
}

// differ collects changes while walking two trees in step. t, where
// given, is the Go type the JSON value came from; nil means unknown, and
// only affects member order.
type differ struct {
	changes []Change
}

func (d *differ) emit(op, path string, before, after any) {
	d.changes = append(d.changes, Change{Op: op, Path: path, Before: before, After: after})
}

// value compares two values found at path on both sides.
func (d *differ) value(path string, a, b any, t reflect.Type) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			d.object(path, av, bv, t)
			return
		}
	case []any:
		if bv, ok := b.([]any); ok && objectList(av, bv) {
			d.list(path, av, bv, elemType(t))
			return
		}
	}
	if !reflect.DeepEqual(a, b) {
		d.emit(OpChange, path, a, b)
	}
}

// object compares two JSON objects member by member.
func (d *differ) object(path string, a, b map[string]any, t reflect.Type) {
	for _, k := range memberOrder(t, a, b) {
		p, mt := memberPath(path, k), memberType(t, k)
		va, inA := a[k]
		vb, inB := b[k]
		switch {
		case inA && inB:
			d.value(p, va, vb, mt)
		case inB:
			d.oneSide(OpAdd, p, vb, mt)
		default:
			d.oneSide(OpRemove, p, va, mt)
		}
	}
}

// oneSide reports a member present on one side only. A list of objects is
// reported element by element, so that the first traffic plan or a
// config compared with nil reads "+ routes[api]", "+ pools[backend]"
// rather than one opaque list.
func (d *differ) oneSide(op, path string, v any, t reflect.Type) {
	l, ok := v.([]any)
	switch {
	case ok && objectList(l, nil) && op == OpAdd:
		d.list(path, nil, l, elemType(t))
	case ok && objectList(l, nil):
		d.list(path, l, nil, elemType(t))
	case op == OpAdd:
		d.emit(op, path, nil, v)
	default:
		d.emit(op, path, v, nil)
	}
}

// list compares two lists of objects, by identity when the elements have
// one and by position otherwise.
func (d *differ) list(path string, a, b []any, t reflect.Type) {
	for _, key := range identityKeys {
		if hasIdentity(a, key) && hasIdentity(b, key) {
			d.byIdentity(path, key, a, b, t)
			return
		}
	}
	for i := range max(len(a), len(b)) {
		p := path + "[" + strconv.Itoa(i) + "]"
		switch {
		case i < len(a) && i < len(b):
			d.value(p, a[i], b[i], t)
		case i < len(b):
			d.emit(OpAdd, p, nil, b[i])
		default:
			d.emit(OpRemove, p, a[i], nil)
		}
	}
}

// identityKeys are the members that identify a list element, in order of
// preference: ids for named objects, addresses for endpoints, route ids
// for the per-route sections (traffic_management, cache), names for
// rollout stages.
var identityKeys = [...]string{"id", "address", "route", "name"}

// byIdentity compares two lists whose elements are identified by the
// string member key (see hasIdentity).
func (d *differ) byIdentity(path, key string, a, b []any, t reflect.Type) {
	ka, kb := identities(a, key), identities(b, key)
	ia, ib := positions(ka), positions(kb)
	if !slices.Equal(common(ka, ib), common(kb, ia)) {
		d.emit(OpChange, path+".order", stringList(ka), stringList(kb))
	}
	// removed[j] are the elements of a that go right after b[j]; j == -1
	// means before everything.
	removed := map[int][]int{}
	anchor := -1
	for i, k := range ka {
		if j, ok := ib[k]; ok {
			anchor = j
			continue
		}
		removed[anchor] = append(removed[anchor], i)
	}
	emitRemoved := func(j int) {
		for _, i := range removed[j] {
			d.emit(OpRemove, elementPath(path, ka[i]), a[i], nil)
		}
	}
	emitRemoved(-1)
	for j, k := range kb {
		p := elementPath(path, k)
		if i, ok := ia[k]; ok {
			d.value(p, a[i], b[j], t)
		} else {
			d.emit(OpAdd, p, nil, b[j])
		}
		emitRemoved(j)
	}
}

// objectList reports whether a and b together hold at least one element
// and only objects. Anything else (methods, retry_on, a mix) is compared
// as one value.
func objectList(a, b []any) bool {
	if len(a)+len(b) == 0 {
		return false
	}
	for _, e := range slices.Concat(a, b) {
		if _, ok := e.(map[string]any); !ok {
			return false
		}
	}
	return true
}

// hasIdentity reports whether every element of l has a string member key
// and no two share its value. An empty list has any identity, so that a
// list compared with nothing is still matched by identity.
func hasIdentity(l []any, key string) bool {
	seen := make(map[string]bool, len(l))
	for _, e := range l {
		m, _ := e.(map[string]any)
		s, ok := m[key].(string)
		if !ok || seen[s] {
			return false
		}
		seen[s] = true
	}
	return true
}

// identities returns each element's identity, in list order.
func identities(l []any, key string) []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.(map[string]any)[key].(string)
	}
	return out
}

// positions maps each identity to its index.
func positions(ids []string) map[string]int {
	m := make(map[string]int, len(ids))
	for i, id := range ids {
		m[id] = i
	}
	return m
}

// common returns the ids that are also in other, in their order in ids.
func common(ids []string, other map[string]int) []string {
	var out []string
	for _, id := range ids {
		if _, ok := other[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

// stringList turns ids into a JSON list value, matching the documented
// types of Change.Before and After.
func stringList(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// memberPath appends an object member to path.
func memberPath(path, k string) string {
	if !plainKey(k) {
		return path + "[" + strconv.Quote(k) + "]"
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// elementPath appends a list element's identity to path. Dots and colons
// stay unquoted (addresses and route ids are full of them, and inside
// brackets they are unambiguous); see Diff for what is quoted.
func elementPath(path, id string) string {
	if needsQuote(id) {
		id = strconv.Quote(id)
	}
	return path + "[" + id + "]"
}

// plainKey reports whether a member name can follow a "." as is.
func plainKey(k string) bool {
	return k != "" && !strings.ContainsFunc(k, func(r rune) bool {
		return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})
}

// needsQuote reports whether an identity would make a bracketed path
// element ambiguous: empty, all digits (a position), or holding brackets,
// quotes, backslashes, spaces or unprintable characters.
func needsQuote(id string) bool {
	if id == "" || strings.Trim(id, "0123456789") == "" {
		return true
	}
	return strings.ContainsFunc(id, func(r rune) bool {
		return r == '[' || r == ']' || r == '"' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	})
}

// memberOrder returns the union of a's and b's member names: first the
// fields of struct type t in declaration order (how the schema and SPEC
// section 3 present them), then any other names sorted (map keys, or
// members t does not describe).
func memberOrder(t reflect.Type, a, b map[string]any) []string {
	out := make([]string, 0, max(len(a), len(b)))
	known := map[string]bool{}
	for _, f := range jsonFields(t) {
		known[f.name] = true
		if _, ok := a[f.name]; ok {
			out = append(out, f.name)
		} else if _, ok := b[f.name]; ok {
			out = append(out, f.name)
		}
	}
	var rest []string
	for _, m := range []map[string]any{a, b} {
		for k := range m {
			if !known[k] {
				known[k] = true
				rest = append(rest, k)
			}
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// memberType returns the Go type of member k of a value of type t: the
// struct field with that JSON name, or a map's element type; nil when
// unknown.
func memberType(t reflect.Type, k string) reflect.Type {
	t = indirect(t)
	if t != nil && t.Kind() == reflect.Map {
		return t.Elem()
	}
	for _, f := range jsonFields(t) {
		if f.name == k {
			return f.typ
		}
	}
	return nil
}

// elemType returns the element type of a slice type t, nil when unknown.
func elemType(t reflect.Type) reflect.Type {
	t = indirect(t)
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		return t.Elem()
	}
	return nil
}

// indirect strips pointers from t.
func indirect(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonField is a struct field as encoding/json names it.
type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields lists the JSON members of struct type t in declaration
// order, following encoding/json's naming: the tag's name, else the Go
// name; "-" and unexported fields skipped; untagged embedded structs
// inlined. Nil for non-struct types.
func jsonFields(t reflect.Type) []jsonField {
	t = indirect(t)
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case tag == "-":
			continue
		case f.Anonymous && name == "" && indirect(f.Type).Kind() == reflect.Struct:
			out = append(out, jsonFields(f.Type)...)
			continue
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		out = append(out, jsonField{name: name, typ: f.Type})
	}
	return out
}

// maxValueRunes bounds each value FormatChanges prints, so that adding a
// large pool or route stays one readable line.
const maxValueRunes = 120

// FormatChanges renders changes for a person, one line each, in the given
// order: "~ path: before -> after" for OpChange, "+ path: after" for OpAdd
// and "- path" for OpRemove, as in
//
//	~ routes[api].pool: "a" -> "b"
//	+ routes[new]: {"id":"new","pool":"backend"}
//	- pools[old]
//
// Values are compact JSON (object keys sorted), each cut to 120
// characters ending in "…" when longer. A change with an unknown Op is
// printed as "? path". Empty or nil changes give "no changes\n". It is a
// pure function, safe for concurrent use.
func FormatChanges(changes []Change) string {
	if len(changes) == 0 {
		return "no changes\n"
	}
	var sb strings.Builder
	for _, c := range changes {
		switch c.Op {
		case OpAdd:
			fmt.Fprintf(&sb, "+ %s: %s\n", c.Path, formatValue(c.After))
		case OpRemove:
			fmt.Fprintf(&sb, "- %s\n", c.Path)
		case OpChange:
			fmt.Fprintf(&sb, "~ %s: %s -> %s\n", c.Path, formatValue(c.Before), formatValue(c.After))
		default:
			fmt.Fprintf(&sb, "? %s\n", c.Path)
		}
	}
	return sb.String()
}

// formatValue writes v as compact JSON, truncated to maxValueRunes.
func formatValue(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Paths, regexes and hosts read better with <, > and & as written.
	enc.SetEscapeHTML(false)
	s := fmt.Sprint(v)
	if err := enc.Encode(v); err == nil {
		s = strings.TrimSuffix(buf.String(), "\n")
	}
	if r := []rune(s); len(r) > maxValueRunes {
		s = string(r[:maxValueRunes-1]) + "…"
	}
	return s
}
