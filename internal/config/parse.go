package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Format is the syntax of a config document. The zero value is invalid.
type Format int

// Document formats; both carry the same schema.
const (
	// FormatYAML is YAML 1.2 (anchors, aliases and merge keys allowed).
	FormatYAML Format = iota + 1
	// FormatJSON is strict JSON (RFC 8259); duplicate keys are errors.
	FormatJSON
)

// String returns "yaml" or "json".
func (f Format) String() string {
	switch f {
	case FormatYAML:
		return "yaml"
	case FormatJSON:
		return "json"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// FormatFromPath picks the format from a file name's extension: .yaml and
// .yml are YAML, .json is JSON (case-insensitive); anything else is an
// error.
func FormatFromPath(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return FormatYAML, nil
	case ".json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("config file %q: unsupported extension %q: use .yaml, .yml or .json", path, filepath.Ext(path))
}

// Load reads the file at path, picks its format with FormatFromPath and
// parses it with Parse. Parse problems are wrapped with the path and still
// match errors.As(err, &Errors{}).
func Load(path string) (*Config, error) {
	f, err := FormatFromPath(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data, f)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a document strictly and applies defaults; it does not check
// semantics (see Validate). Unknown keys, duplicate keys, type mismatches
// and malformed durations or sizes are all reported at once, each with its
// path ("routes[2].pathh: unknown key"), as an Errors value. An empty
// document is the empty config. The top level must be a mapping. The
// returned config is owned by the caller; on error it is nil.
func Parse(data []byte, f Format) (*Config, error) {
	root, err := parseNode(data, f)
	if err != nil {
		return nil, Errors{{Message: err.Error()}}
	}
	c := &Config{}
	if root != nil {
		d := newDecoder(len(data))
		if root.Kind != yaml.MappingNode {
			d.errs.add("", "the top level must be a mapping, got %s", describe(root))
		} else {
			d.value(root, reflect.ValueOf(c).Elem(), 0)
		}
		if len(d.errs) > 0 {
			return nil, d.errs
		}
	}
	c.ApplyDefaults()
	return c, nil
}

// parseNode turns a document into its root node, nil for an empty
// document, with aliases already resolved.
func parseNode(data []byte, f Format) (*yaml.Node, error) {
	switch f {
	case FormatYAML:
		return yamlNode(data)
	case FormatJSON:
		return jsonNode(data)
	}
	return nil, fmt.Errorf("unknown config format %d", int(f))
}

// yamlNode parses exactly one YAML document.
func yamlNode(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("yaml: a config file holds exactly one document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

// maxJSONDepth bounds nesting so that hostile input cannot exhaust the
// stack; real configs nest fewer than ten levels.
const maxJSONDepth = 1000

// jsonNode parses strict JSON into the same node tree YAML produces, so one
// decoder serves both formats. Duplicate keys survive to be reported.
// Well-formed documents take a one-pass scanner (scanJSON); anything it
// declines, which includes every malformed document, goes through
// encoding/json's tokenizer (tokenJSONNode), whose errors are the ones
// reported.
func jsonNode(data []byte) (*yaml.Node, error) {
	if n, ok := scanJSON(data); ok {
		return n, nil
	}
	return tokenJSONNode(data)
}

// tokenJSONNode is jsonNode on encoding/json's tokenizer, so that JSON is
// held to JSON's grammar and syntax errors read as encoding/json's. It is
// the reference that scanJSON must agree with.
func tokenJSONNode(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, jsonError(data, err)
	}
	n, err := jsonValue(dec, tok, 0)
	if err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, jsonError(data, errors.New("unexpected data after the top-level value"))
	}
	if isNull(n) {
		return nil, nil
	}
	return n, nil
}

// scanJSON builds the node tree of a well-formed JSON document in one pass
// over its bytes, with the nodes allocated in blocks: encoding/json's
// Token API costs several allocations and a scanner error value per
// token, nearly three quarters of the time of parsing a large config. It
// returns the tree tokenJSONNode would return, and false, having built
// nothing of use, for anything it does not accept: malformed JSON, nesting
// deeper than maxJSONDepth, or an empty document (which tokenJSONNode then
// reports or accepts, with its own messages).
func scanJSON(data []byte) (*yaml.Node, bool) {
	s := jsonScanner{data: data, keys: make(map[string]*yaml.Node)}
	s.space()
	n, ok := s.value(0)
	if !ok {
		return nil, false
	}
	s.space()
	if s.pos != len(data) {
		return nil, false
	}
	if isNull(n) {
		return nil, true
	}
	return n, true
}

// jsonScanner is the state of one scanJSON call.
type jsonScanner struct {
	data []byte
	pos  int
	// block is the unused rest of the current block of nodes.
	block []yaml.Node
	// stack collects the children of the open containers, so that each
	// container gets a Content slice of exactly its size.
	stack []*yaml.Node
	// keys holds one node per distinct object key, shared by all its
	// occurrences (the decoder only reads nodes): a config repeats a few
	// dozen key names thousands of times.
	keys map[string]*yaml.Node
}

// nodeBlock is how many nodes are allocated at once.
const nodeBlock = 256

func (s *jsonScanner) node(kind yaml.Kind, tag, value string) *yaml.Node {
	if len(s.block) == 0 {
		s.block = make([]yaml.Node, nodeBlock)
	}
	n := &s.block[0]
	s.block = s.block[1:]
	n.Kind, n.Tag, n.Value = kind, tag, value
	return n
}

// space skips JSON whitespace.
func (s *jsonScanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans the value at s.pos, at nesting depth depth.
func (s *jsonScanner) value(depth int) (*yaml.Node, bool) {
	if depth > maxJSONDepth || s.pos >= len(s.data) {
		return nil, false
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		return s.node(yaml.ScalarNode, "!!str", v), true
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case s.literal("true"):
		return s.node(yaml.ScalarNode, "!!bool", "true"), true
	case s.literal("false"):
		return s.node(yaml.ScalarNode, "!!bool", "false"), true
	case s.literal("null"):
		return s.node(yaml.ScalarNode, "!!null", "null"), true
	}
	return nil, false
}

// literal consumes lit if the input continues with it.
func (s *jsonScanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		return false
	}
	s.pos += len(lit)
	return true
}

func (s *jsonScanner) object(depth int) (*yaml.Node, bool) {
	s.pos++ // '{'
	base := len(s.stack)
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return s.node(yaml.MappingNode, "!!map", ""), true
	}
	for {
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return nil, false
		}
		kn, ok := s.key()
		if !ok {
			return nil, false
		}
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return nil, false
		}
		s.pos++
		s.space()
		v, ok := s.value(depth + 1)
		if !ok {
			return nil, false
		}
		s.stack = append(s.stack, kn, v)
		closed, ok := s.next('}')
		if !ok {
			return nil, false
		}
		if closed {
			return s.container(yaml.MappingNode, "!!map", base), true
		}
	}
}

