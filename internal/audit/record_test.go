package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

// hashOf is the test's own reading of SPEC section 8, independent of sum:
// SHA-256 of the hand-written canonical body, in lower-case hex.
func hashOf(body string) string {
	h := sha256.Sum256([]byte(body))
	return hex.EncodeToString(h[:])
}

// TestSealGolden pins the exact bytes of a line against bodies written by
// hand, so a change of canonical form (key order, escaping, number or time
// format) cannot pass unnoticed: it would break every existing file.
func TestSealGolden(t *testing.T) {
	tests := []struct {
		desc     string
		rec      Record
		wantBody string // canonical JSON without "hash"
	}{
		{
			desc: "first record, string detail",
			rec: Record{Time: t0, Actor: "admin 127.0.0.1", Action: "apply", Version: "v2",
				PreviousVersion: "v1", Result: "accepted", Detail: "routes: 3"},
			wantBody: `{"action":"apply","actor":"admin 127.0.0.1","detail":"routes: 3","prev_hash":"",` +
				`"previous_version":"v1","result":"accepted","time":"2026-01-02T03:04:05.000000006Z","version":"v2"}`,
		},
		{
			desc:     "nil detail is written as null",
			rec:      Record{Time: t0, Actor: "file", Action: "reject", Result: "rejected", PrevHash: "ab"},
			wantBody: `{"action":"reject","actor":"file","detail":null,"prev_hash":"ab","previous_version":"","result":"rejected","time":"2026-01-02T03:04:05.000000006Z","version":""}`,
		},
		{
			desc: "nested detail: keys sorted at every depth, no HTML escaping, numbers as written",
			rec: Record{Time: t0, Actor: "startup", Action: "apply", Result: "accepted",
				Detail: json.RawMessage(`{"z":1.50,"a":{"y":"<b>&</b>","b":[3,1e2]},"ü":"日本 ✓"}`)},
			wantBody: `{"action":"apply","actor":"startup","detail":{"a":{"b":[3,1e2],"y":"<b>&</b>"},"z":1.50,"ü":"日本 ✓"},` +
				`"prev_hash":"","previous_version":"","result":"accepted","time":"2026-01-02T03:04:05.000000006Z","version":""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			line, rec, err := seal(tt.rec)
			if err != nil {
				t.Fatalf("seal: %v", err)
			}
			wantHash := hashOf(tt.wantBody)
			// "hash" sorts between "detail" and "prev_hash".
			wantLine := strings.Replace(tt.wantBody, `,"prev_hash"`, `,"hash":"`+wantHash+`","prev_hash"`, 1) + "\n"
			if string(line) != wantLine {
				t.Errorf("line =\n%s\nwant\n%s", line, wantLine)
			}
			if rec.Hash != wantHash {
				t.Errorf("Hash = %s, want %s", rec.Hash, wantHash)
			}
			if strings.Contains(string(line), `\u00`) {
				t.Errorf("line has \\u00 escapes: %s", line)
			}
		})
	}
}

// TestSealDetailForms checks that a detail's hash depends on its JSON value
// only, not on the Go type that carried it or the order it was written in:
// admin may build a map where control passes raw JSON.
func TestSealDetailForms(t *testing.T) {
	type inner struct {
		Y string `json:"y"`
		B []int  `json:"b"`
	}
	type outer struct {
		Z int    `json:"z"`
		U string `json:"ü"`
		A inner  `json:"a"`
	}
	forms := []struct {
		desc   string
		detail any
	}{
		{"raw JSON, unsorted", json.RawMessage(`{"z":1,"ü":"日本","a":{"y":"<>&","b":[3,1]}}`)},
		{"raw JSON, spaced", json.RawMessage("{ \"a\" : {\"b\":[3, 1],\"y\":\"\\u003c>&\"},\n\"z\":1,\"ü\":\"日本\"}")},
		{"map", map[string]any{"ü": "日本", "z": 1, "a": map[string]any{"y": "<>&", "b": []int{3, 1}}}},
		{"struct, fields unsorted", outer{Z: 1, U: "日本", A: inner{Y: "<>&", B: []int{3, 1}}}},
	}
	var want string
	for i, f := range forms {
		line, rec, err := seal(Record{Time: t0, Actor: "admin 127.0.0.1", Action: "apply", Detail: f.detail})
		if err != nil {
			t.Fatalf("%s: seal: %v", f.desc, err)
		}
		if !strings.Contains(string(line), `"detail":{"a":{"b":[3,1],"y":"<>&"},"z":1,"ü":"日本"}`) {
			t.Errorf("%s: line = %s, want the sorted, unescaped detail", f.desc, line)
		}
		if i == 0 {
			want = rec.Hash
			continue
		}
		if rec.Hash != want {
			t.Errorf("%s: Hash = %s, want %s (as %s)", f.desc, rec.Hash, want, forms[0].desc)
		}
	}
}

func TestSealRefuses(t *testing.T) {
	tests := []struct {
		desc   string
		detail any
	}{
		{"unencodable detail", make(chan int)},
		{"line over 1 MiB", strings.Repeat("x", maxLine)},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if _, _, err := seal(Record{Time: t0, Detail: tt.detail}); err == nil {
				t.Errorf("seal(%s) = nil error, want one", tt.desc)
			}
		})
	}
}
