package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// BreakError reports the first record of an audit file that does not
// belong to an intact chain. Everything before it verified; nothing from
// it on can be trusted. Match it with errors.As.
type BreakError struct {
	// Record is the 1-based number of the broken record.
	Record int
	// Line is the 1-based line of the file holding it. Every line of an
	// intact file is one record, so today it always equals Record; it is
	// kept apart so that messages stay right should that ever change.
	Line int
	// Reason says what is wrong and, where it can tell, what probably
	// happened ("hash mismatch: contents were modified").
	Reason string
}

// Error names the record, its line and the reason, for example
// "record 3 (line 3): hash mismatch: contents were modified".
func (e *BreakError) Error() string {
	return fmt.Sprintf("record %d (line %d): %s", e.Record, e.Line, e.Reason)
}

// Verify reads an audit file (JSON lines as written by Log) from r and
// checks every record: that it is one canonical JSON object per
// newline-terminated line with all the fields of Record, that its hash
// matches its contents, and that its prev_hash is the hash of the record
// before it (empty for the first). It returns the number of intact records
// and, on the first broken one, a *BreakError. A read error from r is
// returned wrapped, with the count of records verified before it.
//
// An empty file is an intact chain of 0 records. Verify reads r once,
// sequentially, and holds one line at a time, so it suits files of any
// length; a line longer than 1 MiB is reported as broken. It has no state
// and may be called concurrently on different readers.
func Verify(r io.Reader) (int, error) {
	var c chain
	err := c.scan(r, nil)
	return c.n, err
}

// chain verifies records in file order. Its zero value expects the first
// record of a file.
type chain struct {
	n    int    // intact records so far
	head string // hash of the last intact record
}

// scan verifies every line of r, calling keep (when not nil) with each
// intact record in file order.
func (c *chain) scan(r io.Reader, keep func(Record)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	sc.Split(splitLines)
	for sc.Scan() {
		rec, reason := c.check(sc.Bytes())
		if reason != "" {
			return c.broken(reason)
		}
		c.n++
		c.head = rec.Hash
		if keep != nil {
			keep(rec)
		}
	}
	err := sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		return c.broken(fmt.Sprintf("line longer than %d bytes", maxLine))
	}
	if err != nil {
		return fmt.Errorf("audit: reading record %d: %w", c.n+1, err)
	}
	return nil
}

func (c *chain) broken(reason string) *BreakError {
	return &BreakError{Record: c.n + 1, Line: c.n + 1, Reason: reason}
}

// splitLines is bufio.ScanLines without its forgiveness: tokens keep their
// "\n" (a final line without one is a torn write, which check reports) and
// "\r" is not dropped (a file converted to CRLF was rewritten).
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// check verifies one line, "\n" included, as the record after c.head. It
// returns the record, or the reason it is broken. The order of the checks
// picks the most telling reason when several apply: a record that was
// edited is reported as modified even when the edit also moved its keys.
func (c *chain) check(line []byte) (Record, string) {
	body, ok := bytes.CutSuffix(line, []byte("\n"))
	if !ok {
		return Record{}, "last line has no newline: torn write"
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Record{}, "blank line: an append-only log never has one"
	}
	canon, v, err := canonical(body)
	if err != nil {
		return Record{}, "not valid JSON"
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Record{}, "not a JSON object"
	}
	if reason := checkFields(obj); reason != "" {
		return Record{}, reason
	}
	want, err := sum(obj)
	if err != nil {
		return Record{}, "cannot be re-encoded: " + err.Error()
	}
	if obj["hash"] != want {
		return Record{}, "hash mismatch: contents were modified"
	}
	if prev := obj["prev_hash"]; prev != c.head {
		if c.n == 0 {
			return Record{}, "prev_hash is not empty in the first record: records before it were removed"
		}
		return Record{}, fmt.Sprintf("prev_hash does not match record %d's hash: a record was removed, reordered or inserted", c.n)
	}
	if !bytes.Equal(canon, body) {
		return Record{}, "not in canonical form (compact, keys sorted, no HTML escaping): the line was rewritten"
	}
	rec, err := recordOf(line)
	if err != nil {
		return Record{}, "cannot be decoded: " + err.Error()
	}
	return rec, ""
}

// checkFields makes sure every field is present with its JSON type, so a
// record that verifies always decodes into a Record.
func checkFields(obj map[string]any) string {
	for _, k := range fields {
		v, ok := obj[k]
		if !ok {
			return fmt.Sprintf("missing field %q", k)
		}
		if k == "detail" {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("field %q is not a string", k)
		}
		if k == "time" {
			// UnmarshalText is the parser encoding/json uses for
			// time.Time, stricter than time.Parse with RFC3339Nano.
			var t time.Time
			if err := t.UnmarshalText([]byte(s)); err != nil {
				return `field "time" is not an RFC 3339 time`
			}
		}
	}
	return ""
}