func (s *jsonScanner) array(depth int) (*yaml.Node, bool) {
	s.pos++ // '['
	base := len(s.stack)
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return s.node(yaml.SequenceNode, "!!seq", ""), true
	}
	for {
		v, ok := s.value(depth + 1)
		if !ok {
			return nil, false
		}
		s.stack = append(s.stack, v)
		closed, ok := s.next(']')
		if !ok {
			return nil, false
		}
		if closed {
			return s.container(yaml.SequenceNode, "!!seq", base), true
		}
	}
}

// next consumes what follows a member or element: a ',' (and the space
// after it), or end, which closes the container. It reports whether end
// came, and false for ok on anything else.
func (s *jsonScanner) next(end byte) (closed, ok bool) {
	s.space()
	if s.pos >= len(s.data) {
		return false, false
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		s.space()
		return false, true
	case end:
		s.pos++
		return true, true
	}
	return false, false
}

// container pops the children collected since base into a new node.
func (s *jsonScanner) container(kind yaml.Kind, tag string, base int) *yaml.Node {
	n := s.node(kind, tag, "")
	n.Content = slices.Clone(s.stack[base:])
	clear(s.stack[base:])
	s.stack = s.stack[:base]
	return n
}

// str scans a string token and returns its value.
func (s *jsonScanner) str() (string, bool) {
	raw, plain, ok := s.strToken()
	if !ok {
		return "", false
	}
	if plain {
		return string(raw), true
	}
	return unquoteJSON(raw)
}

