package obs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// AccessRecord is one access-log line (SPEC section 9). Every field is always
// written, so the zero value of a field (empty string, 0) means the feature
// did not apply to the request: no cache configured, no canary, no error.
//
// A record holds only strings and numbers; Log copies it, so the caller may
// reuse its record right after Log returns. The strings must not alias
// memory the caller later mutates (no unsafe string-from-bytes conversions).
type AccessRecord struct {
	// Time is when the request started; written as RFC 3339 with
	// nanoseconds, in UTC. The zero Time is written as year 1.
	Time time.Time
	// RequestID is the X-Request-Id sent upstream and to the client.
	RequestID string
	// Method, Path and Host come from the client's request. Path must
	// already have gone through a Redactor: AppendJSON writes it as is.
	Method, Path, Host string
	// Route and Pool are config ids; Pool is the pool actually used
	// (canary or cohort pool included). Endpoint is the address of the
	// last upstream attempt.
	Route, Pool, Endpoint string
	// Status is the status code sent to the client.
	Status int
	// Duration is from request start to the end of the response;
	// UpstreamDuration is the time spent in upstream attempts. Both are
	// written in milliseconds with microsecond precision.
	Duration, UpstreamDuration time.Duration
	// Retries counts attempts after the first one.
	Retries int
	// Cache is hit, miss or bypass; BreakerState is the pool breaker's
	// state (closed, open, half_open); CanaryVariant is stable or canary.
	Cache, BreakerState, CanaryVariant string
	// BytesIn and BytesOut are the body bytes read from and written to
	// the client.
	BytesIn, BytesOut int64
	// ClientIP is the client address after trusted-proxy resolution.
	ClientIP string
	// ClientCertSubject is the subject of the verified TLS client
	// certificate (mTLS), "" without one.
	ClientCertSubject string
	// Error is the error category of SPEC section 6 when the proxy
	// generated the response (or aborted it).
	Error string
	// ConfigVersion is the version of the config snapshot that served the
	// request, start to finish ("" for the empty snapshot): after an apply
	// it tells which requests already saw the new config.
	ConfigVersion string
}

// AppendJSON appends the record as one compact JSON object, without a
// trailing newline, to b and returns the extended slice. Keys are the SPEC
// section 9 names in a fixed order. Strings are escaped like encoding/json
// does (control characters, quotes, backslash, U+2028/U+2029, and each
// byte of invalid UTF-8 as \ufffd) except that <, > and & are kept as is,
// so the output never contains a raw newline and parses as one JSON value.
//
// It does not allocate when b has enough spare capacity, which is why it is
// hand-written instead of using encoding/json (reflection, one allocation
// per call at least). AppendJSON only reads r.
func (r *AccessRecord) AppendJSON(b []byte) []byte {
	b = append(b, `{"timestamp":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"method":`...)
	b = appendString(b, r.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, r.Path)
	b = append(b, `,"host":`...)
	b = appendString(b, r.Host)
	b = append(b, `,"route":`...)
	b = appendString(b, r.Route)
	b = append(b, `,"pool":`...)
	b = appendString(b, r.Pool)
	b = append(b, `,"endpoint":`...)
	b = appendString(b, r.Endpoint)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, r.Duration)
	b = append(b, `,"upstream_duration_ms":`...)
	b = appendMillis(b, r.UpstreamDuration)
	b = append(b, `,"retries":`...)
	b = strconv.AppendInt(b, int64(r.Retries), 10)
	b = append(b, `,"cache":`...)
	b = appendString(b, r.Cache)
	b = append(b, `,"breaker_state":`...)
	b = appendString(b, r.BreakerState)
	b = append(b, `,"canary_variant":`...)
	b = appendString(b, r.CanaryVariant)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, r.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, r.BytesOut, 10)
	b = append(b, `,"client_ip":`...)
	b = appendString(b, r.ClientIP)
	b = append(b, `,"client_cert_subject":`...)
	b = appendString(b, r.ClientCertSubject)
	b = append(b, `,"error":`...)
	b = appendString(b, r.Error)
	b = append(b, `,"config_version":`...)
	b = appendString(b, r.ConfigVersion)
	return append(b, '}')
}

