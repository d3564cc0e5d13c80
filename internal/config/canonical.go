package config

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Canonical returns the config's canonical form: compact JSON of the config
// after ApplyDefaults, every object's keys sorted, empty and unset fields
// left out, durations as Go duration strings and sizes as byte counts. Two
// documents that mean the same thing (YAML or JSON, any key order, defaults
// written out or omitted, "1MB" or 1048576) have the same canonical form.
// It is what Version hashes and what bundles sign. c is not modified; the
// caller owns the returned bytes. A nil c is the empty config.
func (c *Config) Canonical() []byte {
	cp := c.defaulted()
	if out, ok := appendCanonical(nil, cp, nil); ok {
		return out
	}
	return canonicalJSON(cp)
}

// defaulted returns a copy of c with defaults applied; nil is the empty
// config.
func (c *Config) defaulted() *Config {
	cp := &Config{}
	if c != nil {
		cp = c.Clone()
	}
	cp.ApplyDefaults()
	return cp
}

// canonicalJSON is the reference definition of the canonical form:
// encoding/json's output re-encoded with sorted keys. appendCanonical
// writes the same bytes in one pass, several times faster (Version runs
// on every apply, twice); this path remains for the values it declines.
func canonicalJSON(cp *Config) []byte {
	raw, err := json.Marshal(cp)
	if err != nil {
		// Every field type marshals without error; a failure here is a
		// programming error in this package, not a property of the input.
		panic("config: canonical marshal: " + err.Error())
	}
	return sortedJSON(raw)
}

// sortedJSON re-encodes JSON with every object's keys sorted (encoding/json
// sorts map keys but keeps struct fields in declaration order). Numbers
// are kept as written, so no precision is lost.
func sortedJSON(raw []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic("config: canonical decode: " + err.Error())
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep <, > and & literal: the bytes are signed and hashed, and
	// readable paths/regexes beat HTML safety in this context.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("config: canonical encode: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// versionLen is the number of hex digits of the SHA-256 kept in a version:
// 64 bits is plenty to tell a fleet's config revisions apart and short
// enough for logs, metric labels and humans.
const versionLen = 16

// Version returns the content hash that identifies the config: the first
// 16 hex digits (64 bits) of the SHA-256 of Canonical(). Equal content
// gives equal versions whatever the document's format, key order or
// spelling of defaults; any change of meaning gives a different one. The
// Config.Version label is content too.
func (c *Config) Version() string {
	// Hash the canonical form as it is written rather than build it
	// whole: Version runs twice per apply, and the form of a large config
	// is megabytes.
	cp := c.defaulted()
	h := sha256.New()
	if rest, ok := appendCanonical(make([]byte, 0, 2*canonicalChunk), cp, h); ok {
		h.Write(rest)
	} else {
		h.Reset()
		h.Write(canonicalJSON(cp))
	}
	return hex.EncodeToString(h.Sum(nil))[:versionLen]
}

// canonicalChunk is how many bytes of canonical form Version hashes at a
// time.
const canonicalChunk = 32 << 10

// Clone returns a deep copy of c that shares no slices, maps or pointers
// with it, so the copy may be mutated while c is being read elsewhere.
// Clone of nil is nil.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := &Config{}
	cp := copier{plans: map[reflect.Type]*copyPlan{}}
	v := reflect.ValueOf(c).Elem()
	cp.copy(reflect.ValueOf(out).Elem(), v, cp.planOf(v.Type()))
	return out
}

// copier deep-copies values. Its plans say which types hold references
// (pointers, slices, maps), so that everything else, most of a config, is
// copied by plain assignment, a whole struct or slice at a time, instead of
// field by field: Validate and Version clone the config on every apply.
// The schema holds no interfaces, channels, funcs or cycles. Plans live
// for one Clone (a few dozen types, microseconds to build) rather than in
// a package-level cache, which would be mutable global state.
type copier struct {
	plans map[reflect.Type]*copyPlan
}

// copyPlan is how copier copies values of one type.
type copyPlan struct {
	typ reflect.Type
	// refs reports whether a value holds anything that a shallow copy
	// would share; when false, assignment is a deep copy.
	refs bool
	// stringMap marks map[string]string, copied without reflection.
	stringMap bool
	fields    []copyField // structs: the fields with refs
	elem      *copyPlan   // pointers, slices and maps (the value type)
}

// copyField is a struct field that holds references.
type copyField struct {
	index int
	plan  *copyPlan
}

// planOf returns the plan for t, building it on first use.
func (cp *copier) planOf(t reflect.Type) *copyPlan {
	if p, ok := cp.plans[t]; ok {
		return p
	}
	p := &copyPlan{typ: t}
	cp.plans[t] = p
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		p.refs = true
		p.elem = cp.planOf(t.Elem())
	case reflect.Map:
		p.refs = true
		p.stringMap = t == reflect.TypeFor[map[string]string]()
		p.elem = cp.planOf(t.Elem())
	case reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		// Shared, not copied: the schema has none.
		p.refs = true
	case reflect.Array:
		p.refs = cp.planOf(t.Elem()).refs
	case reflect.Struct:
		for i := range t.NumField() {
			if fp := cp.planOf(t.Field(i).Type); fp.refs {
				p.fields = append(p.fields, copyField{index: i, plan: fp})
			}
		}
		p.refs = len(p.fields) > 0
	}
	return p
}

