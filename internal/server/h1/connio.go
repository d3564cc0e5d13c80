package h1

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// aLongTimeAgo returns a deadline in the past: setting it makes a blocked
// Read return at once, which is how a background read is aborted.
func aLongTimeAgo() time.Time { return time.Unix(1, 0) }

// errConcurrentRead is returned if the connection is read while the
// background read owns it; the server's own sequencing makes it impossible.
var errConcurrentRead = errors.New("h1: read while a background read is pending")

// watchDelay is how long a request must have been watched before its
// background read starts. Parking a goroutine on the socket and aborting
// it costs several scheduler round trips, more than the rest of a small
// request (and a timer per request costs netpoller wake-ups); requests
// that finish sooner never pay it, and a departed client is still noticed
// within about two watchDelays. The Server's watcher goroutine starts the
// overdue reads.
const watchDelay = 5 * time.Millisecond

// connReader is the io.Reader under a connection's bufio.Reader.
//
// While a handler runs and the request body has been fully read, a
// one-byte background read on the socket notices a client that goes away
// and cancels the request context, as net/http's server does; a proxy
// needs this to stop upstream work for departed clients. The read starts
// only once somebody watches the context (calls Done on it) and
// watchDelay has passed, so handlers that never look at their context,
// and short requests, do not pay for it.
type connReader struct {
	c *conn
	// since is when the current request became eligible for a background
	// read (watched, body done), in Unix nanoseconds; 0 when not eligible.
	// The Server's watcher reads it without taking mu.
	since atomic.Int64

	mu      sync.Mutex // guards the fields below
	cond    sync.Cond  // signalled when inRead becomes false; L is &mu
	hasByte bool       // byteBuf holds a byte read in the background
	byteBuf [1]byte
	inRead  bool // a background read is running
	aborted bool // the running background read was aborted on purpose
	// Per-request state, reset by begin. gen tells a stale request's
	// context (kept by a handler after it returned) from the current one.
	gen      uint64
	bodyDone bool // the request body hit EOF, or there is none
	watched  bool // the request context's Done was called
	finished bool // the handler returned or hijacked: no new background read
}

func (cr *connReader) init(c *conn) {
	cr.c = c
	cr.cond.L = &cr.mu
}

// begin starts a request and returns its generation.
func (cr *connReader) begin(bodyDone bool) uint64 {
	cr.mu.Lock()
	cr.gen++
	cr.bodyDone, cr.watched, cr.finished = bodyDone, false, false
	gen := cr.gen
	cr.mu.Unlock()
	return gen
}

// watch records that the context of request gen is being watched.
func (cr *connReader) watch(gen uint64) {
	cr.mu.Lock()
	if gen == cr.gen {
		cr.watched = true
		cr.markEligibleLocked()
	}
	cr.mu.Unlock()
}

// bodyEOF records that the body of request gen has been read to its end.
func (cr *connReader) bodyEOF(gen uint64) {
	cr.mu.Lock()
	if gen == cr.gen {
		cr.bodyDone = true
		cr.markEligibleLocked()
	}
	cr.mu.Unlock()
}

// markEligibleLocked notes when the request became eligible for a
// background read; the watcher starts it watchDelay later.
func (cr *connReader) markEligibleLocked() {
	if !cr.watched || !cr.bodyDone || cr.finished || cr.inRead || cr.hasByte || cr.since.Load() != 0 {
		return
	}
	cr.since.Store(time.Now().UnixNano())
	cr.c.s.wakeWatcher()
}

