package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxConfigBytes bounds a config read from a file or stdin; the admin
// API refuses bodies over its own limit (32 MiB by default) anyway.
const maxConfigBytes = 64 << 20

// Format is the encoding of a config document.
type Format int

// Formats start at one so that zero means "from the file extension".
const (
	FormatYAML Format = iota + 1
	FormatJSON
)

// parseFormat parses the -format flag; "" is the zero Format.
func parseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "":
		return 0, nil
	case "yaml", "yml":
		return FormatYAML, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, &UsageError{fmt.Sprintf("bad -format %q: want yaml or json", s)}
}

// ReadConfig reads the config document at path ("-" is stdin) and
// returns it as JSON, ready to be sent as {"config": ...}. The format is
// f when set, else the extension's (.yaml, .yml, .json); stdin without f
// is YAML. The document is only converted, not validated: the server is
// the authority on what a valid config is.
func ReadConfig(path string, f Format, stdin io.Reader) (json.RawMessage, error) {
	if f == 0 {
		var err error
		if f, err = formatOf(path); err != nil {
			return nil, err
		}
	}
	data, err := readLimited(path, stdin)
	if err != nil {
		return nil, err
	}
	name := path
	if path == "-" {
		name = "stdin"
	}
	var doc json.RawMessage
	if f == FormatJSON {
		doc, err = jsonDoc(data)
	} else {
		doc, err = yamlToJSON(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return doc, nil
}

func formatOf(path string) (Format, error) {
	if path == "-" {
		return FormatYAML, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return FormatYAML, nil
	case ".json":
		return FormatJSON, nil
	}
	return 0, &UsageError{fmt.Sprintf("%s: cannot tell the format from the extension: use .yaml, .yml or .json, or -format", path)}
}

func readLimited(path string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err // *PathError already names the file
		}
		defer f.Close()
		r = f
	}
	if r == nil {
		return nil, errors.New("no stdin to read the config from")
	}
	data, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxConfigBytes>>20)
	}
	return data, nil
}

// jsonDoc checks that data is one JSON value and returns it compacted.
// Numbers keep their exact text (no float64 round trip).
func jsonDoc(data []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var doc json.RawMessage
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty document")
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// yamlToJSON decodes one YAML document and re-encodes it as JSON. YAML
// allows what JSON cannot say, so those are errors that name the path:
// mapping keys that are not strings (a bare 1, true or null key would
// silently become "1", "true" or "null", which is not what the author
// wrote), and .inf/.nan. Integers stay integers.
func yamlToJSON(data []byte) (json.RawMessage, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty document")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, errors.New("more than one YAML document (---); send one config")
	}
	timestampsAsStrings(&root)
	// Decoding the node (not walking it here) keeps yaml's own handling
	// of merge keys, duplicate keys and alias cycles and bombs.
	var doc any
	if err := root.Decode(&doc); err != nil {
		return nil, err
	}
	v, err := jsonValue(doc, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// timestampsAsStrings retags every scalar that YAML would read as a
// timestamp as a string, so that "version: 2026-01-02" reaches the server
// as written instead of as "2026-01-02T00:00:00Z" (a different config,
// with a different version hash, than the same file loaded by the proxy).
// Aliases are not followed: their targets are in the tree already.
func timestampsAsStrings(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		n.Tag = "!!str"
	}
	for _, c := range n.Content {
		timestampsAsStrings(c)
	}
}

// jsonValue returns v with every mapping turned into map[string]any,
// or an error naming the first value JSON cannot represent.
func jsonValue(v any, path string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := jsonValue(e, keyPath(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		for k := range v {
			if _, ok := k.(string); !ok {
				return nil, fmt.Errorf("%s: mapping key %v (%T) is not a string; quote it", orRoot(path), k, k)
			}
		}
		// Unreachable with yaml.v3, which only makes map[any]any when a
		// key is not a string; kept so the function is total.
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k.(string)] = e
		}
		return jsonValue(m, path)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := jsonValue(e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%s: %v has no JSON form", orRoot(path), v)
		}
	}
	return v, nil
}

func keyPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}
