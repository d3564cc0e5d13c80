package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder fills Go values from a yaml.Node tree, checking every key against
// the struct's yaml tags. It exists (rather than yaml.Node.Decode with
// KnownFields) because that stops at the first problem and names lines,
// while operators need every problem at once, each named by its field path.
type decoder struct {
	errs Errors
	// budget is the number of nodes still allowed to be visited. It bounds
	// the work of alias expansion ("billion laughs"): a document can only
	// make the decoder visit a small multiple of its own size.
	budget int
	// fields caches yaml key -> struct field index per struct type.
	fields map[reflect.Type]map[string]int
	// unmarshaler caches, per type T, whether *T implements
	// yaml.Unmarshaler.
	unmarshaler map[reflect.Type]bool
	// steps is the path from the root to the node being decoded: the
	// node at depth n has the path steps[:n]. Methods take the depth
	// rather than the path string, which pathAt joins only when a
	// problem is reported: joining the path of every node eagerly was a
	// fifth of the time of parsing a large config, which usually has no
	// problem at all.
	steps []pathStep
}

// pathStep is one step of a path: a mapping key, or a list index.
type pathStep struct {
	key   string
	index int // -1 for a key
}

// pathAt returns the path of the node at depth, joined as field and index
// join paths.
func (d *decoder) pathAt(depth int) string {
	p := ""
	for _, s := range d.steps[:depth] {
		if s.index >= 0 {
			p = index(p, s.index)
		} else {
			p = field(p, s.key)
		}
	}
	return p
}

// enter records the step to the child at depth+1 of the node at depth and
// returns the child's depth. Steps below depth belong to the node's
// ancestors and are left alone; deeper ones are stale and dropped.
func (d *decoder) enter(depth int, key string, index int) int {
	d.steps = append(d.steps[:depth], pathStep{key: key, index: index})
	return depth + 1
}

// unmarshalerType is the interface Duration, Size and Scalar implement.
var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func newDecoder(docSize int) *decoder {
	return &decoder{budget: 64*docSize + 1024, fields: map[reflect.Type]map[string]int{},
		unmarshaler: map[reflect.Type]bool{}}
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an explicit null ("~", "null", or
// an empty value), which the decoder treats the same as an absent key.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names a node's kind and value for type errors.
func describe(n *yaml.Node) string {
	n = resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		switch n.ShortTag() {
		case "!!str":
			return "string " + strconv.Quote(v)
		case "!!int", "!!float":
			return "number " + v
		case "!!bool":
			return "boolean " + v
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), v)
	}
	return "an unexpected node"
}

// spend takes one node from the budget and reports whether decoding may
// go on; the first refusal is recorded as an error at path.
func (d *decoder) spend(depth int) bool {
	if d.budget <= 0 {
		return false
	}
	d.budget--
	if d.budget == 0 {
		d.errs.add(d.pathAt(depth), "document too large after alias expansion")
		return false
	}
	return true
}

// value decodes n, at depth, into v.
func (d *decoder) value(n *yaml.Node, v reflect.Value, depth int) {
	if !d.spend(depth) {
		return
	}
	n = resolve(n)
	if isNull(n) {
		return
	}
	if v.CanAddr() && d.isUnmarshaler(v.Type()) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errs.add(d.pathAt(depth), "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), depth)
	case reflect.Struct:
		d.structure(n, v, depth)
	case reflect.Slice:
		d.list(n, v, depth)
	case reflect.Map:
		d.stringMap(n, v, depth)
	default:
		d.scalar(n, v, depth)
	}
}

// isUnmarshaler reports whether *t implements yaml.Unmarshaler.
func (d *decoder) isUnmarshaler(t reflect.Type) bool {
	u, ok := d.unmarshaler[t]
	if !ok {
		u = reflect.PointerTo(t).Implements(unmarshalerType)
		d.unmarshaler[t] = u
	}
	return u
}