// key scans an object key and returns its node, shared with every other
// occurrence of the key. Looking a plain key up by its bytes allocates
// nothing.
func (s *jsonScanner) key() (*yaml.Node, bool) {
	raw, plain, ok := s.strToken()
	if !ok {
		return nil, false
	}
	var k string
	if plain {
		if n, ok := s.keys[string(raw)]; ok {
			return n, true
		}
		k = string(raw)
	} else if k, ok = unquoteJSON(raw); !ok {
		return nil, false
	}
	n, ok := s.keys[k]
	if !ok {
		n = s.node(yaml.ScalarNode, "!!str", k)
		s.keys[k] = n
	}
	return n, true
}

// strToken scans a string token and returns its contents, raw, and
// whether they are its value as they are: no escapes, valid UTF-8.
func (s *jsonScanner) strToken() (raw []byte, plain, ok bool) {
	start := s.pos
	s.pos++ // '"'
	escaped, ascii := false, true
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			raw = s.data[start+1 : s.pos-1]
			return raw, !escaped && (ascii || utf8.Valid(raw)), true
		case c == '\\':
			escaped = true
			s.pos += 2
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			ascii = false
			s.pos++
		default:
			s.pos++
		}
	}
	return nil, false, false
}

// unquoteJSON decodes the contents of a string token that has escapes or
// bytes that are not valid UTF-8 with encoding/json, so that every such
// detail (surrogates, replacement of bad bytes, malformed escapes) is
// exactly its own.
func unquoteJSON(raw []byte) (string, bool) {
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var v string
	if json.Unmarshal(q, &v) != nil {
		return "", false
	}
	return v, true
}

// number scans a number token; its text is kept as written, as
// json.Decoder.UseNumber keeps it.
func (s *jsonScanner) number() (*yaml.Node, bool) {
	d := s.data
	start := s.pos
	i := start
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		return nil, false
	}
	tag := "!!int"
	if i < len(d) && d[i] == '.' {
		tag = "!!float"
		j := digits(d, i+1)
		if j == i+1 {
			return nil, false
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		tag = "!!float"
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return nil, false
		}
		i = j
	}
	s.pos = i
	return s.node(yaml.ScalarNode, tag, string(d[start:i])), true
}

// digits returns the index of the first non-digit at or after i.
func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// jsonValue builds the node for the value starting with tok.
func jsonValue(dec *json.Decoder, tok json.Token, depth int) (*yaml.Node, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("nesting too deep")
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return jsonObject(dec, depth)
		}
		return jsonArray(dec, depth)
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(t), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(t)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func jsonObject(dec *json.Decoder, depth int) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("object key must be a string, got %v", k)
		}
		vt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		v, err := jsonValue(dec, vt, depth+1)
		if err != nil {
			return nil, err
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	return n, nil
}

func jsonArray(dec *json.Decoder, depth int) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for dec.More() {
		vt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		v, err := jsonValue(dec, vt, depth+1)
		if err != nil {
			return nil, err
		}
		n.Content = append(n.Content, v)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, err
	}
	return n, nil
}

// jsonError adds a line and column to JSON syntax errors.
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("json: %w", err)
	}
	off := min(int(se.Offset), len(data))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("json: line %d column %d: %w", line, col, err)
}
