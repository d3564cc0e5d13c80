package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The apply pipeline's fast paths (scanJSON, appendCanonical) must agree
// with the reference implementations they stand in for (tokenJSONNode,
// canonicalJSON) on every input they accept.

// jsonCorpus is JSON, well formed or not, that reaches each branch of
// scanJSON and of the tokenizer's errors.
var jsonCorpus = []string{
	``, ` `, "\n\t ", `null`, ` null `, `{}`, `[]`, `{ }`, `[ ]`, `"x"`, `1`, `true`, `false`,
	`{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":[1,2,{"c":null}]}}`, `[1,[2,[3]]]`,
	`{"a":-0}`, `{"a":0.5}`, `{"a":1e5}`, `{"a":1E+5}`, `{"a":-1.25e-3}`, `{"a":123456789012345678901234567890}`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":+1}`, `{"a":0x10}`,
	`{"a":"\u00e9\ud83d\ude00"}`, `{"a":"\ud800"}`, `{"a":"\/\b\f\n\r\t\"\\"}`, `{"a":"\x"}`, `{"a":"\u12"}`,
	"{\"a\":\"\xff\xfe ok\"}", "{\"\xff\":1}", "{\"a\":\"caf\xc3\xa9\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\u2028\"}",
	`{"a":1,}`, `[1,]`, `{"a" 1}`, `{"a":1 "b":2}`, `{a:1}`, `{"a":1}x`, `{"a":1} {}`, `{"a":1`, `[1`, `"abc`,
	`{"a":tru}`, `{"a":truex}`, `{"a":nul}`, `{"a":True}`, "\xef\xbb\xbf{}", `{"a":1}]`, `]`, `}`, `,`,
	`{"routes":[{"id":"a","headers":{"X":1}}],"server":{"max_header_bytes":"1MB","idle_timeout":0}}`,
	strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth),
	strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1),
}

// checkScanJSON fails when scanJSON accepts data but builds another tree
// than tokenJSONNode, or when jsonNode's answer differs from the
// tokenizer's.
func checkScanJSON(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := tokenJSONNode(data)
	if got, ok := scanJSON(data); ok {
		if wantErr != nil {
			t.Fatalf("scanJSON(%q) accepted what the tokenizer rejects: %v", data, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanJSON(%q) = %#v, want %#v", data, got, want)
		}
	}
	got, gotErr := jsonNode(data)
	if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) ||
		(gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("jsonNode(%q) = %v, %v; want %v, %v", data, got, gotErr, want, wantErr)
	}
}

func TestScanJSONMatchesTokenizer(t *testing.T) {
	t.Parallel()
	for _, doc := range jsonCorpus {
		checkScanJSON(t, []byte(doc))
	}
	for _, c := range exampleConfigs(t) {
		checkScanJSON(t, c.Canonical())
	}
	// The fast path must really be taken for ordinary documents.
	if _, ok := scanJSON([]byte(versionJSON)); !ok {
		t.Errorf("scanJSON(versionJSON) declined a well-formed document")
	}
}

// FuzzScanJSON compares scanJSON with the tokenizer on arbitrary input.
func FuzzScanJSON(f *testing.F) {
	for _, doc := range jsonCorpus {
		f.Add([]byte(doc))
	}
	f.Add([]byte(versionJSON))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScanJSON(t, data)
	})
}

