// Package audit is the control plane's tamper-evident record of what it did
// (SPEC section 8): every apply, reject, rollback, brake and rollout step
// becomes a Record whose hash covers its contents and the hash of the
// record before it, so editing, removing, reordering or inserting a record
// anywhere in the file breaks the chain from that point on.
//
// The chain is evidence, not protection: anyone who can write the file can
// also recompute every hash after their edit. What it gives is that an
// accidental or careless change (an editor, a bad rotation script, a torn
// write) is always detected and named by Verify.
//
// audit imports only the standard library, so both control (which writes
// records) and admin (which shows them) may import it.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Record is one audit entry, one line of the audit file. The JSON keys are
// fixed by SPEC section 8 and every key is always written, so that the
// shape of a record never depends on its contents.
//
// Callers fill Actor, Action, Version, PreviousVersion, Result and Detail;
// Log.Append fills Time when it is zero and always sets PrevHash and Hash.
// A Record is a plain value; Records returned by this package own their
// Detail (a fresh copy), so callers may keep or modify them.
type Record struct {
	// Time is when the action happened, written in UTC as RFC 3339 with
	// nanoseconds. The zero Time makes Append use the current time.
	Time time.Time `json:"time"`
	// Actor says who acted: "admin 127.0.0.1", "file", "startup".
	Actor string `json:"actor"`
	// Action is what was done: "apply", "reject", "rollback", "brake",
	// "rollout_step".
	Action string `json:"action"`
	// Version and PreviousVersion are config versions; either may be empty
	// when the action concerns no version (a rejected config has none).
	Version         string `json:"version"`
	PreviousVersion string `json:"previous_version"`
	// Result is the outcome: "accepted", "rejected", "unchanged", ...
	Result string `json:"result"`
	// Detail is usually a string (the reason for a rejection) and may be
	// any value encoding/json can encode. It is written as null when nil.
	// Records read back from a file or returned by Log hold it as decoded
	// JSON: string, bool, json.Number, []any, map[string]any or nil.
	Detail any `json:"detail"`
	// PrevHash is the Hash of the record before this one in the same log,
	// empty for the first record.
	PrevHash string `json:"prev_hash"`
	// Hash is the lower-case hex SHA-256 of the record's canonical JSON
	// without the "hash" key (see Verify).
	Hash string `json:"hash"`
}

// fields are the keys every record must have; Verify names the first one
// missing. Extra keys are tolerated (and covered by the hash), so a later
// release may add a field without old verifiers calling the file broken.
var fields = [...]string{
	"hash", "prev_hash", "time", "actor", "action",
	"version", "previous_version", "result", "detail",
}

// maxLine bounds one line, newline included. Verify refuses longer lines
// instead of reading an arbitrarily large hostile file into memory, so
// Append refuses records that would produce one: the log never writes what
// its own verifier rejects.
const maxLine = 1 << 20

// canonical is the one canonical form that both writing and verifying
// use: data (one JSON value) decoded with numbers kept as written, then
// re-encoded compact with map keys sorted (encoding/json sorts them, at
// every depth) and without HTML escaping, so "<" stays "<" in the file
// and in the hashed bytes. It returns the decoded value too, so callers
// can inspect it without decoding twice.
func canonical(data []byte) ([]byte, any, error) {
	v, err := decode(data)
	if err != nil {
		return nil, nil, err
	}
	b, err := encode(v)
	return b, v, err
}

// decode decodes exactly one JSON value. Numbers stay json.Number so that
// re-encoding writes the same digits: a float64 round trip could change
// them and with them the hash.
func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// encode writes v compact, without HTML escaping and without the newline
// json.Encoder appends.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// sum returns the hash of a decoded record: SHA-256 over its canonical JSON
// without the "hash" key. obj is not modified.
func sum(obj map[string]any) (string, error) {
	body := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "hash" {
			body[k] = v
		}
	}
	b, err := encode(body)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// seal sets r.Hash from r's contents (r.PrevHash included) and returns the
// record's file line, newline-terminated, together with the record as it
// reads back from that line: the value Append keeps and returns, so that a
// record looks the same before and after a restart.
func seal(r Record) ([]byte, Record, error) {
	r.Hash = ""
	raw, err := encode(r)
	if err != nil {
		return nil, Record{}, err
	}
	_, v, err := canonical(raw)
	if err != nil {
		return nil, Record{}, err
	}
	obj := v.(map[string]any) // a struct always encodes to an object
	if obj["hash"], err = sum(obj); err != nil {
		return nil, Record{}, err
	}
	line, err := encode(obj)
	if err != nil {
		return nil, Record{}, err
	}
	line = append(line, '\n')
	if len(line) > maxLine {
		return nil, Record{}, fmt.Errorf("audit: record is %d bytes, more than the %d a line may hold", len(line), maxLine)
	}
	out, err := recordOf(line)
	return line, out, err
}

// recordOf decodes a line already known to be a well-formed record. Detail
// keeps json.Number for numbers, like the hashed form.
func recordOf(line []byte) (Record, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var r Record
	err := dec.Decode(&r)
	return r, err
}

// clone deep-copies a decoded JSON value, so Records handed out do not
// share Detail maps or slices with the log's memory.
func clone(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = clone(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = clone(e)
		}
		return s
	}
	return v
}
