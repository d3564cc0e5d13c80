package audit

import (
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
)

// forge returns a line with a correct hash of its own, chained to prevHash:
// what someone who knows the format but not the chain would insert.
func forge(t *testing.T, prevHash string) string {
	t.Helper()
	r := rec(99)
	r.PrevHash = prevHash
	line, _, err := seal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(line)
}

var hashField = regexp.MustCompile(`"hash":"[0-9a-f]*",`)

func TestVerify(t *testing.T) {
	_, lines := writeFile(t, 5)
	hash := func(i int) string { return hashField.FindString(lines[i-1])[8:72] }
	tests := []struct {
		desc       string
		tamper     func(ls []string) []string // gets a copy of the 5 lines
		wantN      int
		wantRecord int // 0: intact
		wantReason string
	}{
		{
			desc:   "intact",
			tamper: func(ls []string) []string { return ls },
			wantN:  5,
		},
		{
			desc:   "empty file",
			tamper: func([]string) []string { return nil },
			wantN:  0,
		},
		{
			desc: "field value edited in record 2",
			tamper: func(ls []string) []string {
				ls[1] = strings.Replace(ls[1], `"actor":"admin 127.0.0.1"`, `"actor":"admin 10.0.0.9"`, 1)
				return ls
			},
			wantN: 1, wantRecord: 2,
			wantReason: "hash mismatch: contents were modified",
		},
		{
			desc:   "record 3 deleted: the former record 4 is now record 3",
			tamper: func(ls []string) []string { return append(ls[:2], ls[3:]...) },
			wantN:  2, wantRecord: 3,
			wantReason: "prev_hash does not match record 2's hash: a record was removed, reordered or inserted",
		},
		{
			desc:   "records 2 and 3 swapped",
			tamper: func(ls []string) []string { ls[1], ls[2] = ls[2], ls[1]; return ls },
			wantN:  1, wantRecord: 2,
			wantReason: "prev_hash does not match record 1's hash: a record was removed, reordered or inserted",
		},
		{
			desc: "forged record with its own hash right and prev_hash wrong",
			tamper: func(ls []string) []string {
				return append(ls[:2], append([]string{forge(t, strings.Repeat("0", 64))}, ls[2:]...)...)
			},
			wantN: 2, wantRecord: 3,
			wantReason: "prev_hash does not match record 2's hash: a record was removed, reordered or inserted",
		},
		{
			desc: "forged record chained to record 2: the next one breaks",
			tamper: func(ls []string) []string {
				return append(ls[:2], append([]string{forge(t, hash(2))}, ls[2:]...)...)
			},
			wantN: 3, wantRecord: 4,
			wantReason: "prev_hash does not match record 3's hash: a record was removed, reordered or inserted",
		},
		{
			desc:   "first record removed",
			tamper: func(ls []string) []string { return ls[1:] },
			wantN:  0, wantRecord: 1,
			wantReason: "prev_hash is not empty in the first record: records before it were removed",
		},
		{
			desc:   "last line without its newline",
			tamper: func(ls []string) []string { ls[4] = strings.TrimSuffix(ls[4], "\n"); return ls },
			wantN:  4, wantRecord: 5,
			wantReason: "last line has no newline: torn write",
		},
		{
			desc:   "last line cut in half",
			tamper: func(ls []string) []string { ls[4] = ls[4][:len(ls[4])/2]; return ls },
			wantN:  4, wantRecord: 5,
			wantReason: "last line has no newline: torn write",
		},
		{
			desc:   "blank line",
			tamper: func(ls []string) []string { return append(ls[:2], append([]string{"\n"}, ls[2:]...)...) },
			wantN:  2, wantRecord: 3,
			wantReason: "blank line: an append-only log never has one",
		},
		{
			desc:   "blank line at the end",
			tamper: func(ls []string) []string { return append(ls, "\n") },
			wantN:  5, wantRecord: 6,
			wantReason: "blank line: an append-only log never has one",
		},
		{
			desc:   "garbage",
			tamper: func(ls []string) []string { ls[2] = "{\"action\":\"apply\",garbage\n"; return ls },
			wantN:  2, wantRecord: 3,
			wantReason: "not valid JSON",
		},
		{
			desc:   "two objects on one line",
			tamper: func(ls []string) []string { ls[2] = strings.TrimSuffix(ls[2], "\n") + ls[3]; return ls },
			wantN:  2, wantRecord: 3,
			wantReason: "not valid JSON",
		},
		{
			desc:   "not an object",
			tamper: func(ls []string) []string { ls[0] = "[1,2]\n"; return ls },
			wantN:  0, wantRecord: 1,
			wantReason: "not a JSON object",
		},
		{
			desc:   "hash removed",
			tamper: func(ls []string) []string { ls[2] = hashField.ReplaceAllString(ls[2], ""); return ls },
			wantN:  2, wantRecord: 3,
			wantReason: `missing field "hash"`,
		},
		{
			desc: "detail removed",
			tamper: func(ls []string) []string {
				ls[2] = regexp.MustCompile(`"detail":"[^"]*",`).ReplaceAllString(ls[2], "")
				return ls
			},
			wantN: 2, wantRecord: 3,
			wantReason: `missing field "detail"`,
		},
		{
			desc: "wrong type",
			tamper: func(ls []string) []string {
				ls[1] = strings.Replace(ls[1], `"result":"accepted"`, `"result":1`, 1)
				return ls
			},
			wantN: 1, wantRecord: 2,
			wantReason: `field "result" is not a string`,
		},
		{
			desc: "time not a time",
			tamper: func(ls []string) []string {
				ls[1] = regexp.MustCompile(`"time":"[^"]*"`).ReplaceAllString(ls[1], `"time":"yesterday"`)
				return ls
			},
			wantN: 1, wantRecord: 2,
			wantReason: `field "time" is not an RFC 3339 time`,
		},
		{
			desc:   "reformatted, same contents",
			tamper: func(ls []string) []string { ls[1] = "{ " + ls[1][1:]; return ls },
			wantN:  1, wantRecord: 2,
			wantReason: "not in canonical form (compact, keys sorted, no HTML escaping): the line was rewritten",
		},
		{
			desc: "converted to CRLF",
			tamper: func(ls []string) []string {
				return strings.SplitAfter(strings.ReplaceAll(strings.Join(ls, ""), "\n", "\r\n"), "\n")
			},
			wantN: 0, wantRecord: 1,
			wantReason: "not in canonical form (compact, keys sorted, no HTML escaping): the line was rewritten",
		},
		{
			desc: "duplicate key hiding the hashed value",
			tamper: func(ls []string) []string {
				ls[1] = strings.Replace(ls[1], `{"action":"apply",`, `{"action":"rollback","action":"apply",`, 1)
				return ls
			},
			wantN: 1, wantRecord: 2,
			wantReason: "not in canonical form (compact, keys sorted, no HTML escaping): the line was rewritten",
		},
		{
			desc:   "line over 1 MiB",
			tamper: func(ls []string) []string { ls[3] = strings.Repeat(" ", maxLine) + ls[3]; return ls },
			wantN:  3, wantRecord: 4,
			wantReason: "line longer than 1048576 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			data := strings.Join(tt.tamper(append([]string(nil), lines...)), "")
			n, err := Verify(strings.NewReader(data))
			if n != tt.wantN {
				t.Errorf("Verify() = %d records, want %d", n, tt.wantN)
			}
			if tt.wantRecord == 0 {
				if err != nil {
					t.Errorf("Verify() error = %v, want nil", err)
				}
				return
			}
			var be *BreakError
			if !errors.As(err, &be) {
				t.Fatalf("Verify() error = %v, want a *BreakError", err)
			}
			want := BreakError{Record: tt.wantRecord, Line: tt.wantRecord, Reason: tt.wantReason}
			if *be != want {
				t.Errorf("Verify() error = %+v, want %+v", *be, want)
			}
		})
	}
}

