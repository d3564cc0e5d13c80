package config

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse in both formats. Properties:
// Parse and Validate never panic, and whenever Parse succeeds the
// canonical form parses back (as JSON) to a config with the same version,
// so Canonical is a faithful, stable serialisation.
func FuzzParse(f *testing.F) {
	// Seeds: the shipped examples, the version fixtures, and small
	// documents that reach each decoder branch (aliases and merges,
	// numbers as strings, nulls, sizes, durations, errors).
	for _, name := range []string{"basic.yaml", "full.yaml"} {
		if b, err := os.ReadFile(examplesDir + "/" + name); err == nil {
			f.Add(b, true)
		}
	}
	f.Add([]byte(versionYAML), true)
	f.Add([]byte(versionSpelling), true)
	f.Add([]byte(versionJSON), false)
	f.Add([]byte(`{"server":{"max_header_bytes":"1MB","idle_timeout":0},"routes":[{"id":"a","headers":{"X":1}}]}`), false)
	f.Add([]byte("pools: [&a {id: a, endpoints: [{address: 'h:1', weight: 3}]}, {<<: *a, id: b}]"), true)
	f.Add([]byte("policies: [{id: p, retries: {retry_on: [502, 5xx]}, rate_limit: {requests_per_second: 0.5}}]"), true)
	f.Add([]byte("tracing: {sample_ratio: 1e-3}\ntls: {min_version: 1.3}\nshutdown: {drain_delay: 0}"), true)
	f.Add([]byte("routes: [~, {id: x, methods: [get]}]\nserver: {h2c: yes}"), true)
	f.Add([]byte(`{"routes": [{"id": "a", "id": "b"}]}`), false)
	f.Add([]byte("rollout: {stages: [{name: a, fleet_percent: 5, bake_time: 1h}], health_gates: [{metric: p95_latency, threshold: 500ms}]}"), true)
	f.Fuzz(func(t *testing.T, data []byte, isYAML bool) {
		format := FormatJSON
		if isYAML {
			format = FormatYAML
		}
		c, err := Parse(data, format)
		if err != nil {
			return
		}
		_ = c.Validate()
		canon := c.Canonical()
		back, err := Parse(canon, FormatJSON)
		if err != nil {
			t.Fatalf("Parse(Canonical()) = %v\ninput: %q\ncanonical: %s", err, data, canon)
		}
		if got, want := back.Version(), c.Version(); got != want {
			t.Fatalf("Parse(Canonical()).Version() = %s, want %s\ninput: %q\ncanonical: %s\nagain:     %s", got, want, data, canon, back.Canonical())
		}
	})
}
