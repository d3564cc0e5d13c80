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
	"strings"

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
			d.value(root, reflect.ValueOf(c).Elem(), "")
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
// decoder serves both formats. It uses encoding/json's tokenizer rather than
// the YAML parser so that JSON is held to JSON's grammar and duplicate keys
// survive to be reported.
func jsonNode(data []byte) (*yaml.Node, error) {
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
