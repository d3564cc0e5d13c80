package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
)

// Canonical returns the config's canonical form: compact JSON of the config
// after ApplyDefaults, every object's keys sorted, empty and unset fields
// left out, durations as Go duration strings and sizes as byte counts. Two
// documents that mean the same thing (YAML or JSON, any key order, defaults
// written out or omitted, "1MB" or 1048576) have the same canonical form.
// It is what Version hashes and what bundles sign. c is not modified; the
// caller owns the returned bytes. A nil c is the empty config.
func (c *Config) Canonical() []byte {
	if c == nil {
		c = &Config{}
	}
	cp := c.Clone()
	cp.ApplyDefaults()
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
	sum := sha256.Sum256(c.Canonical())
	return hex.EncodeToString(sum[:])[:versionLen]
}

// Clone returns a deep copy of c that shares no slices, maps or pointers
// with it, so the copy may be mutated while c is being read elsewhere.
// Clone of nil is nil.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := &Config{}
	deepCopy(reflect.ValueOf(out).Elem(), reflect.ValueOf(c).Elem())
	return out
}

// deepCopy copies src into dst (same type), duplicating pointers, slices
// and maps. The schema holds no interfaces, channels, funcs or cycles.
func deepCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(src.Type().Elem()))
		deepCopy(dst.Elem(), src.Elem())
	case reflect.Struct:
		for i := range src.NumField() {
			deepCopy(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			deepCopy(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		iter := src.MapRange()
		for iter.Next() {
			v := reflect.New(src.Type().Elem()).Elem()
			deepCopy(v, iter.Value())
			m.SetMapIndex(iter.Key(), v)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}