// exampleConfigs returns the shipped examples and the version fixtures,
// parsed.
func exampleConfigs(t testing.TB) []*Config {
	t.Helper()
	var out []*Config
	for _, name := range []string{"basic.yaml", "full.yaml"} {
		b, err := os.ReadFile(examplesDir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse(b, FormatYAML)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	for _, doc := range []string{versionYAML, versionSpelling, versionExplicitDefaults} {
		c, err := Parse([]byte(doc), FormatYAML)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// oddConfig holds the values whose canonical spelling is delicate: every
// kind of character JSON escapes or not, invalid UTF-8, floats that
// encoding/json writes in exponent form, explicit zeros behind pointers,
// empty but non-nil slices and maps.
func oddConfig() *Config {
	ratio, zero, drain := 1e-7, 0, Duration(0)
	odd := "tab\there \"q\" back\\slash <a&b> \x01\x1f\x7f caf\xc3\xa9 bad\xff\xfe \u2028\u2029 µs"
	return &Config{
		Label:   odd,
		Server:  Server{TrustedProxies: []string{}, MaxHeaderBytes: 1 << 20},
		Tracing: &Tracing{SampleRatio: &ratio},
		Routes: []Route{{
			ID: "r", Host: `api-[0-9]+\.example\.org`, PathRegex: `/a/(b|c)+\d{2}$`,
			Methods: []string{}, Headers: map[string]string{"X-Odd": odd, "<": ">", "\u00e9": "\u2028"},
			Query: map[string]string{}, Pool: "p",
		}},
		Pools: []Pool{{ID: "p", Endpoints: []Endpoint{{Address: "127.0.0.1:1", Weight: &zero}},
			Transport: Transport{IdleTimeout: Duration(1500)}}},
		Policies: []Policy{{ID: "pol", RateLimit: &RateLimit{RequestsPerSecond: 0.5}, Timeout: Duration(90e9)}},
		Shutdown: Shutdown{DrainDelay: &drain},
		Rollout:  &Rollout{AutoRollback: &AutoRollback{ErrorBudgetBurnRate: "10x"}},
		Logging:  Logging{RedactHeaders: []string{"X-\xffBad"}},
		TLS:      &TLS{MinVersion: "1.3"},
		Redis:    &Redis{},
		Plugins:  []Plugin{},
		Cache:    []Cache{{Route: "r", VaryHeaders: []string{"Accept"}}},
		Middleware: []Chain{{ID: "c", Stages: []Stage{{Type: StageHeaderTransform,
			Config: &StageConfig{Add: map[string]string{"\xff": "a", "\xfe": "b"}}}}}},
	}
}

// manyRoutes returns a config whose canonical form is several times
// canonicalChunk, so that Version hashes it in pieces.
func manyRoutes() *Config {
	c := &Config{Pools: []Pool{{ID: "p", Endpoints: []Endpoint{{Address: "127.0.0.1:1"}}}}}
	for i := range 2000 {
		c.Routes = append(c.Routes, Route{ID: fmt.Sprintf("r%d", i), Path: fmt.Sprintf("/a/%d", i),
			Methods: []string{"GET"}, Headers: map[string]string{"X-N": strconv.Itoa(i)}, Pool: "p"})
	}
	return c
}

func TestCanonicalMatchesJSONRoundTrip(t *testing.T) {
	t.Parallel()
	configs := append(exampleConfigs(t), manyRoutes(), oddConfig(), &Config{})
	for i, c := range configs {
		if !reflect.DeepEqual(c.Clone(), c) {
			t.Errorf("config %d: Clone() differs from the original", i)
		}
		cp := c.Clone()
		cp.ApplyDefaults()
		want := canonicalJSON(cp)
		if got := c.Canonical(); !bytes.Equal(got, want) {
			t.Errorf("config %d: Canonical() =\n%s\nwant\n%s", i, got, want)
		}
		sum := sha256.Sum256(want)
		if got, want := c.Version(), hex.EncodeToString(sum[:])[:16]; got != want {
			t.Errorf("config %d: Version() = %s, want %s", i, got, want)
		}
	}
	// The fast path must really be taken for ordinary configs, and
	// declined for maps whose keys the round trip would merge.
	for i, c := range configs[:len(configs)-2] {
		cp := c.Clone()
		cp.ApplyDefaults()
		if _, ok := appendCanonical(nil, cp, nil); !ok {
			t.Errorf("config %d: appendCanonical declined it", i)
		}
	}
	odd := oddConfig()
	odd.ApplyDefaults()
	if _, ok := appendCanonical(nil, odd, nil); ok {
		t.Errorf("appendCanonical accepted map keys that are not valid UTF-8")
	}
	odd.Middleware = nil
	if _, ok := appendCanonical(nil, odd, nil); !ok {
		t.Errorf("appendCanonical declined the odd config without invalid map keys")
	}
	if got, want := appendJSONString(nil, odd.Label), canonicalJSON(&Config{Label: odd.Label}); !bytes.Contains(want, got) {
		t.Errorf("appendJSONString(%q) = %s, not in %s", odd.Label, got, want)
	}
}

// FuzzCanonical compares appendCanonical with the encoding/json round trip
// on every config the fuzzer can parse.
func FuzzCanonical(f *testing.F) {
	for _, c := range exampleConfigs(f) {
		f.Add(c.Canonical(), false)
	}
	f.Add([]byte(versionYAML), true)
	f.Add([]byte("version: \"\\t\\x01\\u2028<&>\"\nrouter: {headers: {\"\\xff\": 1}}\ntracing: {sample_ratio: 1e-9}"), true)
	f.Fuzz(func(t *testing.T, data []byte, isYAML bool) {
		format := FormatJSON
		if isYAML {
			format = FormatYAML
		}
		c, err := Parse(data, format)
		if err != nil {
			var fe Errors
			if !errors.As(err, &fe) {
				t.Fatalf("Parse error %T, want Errors", err)
			}
			return
		}
		want := canonicalJSON(c.Clone())
		if got := c.Canonical(); !bytes.Equal(got, want) {
			t.Fatalf("Canonical() =\n%s\nwant\n%s", got, want)
		}
	})
}

// refRouteSignature is the signature validation used before
// appendRouteSignature, kept as the reference for what "the same
// matchers" means.
func refRouteSignature(r *Route) string {
	kind := r.HostKind()
	host := r.Host
	if kind != HostRegex {
		host = strings.ToLower(host)
	}
	pk, pv := r.PathMatch()
	methods := slices.Clone(r.Methods)
	slices.Sort(methods)
	methods = slices.Compact(methods)
	headers := make(map[string]string, len(r.Headers))
	for k, val := range r.Headers {
		headers[textproto.CanonicalMIMEHeaderKey(k)] = val
	}
	pairs := func(m map[string]string) []string {
		var out []string
		for _, k := range sortedKeys(m) {
			out = append(out, k, m[k])
		}
		return out
	}
	return fmt.Sprintf("%d %q %d %q %q %q %q", kind, host, pk, pv, methods, pairs(headers), pairs(r.Query))
}

func TestRouteSignatureEquality(t *testing.T) {
	t.Parallel()
	routes := []Route{
		{}, {Host: "A.example.com"}, {Host: "a.example.com"}, {Host: `A\.example\.com`}, {Host: `a\.example\.com`},
		{Host: "*.Example.com"}, {Host: "*.example.com"},
		{Path: "/a"}, {PathPrefix: "/a"}, {PathRegex: "/a"}, {Path: "/a", PathPrefix: "/b"}, {Path: "/1:a"}, {Path: "/1"},
		{Methods: []string{"GET"}}, {Methods: []string{"GET", "GET"}}, {Methods: []string{"HEAD", "GET"}},
		{Methods: []string{"GET", "HEAD"}}, {Methods: []string{}}, {Methods: []string{"GET HEAD"}},
		{Headers: map[string]string{"x-a": "1"}}, {Headers: map[string]string{"X-A": "1"}},
		{Headers: map[string]string{"x-a": "1", "X-A": "1"}}, {Headers: map[string]string{"X-A": "1", "X-B": ""}},
		{Headers: map[string]string{"X-A": "1 X-B"}}, {Headers: map[string]string{}},
		{Query: map[string]string{"a": "1"}}, {Query: map[string]string{"A": "1"}}, {Query: map[string]string{"a": "1", "b": "2"}},
		{Query: map[string]string{"a": "1 b 2"}}, {Headers: map[string]string{"a": "1"}, Query: map[string]string{}},
	}
	for i := range routes {
		for j := range routes {
			a, b := &routes[i], &routes[j]
			want := refRouteSignature(a) == refRouteSignature(b)
			got := string(appendRouteSignature(nil, a)) == string(appendRouteSignature(nil, b))
			if got != want {
				t.Errorf("routes %+v and %+v: same signature = %v, want %v", *a, *b, got, want)
			}
		}
	}
}