func TestBreakErrorMessage(t *testing.T) {
	err := &BreakError{Record: 3, Line: 3, Reason: "hash mismatch: contents were modified"}
	if got, want := err.Error(), "record 3 (line 3): hash mismatch: contents were modified"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestVerifyReadError(t *testing.T) {
	_, lines := writeFile(t, 2)
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader(strings.Join(lines, "")), iotest.ErrReader(boom))
	n, err := Verify(r)
	var be *BreakError
	if n != 2 || !errors.Is(err, boom) || errors.As(err, &be) {
		t.Errorf("Verify(failing reader) = %d, %v, want 2 and the read error, not a break", n, err)
	}
}

// FuzzVerify feeds arbitrary bytes to Verify: it must never panic, and its
// two answers must agree with each other and with the file's lines.
func FuzzVerify(f *testing.F) {
	var lines []string
	f.Add([]byte(nil))
	for i := 1; i <= 3; i++ {
		prev := ""
		if i > 1 {
			prev = hashField.FindString(lines[i-2])[8:72]
		}
		r := rec(i)
		r.PrevHash = prev
		if i == 2 {
			r.Detail = map[string]any{"z": []any{1.5, nil, true}, "a": "<&> ü"}
		}
		line, _, err := seal(r)
		if err != nil {
			f.Fatal(err)
		}
		lines = append(lines, string(line))
	}
	valid := strings.Join(lines, "")
	f.Add([]byte(valid))                                                             // intact
	f.Add([]byte(lines[0] + lines[2]))                                               // record removed
	f.Add([]byte(strings.TrimSuffix(valid, "\n")))                                   // torn
	f.Add([]byte(strings.Replace(valid, "accepted", "rejected", 1)))                 // modified
	f.Add([]byte(lines[0] + "\n" + lines[1]))                                        // blank line
	f.Add([]byte(`{"hash":"","prev_hash":"","time":"2026-01-01T00:00:00Z"}` + "\n")) // fields missing

	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Verify(strings.NewReader(string(data)))
		if err == nil {
			if want := strings.Count(string(data), "\n"); n != want {
				t.Errorf("Verify() = %d, nil for %d lines", n, want)
			}
			return
		}
		var be *BreakError
		if !errors.As(err, &be) {
			t.Fatalf("Verify() error = %v, want a *BreakError (the reader never fails)", err)
		}
		if be.Record != n+1 || be.Line != n+1 || be.Reason == "" {
			t.Errorf("Verify() = %d, %+v: want the break right after the intact records, with a reason", n, *be)
		}
	})
}