// startIfDue starts the background read when the request has been
// eligible since before cutoff. The Server's watcher calls it.
func (cr *connReader) startIfDue(cutoff int64) {
	if since := cr.since.Load(); since == 0 || since > cutoff {
		return
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.since.Load() == 0 || cr.finished || cr.inRead || cr.hasByte {
		return
	}
	cr.since.Store(0)
	cr.inRead = true
	// Owner: the connection. Stop: stop() aborts it with a past read
	// deadline. Waiter: stop() waits on cond until inRead is false.
	go cr.backgroundRead()
}

func (cr *connReader) backgroundRead() {
	n, err := cr.c.rwc.Read(cr.byteBuf[:])
	cr.mu.Lock()
	if n == 1 {
		cr.hasByte = true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && cr.aborted {
		// The expected result of stop(); the client is still there.
	} else if err != nil {
		cr.c.cancel()
	}
	cr.aborted, cr.inRead = false, false
	cr.mu.Unlock()
	cr.cond.Broadcast()
}

// stop ends the current request's background reading: no new read starts,
// and a running one is aborted and waited for. It leaves the read deadline
// in the past when it had to abort; callers set the next deadline.
func (cr *connReader) stop() {
	cr.mu.Lock()
	cr.finished = true
	cr.since.Store(0)
	if cr.inRead {
		cr.aborted = true
		_ = cr.c.rwc.SetReadDeadline(aLongTimeAgo())
		for cr.inRead {
			cr.cond.Wait()
		}
	}
	cr.mu.Unlock()
}

// Read implements io.Reader for the connection's bufio.Reader.
func (cr *connReader) Read(p []byte) (int, error) {
	cr.mu.Lock()
	if cr.inRead {
		cr.mu.Unlock()
		return 0, errConcurrentRead
	}
	if cr.hasByte {
		cr.hasByte = false
		cr.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		p[0] = cr.byteBuf[0]
		return 1, nil
	}
	cr.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	c := cr.c
	n, err := c.rwc.Read(p)
	if err != nil {
		// A failed read means the client is gone or timed out; either
		// way the request's work is no longer wanted.
		c.cancel()
	}
	return n, err
}

// connWriter is the io.Writer under a connection's bufio.Writer. It
// enforces the slow-client timeout: every write must make progress within
// the timeout, and the deadline is pushed forward whenever bytes are
// written, so a slow but live client is served while a stalled one is cut.
type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	c := w.c
	if c.werr != nil {
		return 0, c.werr
	}
	total := 0
	for {
		c.armWriteDeadline()
		n, err := c.rwc.Write(p[total:])
		total += n
		if err == nil {
			return total, nil
		}
		if n > 0 && errors.Is(err, os.ErrDeadlineExceeded) && !c.userDeadlinePassed() {
			c.forceArm = true
			continue // progress was made: the client is slow, not stalled
		}
		c.werr = err
		c.cancel()
		return total, err
	}
}

// armWriteDeadline sets the write deadline for the next socket write.
// Updating a deadline touches a runtime timer, so while the armed deadline
// is within 1/32 of the slow-client timeout of the wanted one it is kept.
func (c *conn) armWriteDeadline() {
	slow := c.slowTimeout
	user := c.userWriteDeadline
	if slow <= 0 && user.IsZero() && c.armed.IsZero() {
		return
	}
	var d time.Time
	if slow > 0 {
		d = time.Now().Add(slow)
	}
	if !user.IsZero() && (d.IsZero() || user.Before(d)) {
		d = user
	}
	// Keep the armed deadline when it is at most slow/32 earlier than
	// wanted; never when it is later (a handler's deadline of an earlier
	// request may have pushed it out).
	if diff := d.Sub(c.armed); !c.forceArm && user.IsZero() && !c.armed.IsZero() && !d.IsZero() &&
		diff >= 0 && diff < slow/32 {
		return
	}
	c.forceArm = false
	c.armed = d
	_ = c.rwc.SetWriteDeadline(d)
}

func (c *conn) userDeadlinePassed() bool {
	return !c.userWriteDeadline.IsZero() && !time.Now().Before(c.userWriteDeadline)
}

// reqContext is a request's context. It is the request's cancelCtx with
// one change: the first Done call asks the connection to watch for the
// client going away. Value lookups and cancellation are the embedded
// context's, so contexts derived from it are linked without goroutines.
type reqContext struct {
	context.Context
	cr      *connReader
	gen     uint64
	watched atomic.Bool
}

// Done implements context.Context.
func (rc *reqContext) Done() <-chan struct{} {
	if !rc.watched.Load() {
		rc.watched.Store(true)
		rc.cr.watch(rc.gen)
	}
	return rc.Context.Done()
}
