package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultKeep is how many records a Log keeps in memory when Open is given
// keep <= 0: the "last 1000" that GET /api/v2/audit serves (SPEC section 8).
const DefaultKeep = 1000

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// Log is an append-only audit log: a hash chain of Records written to a
// JSON-lines file, or kept in memory only, plus the newest records in
// memory for the admin API and the status page.
//
// The zero value is not usable; build a Log with Open. All methods are safe
// for concurrent use. Appends are serialised and each one is on disk
// (fsynced) before it returns, so a record an operator was told about
// survives a crash.
type Log struct {
	// mu serialises appends, so records chain in the order they are
	// written, and guards the fields below it.
	mu     sync.Mutex
	f      file   // nil when memory only
	size   int64  // bytes of f that hold intact records
	head   string // Hash of the last record written, "" before the first
	closed bool
	failed error // set when a failed write could not be undone; sticky

	// ringMu guards ring. It is apart from mu so that readers (the
	// status page) never wait behind an fsync.
	ringMu sync.Mutex
	ring   ring
}

// Open returns a Log appending to the file at path, or a memory-only Log
// when path is "". It keeps the newest keep records in memory (DefaultKeep
// when keep <= 0).
//
// An existing file is verified in full before anything is appended: the
// new records continue its chain, and its newest records are loaded, so
// Recent looks the same after a restart. When the file's chain is broken
// (a record modified, removed, reordered or inserted, or a last line torn
// by a crash), Open returns an error wrapping the *BreakError and does not
// touch the file: extending a broken chain would make the break look like
// history, so an operator must inspect the file and move it aside. A file
// Open creates has mode 0600.
func Open(path string, keep int) (*Log, error) {
	if keep <= 0 {
		keep = DefaultKeep
	}
	l := &Log{ring: ring{keep: keep}}
	if path == "" {
		return l, nil
	}
	_, statErr := os.Lstat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := l.load(path); err != nil {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && created {
		// The file's directory entry is durable only once the directory
		// is synced; without it a crash could lose the whole file.
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return l, nil
}

// load verifies the file at path and restores the chain head and the ring
// from it.
func (l *Log) load(path string) error {
	rf, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer rf.Close()
	var c chain
	err = c.scan(rf, l.ring.push)
	var be *BreakError
	if errors.As(err, &be) {
		return fmt.Errorf("audit: %s is broken at %w: inspect the file and move it aside; a broken chain is never extended", path, err)
	}
	if err != nil {
		return fmt.Errorf("audit: %s: %w", path, err)
	}
	l.head = c.head
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Append completes r and appends it to the log: it sets Time to the current
// time when zero (and to UTC always), PrevHash to the hash of the last
// record and Hash, writes the record as one line with a single write and
// syncs the file. It returns the completed record as it reads back from
// the file (Detail decoded, see Record).
//
// When the write or the sync fails, Append returns the error and the log
// stays as it was: the file is truncated back to its last intact record and
// the next Append chains from that record. When even that fails, the log
// refuses every later Append with an error saying the file must be
// inspected. A Detail that encoding/json cannot encode, or a record of more
// than 1 MiB, is refused before anything is written.
func (l *Log) Append(r Record) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Record{}, ErrClosed
	}
	if l.failed != nil {
		return Record{}, l.failed
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	r.PrevHash = l.head
	line, rec, err := seal(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit: encoding record: %w", err)
	}
	if err := l.write(line); err != nil {
		return Record{}, err
	}
	l.head = rec.Hash
	l.ringMu.Lock()
	l.ring.push(rec)
	l.ringMu.Unlock()
	rec.Detail = clone(rec.Detail)
	return rec, nil
}

// write appends line to the file (if any) and syncs it. l.mu is held.
func (l *Log) write(line []byte) error {
	if l.f == nil {
		return nil
	}
	_, err := l.f.Write(line)
	if err == nil {
		err = l.f.Sync()
	}
	if err == nil {
		l.size += int64(len(line))
		return nil
	}
	// A failed write may have left part of the line behind, and after a
	// failed fsync nobody knows whether the line is in the file. Either
	// way the file must end where the chain head does, or every later
	// record would follow a fragment and the chain would be broken for
	// good.
	terr := l.f.Truncate(l.size)
	if terr == nil {
		terr = l.f.Sync()
	}
	if terr != nil {
		l.failed = fmt.Errorf("audit: %s: a failed write could not be undone (%v): inspect the file and move it aside: %w", l.f.Name(), terr, err)
		return l.failed
	}
	return fmt.Errorf("audit: %w", err)
}

// Recent returns up to n of the newest records, newest first, or all the
// records kept in memory when n <= 0. The slice and the records' Details
// are fresh copies owned by the caller. Recent keeps working after Close.
func (l *Log) Recent(n int) []Record {
	l.ringMu.Lock()
	defer l.ringMu.Unlock()
	return l.ring.recent(n)
}

// Close closes the file; later Appends return ErrClosed. Closing twice is
// not an error: the second call does nothing and returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// file is what a Log needs of its *os.File; tests substitute one whose
// writes fail, which a real disk will not do on demand.
type file interface {
	Write(b []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
	Name() string
}

var _ file = (*os.File)(nil)

// ring holds the newest keep records. Its zero value with keep set is
// empty; it grows to keep entries and then overwrites the oldest.
type ring struct {
	keep int
	buf  []Record
	next int // where the next push goes once buf is full
}

func (r *ring) push(rec Record) {
	if len(r.buf) < r.keep {
		r.buf = append(r.buf, rec)
		return
	}
	r.buf[r.next] = rec
	r.next = (r.next + 1) % len(r.buf)
}

// recent copies up to n records, newest first; n <= 0 means all.
func (r *ring) recent(n int) []Record {
	size := len(r.buf)
	if n <= 0 || n > size {
		n = size
	}
	out := make([]Record, n)
	for i := range out {
		// Until buf is full next stays 0 and the newest is at size-1;
		// after that the newest is just before next.
		rec := r.buf[(r.next-1-i+2*size)%size]
		rec.Detail = clone(rec.Detail)
		out[i] = rec
	}
	return out
}