// entries calls fn for each key/value pair of mapping n, resolving YAML
// merge keys ("<<: *base") with YAML's precedence (explicit keys beat
// merged ones; earlier merge sources beat later ones) and reporting
// duplicate keys and keys that are not scalars. fn is called in
// increasing precedence, so later calls overwrite earlier ones.
func (d *decoder) entries(n *yaml.Node, depth int, fn func(key string, val *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.errs.add(d.pathAt(depth), "expected a mapping, got %s", describe(n))
		return
	}
	// A mapping with only distinct, plain keys (nearly all of them) takes
	// fn in document order; duplicates are found by a scan of the few
	// keys seen so far instead of a map, which costs an allocation per
	// mapping. Anything else (merge keys, bad or duplicate keys) takes
	// the general path below.
	var small [smallMapping]string
	accepted := small[:0]
	var seen map[string]bool
	clean := true
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(depth) {
			return
		}
		k := resolve(n.Content[i])
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
			clean = false
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			d.errs.add(d.pathAt(depth), "mapping keys must be strings, got %s", describe(k))
			clean = false
			continue
		}
		if seen == nil && len(accepted) == smallMapping {
			seen = make(map[string]bool, len(n.Content)/2)
			for _, a := range accepted {
				seen[a] = true
			}
		}
		if seen != nil && seen[k.Value] || seen == nil && slices.Contains(accepted, k.Value) {
			d.errs.add(field(d.pathAt(depth), k.Value), "duplicate key")
			clean = false
			continue
		}
		if seen != nil {
			seen[k.Value] = true
		} else {
			accepted = append(accepted, k.Value)
		}
	}
	if clean {
		for i := 0; i+1 < len(n.Content); i += 2 {
			fn(resolve(n.Content[i]).Value, n.Content[i+1])
		}
		return
	}
	if seen == nil {
		seen = make(map[string]bool, len(accepted))
		for _, a := range accepted {
			seen[a] = true
		}
	}
	d.merge(merges, depth, fn)
	done := make(map[string]bool, len(seen))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode || !seen[k.Value] || done[k.Value] {
			continue
		}
		done[k.Value] = true
		fn(k.Value, n.Content[i+1])
	}
}

// smallMapping is the largest mapping whose keys entries checks for
// duplicates by scanning rather than with a map.
const smallMapping = 16

// merge applies the sources of "<<" keys, lowest precedence first.
func (d *decoder) merge(merges []*yaml.Node, depth int, fn func(key string, val *yaml.Node)) {
	for i := len(merges) - 1; i >= 0; i-- {
		src := resolve(merges[i])
		if src.Kind != yaml.SequenceNode {
			d.entries(src, depth, fn)
			continue
		}
		for j := len(src.Content) - 1; j >= 0; j-- {
			d.entries(resolve(src.Content[j]), depth, fn)
		}
	}
}

// structure decodes a mapping into a struct by yaml tag names; unknown keys
// are errors.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, depth int) {
	fields := d.fieldsOf(v.Type())
	d.entries(n, depth, func(key string, val *yaml.Node) {
		child := d.enter(depth, key, -1)
		i, ok := fields[key]
		if !ok {
			d.errs.add(d.pathAt(child), "unknown key")
			return
		}
		f := v.Field(i)
		// Reset first: a key given again (by a merge and explicitly)
		// replaces the earlier value wholesale, as YAML merges do.
		f.SetZero()
		d.value(val, f, child)
	})
}

// fieldsOf maps yaml key names to field indexes for struct type t.
func (d *decoder) fieldsOf(t reflect.Type) map[string]int {
	if m, ok := d.fields[t]; ok {
		return m
	}
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	d.fields[t] = m
	return m
}

// list decodes a sequence into a slice.
func (d *decoder) list(n *yaml.Node, v reflect.Value, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.errs.add(d.pathAt(depth), "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(item, s.Index(i), d.enter(depth, "", i))
	}
	v.Set(s)
}

// stringMap decodes a mapping into a map[string]string. Values may be any
// scalar (query: {beta: 1} means "1"); null means the empty string.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, depth int) {
	// Every map of the schema is a map[string]string; build it without
	// reflection, converting only when the type is another map type.
	m := map[string]string{}
	d.entries(n, depth, func(key string, val *yaml.Node) {
		val = resolve(val)
		switch {
		case isNull(val):
			m[key] = ""
		case val.Kind == yaml.ScalarNode:
			m[key] = val.Value
		default:
			d.errs.add(field(d.pathAt(depth), key), "expected a string, got %s", describe(val))
		}
	})
	if mv := reflect.ValueOf(m); mv.Type() == v.Type() {
		v.Set(mv)
		return
	}
	mv := reflect.MakeMapWithSize(v.Type(), len(m))
	for k, val := range m {
		mv.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), reflect.ValueOf(val).Convert(v.Type().Elem()))
	}
	v.Set(mv)
}

// scalar decodes strings, booleans, integers and floats, strictly by YAML
// type: "true" (quoted) is not a boolean and 5 is not a string.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, depth int) {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode {
		tag = ""
	}
	switch v.Kind() {
	case reflect.String:
		if tag != "!!str" {
			d.errs.add(d.pathAt(depth), "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if tag != "!!bool" {
			d.errs.add(d.pathAt(depth), "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if tag != "!!int" || err != nil || v.OverflowInt(i) {
			d.errs.add(d.pathAt(depth), "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if (tag != "!!int" && tag != "!!float") || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errs.add(d.pathAt(depth), "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		d.errs.add(d.pathAt(depth), "cannot decode into %s", v.Type())
	}
}
