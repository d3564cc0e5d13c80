package config

import (
	"fmt"
	"math"
	"reflect"
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
}

// unmarshalerType is the interface Duration, Size and Scalar implement.
var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func newDecoder(docSize int) *decoder {
	return &decoder{budget: 64*docSize + 1024, fields: map[reflect.Type]map[string]int{}}
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
func (d *decoder) spend(path string) bool {
	if d.budget <= 0 {
		return false
	}
	d.budget--
	if d.budget == 0 {
		d.errs.add(path, "document too large after alias expansion")
		return false
	}
	return true
}

// value decodes n into v, recording problems under path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(path) {
		return
	}
	n = resolve(n)
	if isNull(n) {
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errs.add(path, "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.list(n, v, path)
	case reflect.Map:
		d.stringMap(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

// entries calls fn for each key/value pair of mapping n, resolving YAML
// merge keys ("<<: *base") with YAML's precedence (explicit keys beat
// merged ones; earlier merge sources beat later ones) and reporting
// duplicate keys and keys that are not scalars. fn is called in
// increasing precedence, so later calls overwrite earlier ones.
func (d *decoder) entries(n *yaml.Node, path string, fn func(key string, val *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.errs.add(path, "expected a mapping, got %s", describe(n))
		return
	}
	var merges []*yaml.Node
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(path) {
			return
		}
		k := resolve(n.Content[i])
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			d.errs.add(path, "mapping keys must be strings, got %s", describe(k))
			continue
		}
		if seen[k.Value] {
			d.errs.add(field(path, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
	}
	d.merge(merges, path, fn)
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

// merge applies the sources of "<<" keys, lowest precedence first.
func (d *decoder) merge(merges []*yaml.Node, path string, fn func(key string, val *yaml.Node)) {
	for i := len(merges) - 1; i >= 0; i-- {
		src := resolve(merges[i])
		if src.Kind != yaml.SequenceNode {
			d.entries(src, path, fn)
			continue
		}
		for j := len(src.Content) - 1; j >= 0; j-- {
			d.entries(resolve(src.Content[j]), path, fn)
		}
	}
}

// structure decodes a mapping into a struct by yaml tag names; unknown keys
// are errors.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	fields := d.fieldsOf(v.Type())
	d.entries(n, path, func(key string, val *yaml.Node) {
		i, ok := fields[key]
		if !ok {
			d.errs.add(field(path, key), "unknown key")
			return
		}
		f := v.Field(i)
		// Reset first: a key given again (by a merge and explicitly)
		// replaces the earlier value wholesale, as YAML merges do.
		f.SetZero()
		d.value(val, f, field(path, key))
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
func (d *decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errs.add(path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(item, s.Index(i), index(path, i))
	}
	v.Set(s)
}

// stringMap decodes a mapping into a map[string]string. Values may be any
// scalar (query: {beta: 1} means "1"); null means the empty string.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	m := reflect.MakeMap(v.Type())
	d.entries(n, path, func(key string, val *yaml.Node) {
		val = resolve(val)
		switch {
		case isNull(val):
			m.SetMapIndex(reflect.ValueOf(key), reflect.ValueOf(""))
		case val.Kind == yaml.ScalarNode:
			m.SetMapIndex(reflect.ValueOf(key), reflect.ValueOf(val.Value))
		default:
			d.errs.add(field(path, key), "expected a string, got %s", describe(val))
		}
	})
	v.Set(m)
}

// scalar decodes strings, booleans, integers and floats, strictly by YAML
// type: "true" (quoted) is not a boolean and 5 is not a string.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode {
		tag = ""
	}
	switch v.Kind() {
	case reflect.String:
		if tag != "!!str" {
			d.errs.add(path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if tag != "!!bool" {
			d.errs.add(path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if tag != "!!int" || err != nil || v.OverflowInt(i) {
			d.errs.add(path, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if (tag != "!!int" && tag != "!!float") || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errs.add(path, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		d.errs.add(path, "cannot decode into %s", v.Type())
	}
}
