package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// rec returns the i-th test record: distinct and deterministic.
func rec(i int) Record {
	return Record{
		Time:            t0.Add(time.Duration(i) * time.Second),
		Actor:           "admin 127.0.0.1",
		Action:          "apply",
		Version:         fmt.Sprintf("v%d", i),
		PreviousVersion: fmt.Sprintf("v%d", i-1),
		Result:          "accepted",
		Detail:          fmt.Sprintf("change %d", i),
	}
}

// openTemp opens a Log on a fresh file and closes it at the end of the test.
func openTemp(t *testing.T, keep int) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, keep)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

// appendN appends records 1..n and returns what Append returned.
func appendN(t *testing.T, l *Log, n int) []Record {
	t.Helper()
	var out []Record
	for i := 1; i <= n; i++ {
		r, err := l.Append(rec(i))
		if err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
		out = append(out, r)
	}
	return out
}

// writeFile writes an n-record audit file and returns its path and lines,
// "\n" included.
func writeFile(t *testing.T, n int) (string, []string) {
	t.Helper()
	l, path := openTemp(t, 0)
	appendN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.SplitAfter(string(data), "\n")[:n]
}

func TestAppendChain(t *testing.T) {
	l, path := openTemp(t, 0)
	got := appendN(t, l, 4)

	var want bytes.Buffer
	for i, r := range got {
		wantPrev := ""
		if i > 0 {
			wantPrev = got[i-1].Hash
		}
		if r.PrevHash != wantPrev {
			t.Errorf("record %d: PrevHash = %q, want %q", i+1, r.PrevHash, wantPrev)
		}
		// Recompute the hash from a body the test builds by hand.
		body := fmt.Sprintf(`{"action":"apply","actor":"admin 127.0.0.1","detail":"change %d","prev_hash":%q,`+
			`"previous_version":"v%d","result":"accepted","time":%q,"version":"v%d"}`,
			i+1, wantPrev, i, r.Time.Format(time.RFC3339Nano), i+1)
		if h := hashOf(body); r.Hash != h {
			t.Errorf("record %d: Hash = %s, want %s", i+1, r.Hash, h)
		}
		want.WriteString(strings.Replace(body, `,"prev_hash"`, `,"hash":"`+r.Hash+`","prev_hash"`, 1) + "\n")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want.String() {
		t.Errorf("file =\n%s\nwant\n%s", data, want.String())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}

func TestAppendFillsTime(t *testing.T) {
	l, err := Open("", 0)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	r, err := l.Append(Record{Action: "apply"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Time.Location() != time.UTC || r.Time.Before(before.Add(-time.Second)) || r.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("Time = %v, want about now in UTC", r.Time)
	}
	paris := time.FixedZone("CET", 3600)
	r, err = l.Append(Record{Time: t0.In(paris), Action: "apply"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Time.Equal(t0) || r.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v in UTC", r.Time, t0)
	}
}

// TestAppendFailureKeepsChain covers the promise that a failed Append
// changes nothing: the next record chains from the last one really written.
func TestAppendFailureKeepsChain(t *testing.T) {
	t.Run("unencodable detail, memory only", func(t *testing.T) {
		l, err := Open("", 0)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := l.Append(rec(1))
		if _, err := l.Append(Record{Detail: func() {}}); err == nil {
			t.Fatal("Append(func detail) = nil error, want one")
		}
		next, err := l.Append(rec(2))
		if err != nil {
			t.Fatal(err)
		}
		if next.PrevHash != first.Hash {
			t.Errorf("PrevHash after a failed Append = %s, want %s", next.PrevHash, first.Hash)
		}
		if n := len(l.Recent(0)); n != 2 {
			t.Errorf("len(Recent(0)) = %d, want 2", n)
		}
	})

	tests := []struct {
		desc      string
		failWrite bool // write half the line, then fail
		failSync  bool
	}{
		{desc: "torn write", failWrite: true},
		{desc: "failed fsync", failSync: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			l, path := openTemp(t, 0)
			written := appendN(t, l, 2)
			l.f = &faultyFile{File: l.f.(*os.File), failWrite: tt.failWrite, failSync: tt.failSync}
			if _, err := l.Append(rec(3)); err == nil {
				t.Fatal("Append with a failing file = nil error, want one")
			}
			r, err := l.Append(rec(4))
			if err != nil {
				t.Fatalf("Append after the failure: %v", err)
			}
			if r.PrevHash != written[1].Hash {
				t.Errorf("PrevHash = %s, want record 2's hash %s", r.PrevHash, written[1].Hash)
			}
			if got := l.Recent(0); len(got) != 3 || got[1].Hash != written[1].Hash {
				t.Errorf("Recent(0) has %d records, want 3 without the failed one", len(got))
			}
			n, err := verifyFile(t, path)
			if n != 3 || err != nil {
				t.Errorf("Verify(file) = %d, %v, want 3, nil", n, err)
			}
		})
	}

	t.Run("undo fails too", func(t *testing.T) {
		l, path := openTemp(t, 0)
		appendN(t, l, 1)
		l.f = &faultyFile{File: l.f.(*os.File), failWrite: true, failTruncate: true}
		for i := range 2 {
			_, err := l.Append(rec(2))
			if err == nil || !strings.Contains(err.Error(), "inspect the file") {
				t.Errorf("Append %d after a failed undo = %v, want an error asking to inspect the file", i+1, err)
			}
		}
		if n, err := verifyFile(t, path); err == nil {
			t.Errorf("Verify(file) = %d, nil; the fragment should be there to inspect", n)
		}
	})
}

// faultyFile fails on demand: the next write or sync once, truncates
// always. A failing write first writes half the line, like a disk filling
// up in the middle of it.
type faultyFile struct {
	*os.File
	failWrite, failSync, failTruncate bool
}

func (f *faultyFile) Write(b []byte) (int, error) {
	if !f.failWrite {
		return f.File.Write(b)
	}
	f.failWrite = false
	n, _ := f.File.Write(b[:len(b)/2])
	return n, errors.New("no space left on device")
}

func (f *faultyFile) Sync() error {
	if !f.failSync {
		return f.File.Sync()
	}
	f.failSync = false
	return errors.New("input/output error")
}

func (f *faultyFile) Truncate(size int64) error {
	if f.failTruncate {
		return errors.New("input/output error")
	}
	return f.File.Truncate(size)
}

func verifyFile(t *testing.T, path string) (int, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(f)
}

func TestOpenContinuesChain(t *testing.T) {
	l, path := openTemp(t, 0)
	first := appendN(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err := Open(path, 2)
	if err != nil {
		t.Fatalf("re-Open: %v", err)
	}
	defer l.Close()
	if got, want := l.Recent(0), []Record{first[2], first[1]}; !reflect.DeepEqual(got, want) {
		t.Errorf("Recent(0) after re-Open =\n%+v\nwant\n%+v", got, want)
	}
	r, err := l.Append(rec(4))
	if err != nil {
		t.Fatal(err)
	}
	if r.PrevHash != first[2].Hash {
		t.Errorf("PrevHash after re-Open = %s, want record 3's hash %s", r.PrevHash, first[2].Hash)
	}
	if n, err := verifyFile(t, path); n != 4 || err != nil {
		t.Errorf("Verify(file) = %d, %v, want 4, nil", n, err)
	}
}

func TestRecent(t *testing.T) {
	tests := []struct {
		desc     string
		keep     int
		appended int
		n        int
		want     []int // record numbers, newest first
	}{
		{desc: "all, ring not full", keep: 10, appended: 2, n: 0, want: []int{2, 1}},
		{desc: "all, ring wrapped", keep: 3, appended: 5, n: 0, want: []int{5, 4, 3}},
		{desc: "negative n means all", keep: 3, appended: 7, n: -1, want: []int{7, 6, 5}},
		{desc: "fewer than kept", keep: 3, appended: 5, n: 2, want: []int{5, 4}},
		{desc: "more than kept", keep: 3, appended: 4, n: 10, want: []int{4, 3, 2}},
		{desc: "ring exactly full", keep: 3, appended: 3, n: 0, want: []int{3, 2, 1}},
		{desc: "empty", keep: 3, appended: 0, n: 0, want: []int{}},
		{desc: "default keep", keep: 0, appended: 3, n: 1, want: []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			l, err := Open("", tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			appended := appendN(t, l, tt.appended)
			got := l.Recent(tt.n)
			want := make([]Record, len(tt.want))
			for i, n := range tt.want {
				want[i] = appended[n-1]
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Recent(%d) = %v, want records %v", tt.n, versions(got), tt.want)
			}
		})
	}
}

func versions(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Version)
	}
	return out
}

// TestRecentCopies makes sure callers cannot reach the log's memory through
// what it hands out: admin may render or trim a Detail in place.
func TestRecentCopies(t *testing.T) {
	l, err := Open("", 0)
	if err != nil {
		t.Fatal(err)
	}
	detail := map[string]any{"routes": []any{"a", "b"}}
	r, err := l.Append(Record{Action: "apply", Detail: detail})
	if err != nil {
		t.Fatal(err)
	}
	detail["routes"] = "changed by the caller"
	r.Detail.(map[string]any)["routes"] = "changed via Append's result"
	got := l.Recent(1)
	got[0].Detail.(map[string]any)["routes"].([]any)[0] = "changed via Recent's result"
	got[0].Action = "changed"

	again := l.Recent(1)[0]
	if want := map[string]any{"routes": []any{"a", "b"}}; !reflect.DeepEqual(again.Detail, want) || again.Action != "apply" {
		t.Errorf("Recent(1)[0] = %+v, want the record as appended", again)
	}
}

func TestOpenRefusesBrokenFile(t *testing.T) {
	tests := []struct {
		desc       string
		tamper     func(lines []string) []string
		wantRecord int
		wantReason string
	}{
		{
			desc:       "modified record",
			tamper:     func(ls []string) []string { ls[1] = strings.Replace(ls[1], "accepted", "rejected", 1); return ls },
			wantRecord: 2,
			wantReason: "hash mismatch: contents were modified",
		},
		{
			desc:       "torn last line",
			tamper:     func(ls []string) []string { ls[2] = ls[2][:len(ls[2])/2]; return ls },
			wantRecord: 3,
			wantReason: "last line has no newline: torn write",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			path, lines := writeFile(t, 3)
			data := []byte(strings.Join(tt.tamper(lines), ""))
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := Open(path, 0)
			if err == nil {
				l.Close()
				t.Fatal("Open(broken file) = nil error, want one")
			}
			var be *BreakError
			if !errors.As(err, &be) {
				t.Fatalf("Open(broken file) = %v, want a *BreakError inside", err)
			}
			if be.Record != tt.wantRecord || be.Reason != tt.wantReason {
				t.Errorf("BreakError = record %d %q, want record %d %q", be.Record, be.Reason, tt.wantRecord, tt.wantReason)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move it aside") {
				t.Errorf("Open error = %q, want the path and advice to move it aside", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
				t.Errorf("Open changed the broken file")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "missing", "audit.log"), dir} {
		if l, err := Open(path, 0); err == nil {
			l.Close()
			t.Errorf("Open(%q) = nil error, want one", path)
		}
	}
}

func TestClose(t *testing.T) {
	for _, file := range []bool{false, true} {
		t.Run(fmt.Sprintf("file=%v", file), func(t *testing.T) {
			var l *Log
			if file {
				l, _ = openTemp(t, 0)
			} else {
				l, _ = Open("", 0)
			}
			appendN(t, l, 1)
			for i := range 2 {
				if err := l.Close(); err != nil {
					t.Errorf("Close #%d = %v, want nil", i+1, err)
				}
			}
			if _, err := l.Append(rec(2)); !errors.Is(err, ErrClosed) {
				t.Errorf("Append after Close = %v, want ErrClosed", err)
			}
			if n := len(l.Recent(0)); n != 1 {
				t.Errorf("len(Recent(0)) after Close = %d, want 1", n)
			}
		})
	}
}

// TestAppendConcurrent runs under -race: appends from many goroutines must
// still form one chain, in the file and in memory, while readers read.
func TestAppendConcurrent(t *testing.T) {
	const goroutines, each = 8, 50
	l, path := openTemp(t, 0)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := rec(g*each + i)
				r.Time = time.Time{}
				if _, err := l.Append(r); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				l.Recent(5)
			}
		})
	}
	wg.Wait()
	if n, err := verifyFile(t, path); n != goroutines*each || err != nil {
		t.Errorf("Verify(file) = %d, %v, want %d, nil", n, err, goroutines*each)
	}
	recent := l.Recent(0)
	if len(recent) != goroutines*each {
		t.Fatalf("len(Recent(0)) = %d, want %d", len(recent), goroutines*each)
	}
	for i := 0; i+1 < len(recent); i++ {
		if recent[i].PrevHash != recent[i+1].Hash {
			t.Fatalf("Recent(0)[%d].PrevHash = %s, want the hash of the record after it, %s", i, recent[i].PrevHash, recent[i+1].Hash)
		}
	}
}