// copy copies src into dst (both of type p.typ; dst settable),
// duplicating pointers, slices and maps.
func (cp *copier) copy(dst, src reflect.Value, p *copyPlan) {
	if !p.refs {
		dst.Set(src)
		return
	}
	switch p.typ.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		n := reflect.New(p.typ.Elem())
		cp.copy(n.Elem(), src.Elem(), p.elem)
		dst.Set(n)
	case reflect.Struct:
		// Assign the whole struct, then replace what it shares.
		dst.Set(src)
		for _, f := range p.fields {
			cp.copy(dst.Field(f.index), src.Field(f.index), f.plan)
		}
	case reflect.Slice:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		n := src.Len()
		s := reflect.MakeSlice(p.typ, n, n)
		if !p.elem.refs {
			reflect.Copy(s, src)
		} else {
			for i := range n {
				cp.copy(s.Index(i), src.Index(i), p.elem)
			}
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		if p.stringMap {
			dst.Set(reflect.ValueOf(maps.Clone(src.Interface().(map[string]string))))
			return
		}
		m := reflect.MakeMapWithSize(p.typ, src.Len())
		iter := src.MapRange()
		for iter.Next() {
			v := iter.Value()
			if p.elem.refs {
				c := reflect.New(p.typ.Elem()).Elem()
				cp.copy(c, v, p.elem)
				v = c
			}
			m.SetMapIndex(iter.Key(), v)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}

// appendCanonical appends the canonical form of c (already defaulted) to
// dst, producing exactly what canonicalJSON produces, without the
// marshal, decode and re-encode round trip: struct fields are written in
// key order, map keys sorted, strings escaped as encoding/json escapes them
// with HTML escaping off. When w is not nil, it writes what it has to w
// every canonicalChunk bytes or so, and the result is the unwritten rest.
// It reports false, having written garbage, for anything whose round trip
// it does not reproduce exactly (a type with a field it does not know how
// to order, a map key that is not valid UTF-8, a Marshaler whose output is
// not a plain string); the caller then uses canonicalJSON.
func appendCanonical(dst []byte, c *Config, w io.Writer) ([]byte, bool) {
	e := canonicalEncoder{types: map[reflect.Type]*canonType{}, w: w}
	v := reflect.ValueOf(c).Elem()
	return e.value(dst, v, e.typeOf(v.Type()))
}

// canonicalEncoder holds the per-type plans of one appendCanonical call.
// The plans are rebuilt per call (a few dozen types, microseconds) rather
// than cached in a package variable, which would be mutable global state.
type canonicalEncoder struct {
	types map[reflect.Type]*canonType
	// w, when set, takes the output in chunks of about canonicalChunk
	// bytes: the encoder then keeps only the unwritten rest.
	w io.Writer
}

// canonType is how appendCanonical writes values of one type.
type canonType struct {
	kind reflect.Kind
	// ok is false for types whose encoding/json round trip appendCanonical
	// does not reproduce; meeting a value of one aborts the fast path.
	ok bool
	// marshaler is set for types with a (value receiver) MarshalJSON;
	// duration for Duration, whose MarshalJSON is known.
	marshaler, duration bool
	fields              []canonField // structs: exported fields, sorted by key
	elem                *canonType   // pointers, slices and maps (the value type)
}

// canonField is one struct field as encoding/json names it.
type canonField struct {
	index     int
	key       string // the JSON object key
	omitEmpty bool
	typ       *canonType
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// typeOf returns the plan for t, building it on first use.
func (e *canonicalEncoder) typeOf(t reflect.Type) *canonType {
	if ct, ok := e.types[t]; ok {
		return ct
	}
	ct := &canonType{kind: t.Kind(), ok: true}
	e.types[t] = ct
	pt := reflect.PointerTo(t)
	switch {
	case t.Implements(textMarshalerType) || pt.Implements(textMarshalerType):
		ct.ok = false
	case t == reflect.TypeFor[Duration]():
		ct.duration = true
		return ct
	case t.Implements(jsonMarshalerType):
		ct.marshaler = true
		return ct
	case pt.Implements(jsonMarshalerType):
		// A pointer-receiver MarshalJSON applies only to addressable
		// values; not worth reproducing.
		ct.ok = false
	}
	switch t.Kind() {
	case reflect.Pointer:
		ct.elem = e.typeOf(t.Elem())
	case reflect.Slice:
		// []byte would be base64.
		ct.ok = ct.ok && t.Elem().Kind() != reflect.Uint8
		ct.elem = e.typeOf(t.Elem())
	case reflect.Map:
		ct.ok = ct.ok && t.Key().Kind() == reflect.String && !t.Key().Implements(textMarshalerType)
		ct.elem = e.typeOf(t.Elem())
	case reflect.Struct:
		ct.ok = ct.ok && e.structFields(t, ct)
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		ct.ok = false
	}
	return ct
}

// structFields fills ct.fields as encoding/json would choose and name
// them, sorted by key, and reports false for what it does not handle:
// embedded fields, tag options other than omitempty, duplicate keys.
func (e *canonicalEncoder) structFields(t reflect.Type, ct *canonType) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return false
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if opts != "" && opts != "omitempty" {
			return false
		}
		ct.fields = append(ct.fields, canonField{index: i, key: name, omitEmpty: opts == "omitempty", typ: e.typeOf(f.Type)})
	}
	slices.SortFunc(ct.fields, func(a, b canonField) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(ct.fields); i++ {
		if ct.fields[i].key == ct.fields[i-1].key {
			return false
		}
	}
	return true
}

// value appends v, of plan ct.
func (e *canonicalEncoder) value(b []byte, v reflect.Value, ct *canonType) ([]byte, bool) {
	if !ct.ok {
		return b, false
	}
	if ct.duration {
		// Duration.MarshalJSON is json.Marshal(d.String()); skip the
		// boxing and the intermediate buffer of the general path.
		return appendJSONString(b, Duration(v.Int()).String()), true
	}
	if ct.marshaler {
		return appendMarshaled(b, v)
	}
	switch ct.kind {
	case reflect.Pointer:
		if v.IsNil() {
			return append(b, "null"...), true
		}
		return e.value(b, v.Elem(), ct.elem)
	case reflect.Struct:
		return e.structure(b, v, ct)
	case reflect.Slice:
		if v.IsNil() {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i := range v.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			if e.w != nil && len(b) >= canonicalChunk {
				e.w.Write(b)
				b = b[:0]
			}
			var ok bool
			if b, ok = e.value(b, v.Index(i), ct.elem); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case reflect.Map:
		return e.mapping(b, v, ct)
	case reflect.String:
		return appendJSONString(b, v.String()), true
	case reflect.Bool:
		return strconv.AppendBool(b, v.Bool()), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, v.Int(), 10), true
	case reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, v.Uint(), 10), true
	case reflect.Float32, reflect.Float64:
		// Rare (a handful per document): let encoding/json format it,
		// and refuse NaN and infinities as it does.
		raw, err := json.Marshal(v.Interface())
		if err != nil {
			return b, false
		}
		return append(b, raw...), true
	}
	return b, false
}

// structure appends a struct's fields in key order, leaving out empty
// omitempty fields as encoding/json does.
func (e *canonicalEncoder) structure(b []byte, v reflect.Value, ct *canonType) ([]byte, bool) {
	b = append(b, '{')
	first := true
	for i := range ct.fields {
		f := &ct.fields[i]
		fv := v.Field(f.index)
		if f.omitEmpty && isEmptyJSON(fv) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, f.key)
		b = append(b, ':')
		var ok bool
		if b, ok = e.value(b, fv, f.typ); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// mapping appends a map with its keys sorted.
func (e *canonicalEncoder) mapping(b []byte, v reflect.Value, ct *canonType) ([]byte, bool) {
	if v.IsNil() {
		return append(b, "null"...), true
	}
	type entry struct {
		key string
		val reflect.Value
	}
	entries := make([]entry, 0, v.Len())
	iter := v.MapRange()
	for iter.Next() {
		k := iter.Key().String()
		// The round trip turns invalid UTF-8 into U+FFFD, which could
		// merge two keys; leave such maps to it.
		if !utf8.ValidString(k) {
			return b, false
		}
		entries = append(entries, entry{k, iter.Value()})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	b = append(b, '{')
	for i, en := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, en.key)
		b = append(b, ':')
		var ok bool
		if b, ok = e.value(b, en.val, ct.elem); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// isEmptyJSON is encoding/json's omitempty test.
func isEmptyJSON(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// appendMarshaled appends the output of v's MarshalJSON when it is a plain
// string token (Duration's "1m30s" is), which the round trip leaves as it
// is; anything else is left to the round trip.
func appendMarshaled(b []byte, v reflect.Value) ([]byte, bool) {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return append(b, "null"...), true
	}
	raw, err := v.Interface().(json.Marshaler).MarshalJSON()
	if err != nil || len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return b, false
	}
	s := string(raw[1 : len(raw)-1])
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\"\\\u2028\u2029") {
		return b, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return b, false
		}
	}
	return append(b, raw...), true
}

// appendJSONString appends s as a JSON string exactly as the round trip
// of canonicalJSON leaves it: encoding/json's escaping with HTML escaping
// off, and each byte of invalid UTF-8 replaced by U+FFFD (json.Marshal
// writes it as \ufffd, which decodes to the rune and is then written as
// is).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = utf8.AppendRune(b, utf8.RuneError)
			start = i + size
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