// appendMillis writes d as milliseconds with exactly three decimals
// (microsecond precision, truncated), using integer arithmetic so the
// output is exact: float formatting would print 0.1+0.2-style noise.
func appendMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a quoted JSON string. The rules are those of
// encoding/json without HTML escaping. Request data (path, host, request
// id) is attacker-controlled: a raw newline would forge a second log line,
// and invalid UTF-8 would make the whole line unparseable for strict
// consumers.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is pending output that needs no escaping
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = appendEscapedASCII(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but line terminators for JavaScript; escaped
			// by encoding/json too, so log viewers that eval or split
			// on them stay safe.
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEscapedASCII appends the JSON escape of an ASCII byte that may not
// appear raw in a string: a control character, '"' or '\\'.
func appendEscapedASCII(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// DefaultAccessLogCapacity is the queue length NewAccessLog uses when given
// a capacity below 1: about a second of records at 4k requests per second.
const DefaultAccessLogCapacity = 4096

const (
	// accessLogBufferSize is the write batch: one write call carries up to
	// this many bytes, i.e. a few hundred records under load.
	accessLogBufferSize = 64 << 10
	// accessLogFlushInterval bounds how long a written record may sit in
	// the batch when the queue never runs empty.
	accessLogFlushInterval = 100 * time.Millisecond
)

// errRunTwice is returned by a second AccessLog.Run: two consumers would
// interleave batches and break the queue's order.
var errRunTwice = errors.New("obs: AccessLog.Run called more than once")

// AccessLog writes access records asynchronously, so a slow or stuck log
// destination never slows requests down (SPEC section 9: lines are dropped
// and counted, requests are never blocked).
//
// Create it with NewAccessLog; the zero value is not usable. Log and
// Dropped are safe for concurrent use; Run must be called exactly once, by
// the owner (main), which also decides when it stops. A nil *AccessLog
// discards records: use it when the access log is switched off.
type AccessLog struct {
	w      io.Writer
	queue  chan AccessRecord
	onDrop func(n int)

	dropped atomic.Uint64
	started atomic.Bool // Run was called
	// stopped is set by Run when it stops consuming; inflight counts Log
	// calls between their stopped check and their send. Together they let
	// Run wait until no record can enter the queue any more, so its final
	// drain cannot miss one, without Log ever taking a lock.
	stopped  atomic.Bool
	inflight atomic.Int64
}

// NewAccessLog returns an access log that writes one JSON line per record
// to w, which must not be nil and is written only by Run's goroutine.
// capacity is the number of records queued before Log starts dropping;
// below 1 means DefaultAccessLogCapacity. onDrop, when not nil, is called
// with the number of records lost each time some are (main passes
// Metrics.LogDropped); it is called from Log's callers and from Run, so it
// must be safe for concurrent use and must not block.
//
// Nothing runs until the caller starts Run.
func NewAccessLog(w io.Writer, capacity int, onDrop func(n int)) *AccessLog {
	if capacity < 1 {
		capacity = DefaultAccessLogCapacity
	}
	return &AccessLog{w: w, queue: make(chan AccessRecord, capacity), onDrop: onDrop}
}

// Log queues a copy of r for writing and returns at once. When the queue is
// full, or Run has returned, the record is dropped and counted instead:
// Log never blocks. Safe for concurrent use. A nil *AccessLog or a nil r
// does nothing.
func (l *AccessLog) Log(r *AccessRecord) {
	if l == nil || r == nil {
		return
	}
	l.inflight.Add(1)
	if !l.stopped.Load() {
		select {
		case l.queue <- *r:
			l.inflight.Add(-1)
			return
		default:
		}
	}
	l.inflight.Add(-1)
	l.drop(1)
}

// Dropped reports how many records were lost so far: queue full, logged
// after Run returned, or failed writes. Safe for concurrent use; 0 for a
// nil *AccessLog.
func (l *AccessLog) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

func (l *AccessLog) drop(n int) {
	if n <= 0 {
		return
	}
	l.dropped.Add(uint64(n))
	if l.onDrop != nil {
		l.onDrop(n)
	}
}

// Run writes queued records until ctx is done, then writes what is still
// queued, flushes and returns nil. Records are batched through a 64 KiB
// buffer that is flushed whenever the queue runs empty and at least every
// 100ms, so a busy proxy makes few write calls and a quiet one shows its
// lines at once. A failed write does not stop Run: the records it carried
// are counted as dropped and later records are tried again.
//
// Run returns only once a write in progress returns, so a writer that
// blocks forever keeps Run from returning (Log is unaffected). Call Run
// exactly once, from the goroutine that owns the log; later calls return
// an error at once. For a nil *AccessLog, Run returns nil at once.
func (l *AccessLog) Run(ctx context.Context) error {
	if l == nil {
		return nil
	}
	if !l.started.CompareAndSwap(false, true) {
		return errRunTwice
	}
	bw := &batchWriter{w: l.w, buf: bufio.NewWriterSize(l.w, accessLogBufferSize), lost: l.drop}
	ticker := time.NewTicker(accessLogFlushInterval)
	defer ticker.Stop()
	for {
		select {
		case rec := <-l.queue:
			bw.write(&rec)
			// len on a channel is a racy snapshot, which is all
			// "momentarily empty" needs.
			if len(l.queue) == 0 {
				bw.flush()
			}
		case <-ticker.C:
			bw.flush()
		case <-ctx.Done():
			l.stop()
			l.drain(bw)
			return nil
		}
	}
}

// stop makes every later Log drop, then waits for Log calls that passed the
// stopped check before it to finish their (non-blocking) send.
func (l *AccessLog) stop() {
	l.stopped.Store(true)
	for l.inflight.Load() != 0 {
		runtime.Gosched()
	}
}

// drain writes every queued record and flushes. Only called after stop, so
// the queue cannot refill and the loop ends.
func (l *AccessLog) drain(bw *batchWriter) {
	for {
		select {
		case rec := <-l.queue:
			bw.write(&rec)
		default:
			bw.flush()
			return
		}
	}
}

// batchWriter encodes records into a bufio.Writer and keeps count of the
// records not yet handed to the underlying writer, so a failed write can be
// counted as exactly that many dropped records. Used by Run's goroutine only.
type batchWriter struct {
	w       io.Writer
	buf     *bufio.Writer
	line    []byte      // encoding scratch, reused across records
	pending int         // records in buf, not yet written to w
	lost    func(n int) // counts records lost to write errors
}

func (bw *batchWriter) write(r *AccessRecord) {
	bw.line = append(r.AppendJSON(bw.line[:0]), '\n')
	// Flush first when the line does not fit, so bufio never flushes on
	// its own in the middle of Write and pending stays exact.
	if len(bw.line) > bw.buf.Available() && bw.buf.Buffered() > 0 {
		bw.flush()
	}
	bw.pending++
	if _, err := bw.buf.Write(bw.line); err != nil {
		bw.fail()
	}
}

func (bw *batchWriter) flush() {
	if bw.buf.Buffered() == 0 {
		return
	}
	if err := bw.buf.Flush(); err != nil {
		bw.fail()
		return
	}
	bw.pending = 0
}

// fail counts the pending records as lost and resets the buffer: bufio's
// error is sticky, and a transient failure (a full pipe, a rotated file)
// must not silence the log for good.
func (bw *batchWriter) fail() {
	bw.lost(bw.pending)
	bw.pending = 0
	bw.buf.Reset(bw.w)
}
