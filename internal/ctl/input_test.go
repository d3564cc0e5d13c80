package ctl

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCtlYAMLToJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		in      string
		want    string // compact JSON; "" when an error is wanted
		wantErr string
	}{
		{"scalars keep their types", "a: 1\nb: 1.5\nc: true\nd: null\ne: \"1\"\nf: 0x10\ng: -3", `{"a":1,"b":1.5,"c":true,"d":null,"e":"1","f":16,"g":-3}`, ""},
		{"durations and sizes stay strings", "timeout: 5s\nsize: 1MB", `{"size":"1MB","timeout":"5s"}`, ""},
		{"timestamps stay strings", "at: 2026-01-02\n2026-01-03: [2001-12-14t21:59:43.10-05:00]", `{"2026-01-03":["2001-12-14t21:59:43.10-05:00"],"at":"2026-01-02"}`, ""},
		{"yaml 1.1 booleans are strings", "a: yes\nb: off", `{"a":"yes","b":"off"}`, ""},
		{"large integers stay integers", "n: 9007199254740993", `{"n":9007199254740993}`, ""},
		{"nested", "routes:\n  - id: a\n    methods: [GET, HEAD]\n", `{"routes":[{"id":"a","methods":["GET","HEAD"]}]}`, ""},
		{"anchors and merge keys", "base: &b {x: 1}\nmine:\n  <<: *b\n  y: 2\n", `{"base":{"x":1},"mine":{"x":1,"y":2}}`, ""},
		{"top-level list is sent as is", "- 1\n- 2", `[1,2]`, ""},
		{"quoted numeric key is a string", "\"1\": x", `{"1":"x"}`, ""},
		{"integer key", "1: x", "", "top level: mapping key 1 (int) is not a string; quote it"},
		{"boolean key", "a:\n  true: x", "", "a: mapping key true (bool) is not a string"},
		{"null key", "a:\n  - ~: x", "", "a[0]: mapping key <nil> (<nil>) is not a string"},
		{"float key deep", "routes:\n  - headers:\n      1.5: x", "", "routes[0].headers: mapping key 1.5 (float64) is not a string"},
		{"infinity", "a: [.inf]", "", "a[0]: +Inf has no JSON form"},
		{"not a number", "a: .nan", "", "a: NaN has no JSON form"},
		{"two documents", "a: 1\n---\nb: 2", "", "more than one YAML document"},
		{"empty", "", "", "empty document"},
		{"only comments", "# nothing\n", "", "empty document"},
		{"duplicate key", "a: 1\na: 2", "", "already defined"},
		{"syntax error", "a: [", "", "yaml:"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := yamlToJSON([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("yamlToJSON(%q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("yamlToJSON(%q) error = %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Errorf("yamlToJSON(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestCtlJSONDoc(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, in, want, wantErr string
	}{
		{"compacted, numbers as written", "{\n  \"n\": 12345678901234567890,\n  \"f\": 1.50\n}\n", `{"n":12345678901234567890,"f":1.50}`, ""},
		{"trailing data", `{"a":1} {"b":2}`, "", "more than one JSON value"},
		{"empty", " \n", "", "empty document"},
		{"malformed", `{"a":}`, "", "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := jsonDoc([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("jsonDoc(%q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("jsonDoc(%q) = %s, %v, want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestCtlReadConfigFormat(t *testing.T) {
	t.Parallel()
	yamlFile := writeFile(t, "c.YAML", "a: 1\n")
	jsonFile := writeFile(t, "c.json", `{"a": 1}`)
	tests := []struct {
		desc, path string
		format     Format
		stdin      string
		want       string
		wantErr    string
	}{
		{"extension, any case", yamlFile, 0, "", `{"a":1}`, ""},
		{"json extension", jsonFile, 0, "", `{"a":1}`, ""},
		{"format beats extension", jsonFile, FormatYAML, "", `{"a":1}`, ""},
		{"stdin is yaml by default", "-", 0, "a: 1", `{"a":1}`, ""},
		{"stdin as json", "-", FormatJSON, `{"a": 1}`, `{"a":1}`, ""},
		{"stdin named in errors", "-", FormatJSON, `{`, "", "stdin: "},
		{"json file parsed as json", jsonFile + ".yaml", 0, "", "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := ReadConfig(tc.path, tc.format, strings.NewReader(tc.stdin))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadConfig(%q) error = %v, want one containing %q", tc.path, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("ReadConfig(%q) = %s, %v, want %s", tc.path, got, err, tc.want)
			}
		})
	}
}

// FuzzYAMLToJSON checks that any YAML either fails cleanly or becomes
// valid JSON.
func FuzzCtlYAMLToJSON(f *testing.F) {
	for _, seed := range []string{
		cfgYAML,
		"1: x",                        // non-string key
		"a: &a [*a]",                  // recursive alias
		"<<: {a: 1}",                  // merge at the top
		"a: !!binary aGVsbG8=",        // binary scalar
		"? [a, b]\n: c",               // complex key
		"a: .inf",                     // no JSON form
		"a: 1e400",                    // overflows float64
		"a: 123456789012345678901234", // beyond uint64
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := yamlToJSON([]byte(in))
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("yamlToJSON(%q) = %q, not valid JSON", in, out)
		}
	})
}
