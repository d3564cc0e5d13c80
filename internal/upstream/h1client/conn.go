package h1client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// States of a request body during a round trip (conn.bodyState). The body
// writer and the caller race to claim an untouched body: the writer to send
// it, the caller to replay it on another connection or to close it.
const (
	bodyUntouched int32 = iota
	bodyClaimed
)

// maxWriteWait is how long the end of a round trip waits for a body writer
// that already read the whole request body and is only flushing it, before
// giving up on reusing the connection. net/http waits as long.
const maxWriteWait = 50 * time.Millisecond

// errWriterBusy is waitWriter's answer when the body writer is still
// running; the connection is then closed, not pooled.
var errWriterBusy = errors.New("h1client: request body still being written")

// conn is one connection to the upstream with its buffers. It serves one
// round trip at a time and, between round trips, waits in the pool without
// a goroutine.
//
// During a round trip three goroutines may touch it: the caller (which
// writes the head, reads the response and runs done), the body writer
// (which owns bw and req.Body while it runs) and the context's AfterFunc
// (which only expires deadlines). The fields say who owns them.
type conn struct {
	t  *Transport
	nc net.Conn
	// probe checks a parked connection for a close by the upstream before
	// it is reused.
	probe prober
	br    *bufio.Reader // caller only
	bw    *bufio.Writer // caller, then the body writer while it runs
	// cancelFn is pc.cancel as a func value, made once per connection
	// rather than once per request.
	cancelFn func()
	// writeDone carries the body writer's result; capacity 1, so the
	// writer never blocks on it even when nobody waits any more.
	writeDone chan error

	// Round-trip state owned by the caller (and by done, which runs on
	// whichever goroutine ends the response body).
	idleAt     time.Time
	reused     bool        // served a round trip before this one
	closeAfter bool        // a side asked for close, or framing requires it
	stop       func() bool // stops the request context's AfterFunc
	writing    bool        // a body writer runs or its result is unread
	cont       chan bool   // to the body writer: 100 arrived (true) or not wanted (false)

	canceled  atomic.Bool  // the request context ended during the round trip
	closed    atomic.Bool  // nc closed
	bodyState atomic.Int32 // bodyUntouched or bodyClaimed
	bodyRead  atomic.Bool  // the writer read the request body to its end

	// dmu orders changes to the read deadline between the caller, which
	// clears the response header timeout once the head arrived, and the
	// body writer, which arms it after the body and expires it to abort a
	// request whose body failed. Without it a late arm could expire the
	// deadline under the response body.
	dmu      sync.Mutex
	headDone bool // the final response head arrived
	armed    bool // a response header deadline is set
}

func newConn(t *Transport, nc net.Conn) *conn {
	pc := &conn{
		t:  t,
		nc: nc,
		br: bufio.NewReaderSize(nc, t.readBufferSize()),
		bw: bufio.NewWriterSize(nc, t.writeBufferSize()),
	}
	pc.cancelFn = pc.cancel
	pc.probe.init(nc)
	return pc
}

// peerGone reports whether the parked pc must not be reused: bytes read
// ahead past the last response (the upstream sent something unasked in
// the same segment), or what the prober finds in the TLS layer or the
// socket.
func (pc *conn) peerGone() bool { return pc.br.Buffered() > 0 || pc.probe.peerGone() }

// roundTrip sends req on pc and reads the response head. On failure it
// closes pc and reports whether the request may be retried on a new
// connection (only when allowRetry); req.Body is then left untouched for
// the retry. Otherwise req.Body is closed, now or by the body writer.
func (pc *conn) roundTrip(req *http.Request, w *wire, allowRetry bool) (*http.Response, bool, error) {
	pc.closeAfter = w.close
	pc.headDone, pc.armed = false, false
	pc.bodyState.Store(bodyUntouched)
	pc.bodyRead.Store(false)
	pc.cont = nil
	if ctx := req.Context(); ctx.Done() != nil {
		pc.stop = context.AfterFunc(ctx, pc.cancelFn)
	}

	if err := writeHead(pc.bw, req, w); err != nil {
		// Part of the head may have been flushed: the connection is
		// spoiled either way.
		return pc.fail(req, w, err, true, false)
	}
	if w.body == nil {
		// The whole request in one write.
		if err := pc.bw.Flush(); err != nil {
			return pc.fail(req, w, err, false, allowRetry)
		}
		pc.armHeaderTimer()
	} else {
		if w.expect {
			pc.cont = make(chan bool, 1)
		}
		// A body that is not known to be in memory may block or trickle:
		// the upstream sees the head now. An in-memory body goes out with
		// the head in one write when it fits.
		if w.expect || !w.inMemory {
			if err := pc.bw.Flush(); err != nil {
				return pc.fail(req, w, err, false, allowRetry)
			}
		}
		if pc.writeDone == nil {
			pc.writeDone = make(chan error, 1)
		}
		pc.writing = true
		go pc.writeBody(req, w.body, w.length, !w.inMemory, pc.cont)
	}

	r, got, err := pc.readResponse(req)
	if err != nil {
		return pc.fail(req, w, err, got, allowRetry)
	}
	pc.headerDone()
	if pc.cont != nil {
		// A final status without 100 (Continue): the upstream decided
		// without the body, so it is not sent, and the connection, whose
		// request is now incomplete on the wire, is not reused (RFC 9110
		// section 10.1.1).
		pc.cont <- false
		pc.cont = nil
	}
	resp := &r.Response
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return pc.upgrade(req, w, resp)
	}
	if resp.Close {
		pc.closeAfter = true
	}
	if resp.Body == http.NoBody {
		pc.done(true)
		return resp, false, nil
	}
	r.body.bind(pc, pc.br)
	return resp, false, nil
}

// readResponse reads response heads until a final one (or 101), skipping
// interim responses and releasing the request body on 100 (Continue).
// got reports whether any response byte arrived.
func (pc *conn) readResponse(req *http.Request) (*response, bool, error) {
	got := false
	for n := 0; ; n++ {
		head, g, err := readHead(pc.br)
		got = got || g
		if err != nil {
			return nil, got, err
		}
		r, err := parseResponse(head, req)
		if err != nil {
			return nil, true, err
		}
		code := r.StatusCode
		if code >= 200 || code == http.StatusSwitchingProtocols {
			return r, true, nil
		}
		// RFC 9110 section 15.2: a client must be able to parse and
		// ignore 1xx responses it did not ask for (103 Early Hints and
		// the like). A 100 means the body is wanted.
		if code == http.StatusContinue && pc.cont != nil {
			pc.cont <- true
			pc.cont = nil
		}
		if n == max1xx {
			return nil, true, malformed("too many interim responses")
		}
	}
}

// upgrade finishes a 101 (Switching Protocols) round trip: the connection
// now carries another protocol and leaves the transport's care.
func (pc *conn) upgrade(req *http.Request, w *wire, resp *http.Response) (*http.Response, bool, error) {
	if !w.upgrade {
		return pc.fail(req, w, malformed("101 response to a request without Upgrade"), true, false)
	}
	if pc.writing {
		// The upstream switches only after reading the whole request
		// (RFC 9110 section 7.8), so a body writer is about done, or was
		// just told to skip the body.
		if err := pc.waitWriter(true); err != nil && err != errBodySkipped {
			return pc.fail(req, w, fmt.Errorf("h1client: switching protocols: %w", err), true, false)
		}
	}
	if pc.stop != nil {
		if !pc.stop() {
			// The context ended; fail reports its error.
			return pc.fail(req, w, context.Canceled, true, false)
		}
		pc.stop = nil
	}
	resp.Body = &upgradeBody{pc: pc}
	return resp, false, nil
}

// fail ends a round trip that produced no usable response: it closes the
// connection, picks the error worth reporting, and decides whether the
// request may be retried.
func (pc *conn) fail(req *http.Request, w *wire, err error, got, allowRetry bool) (*http.Response, bool, error) {
	pc.close() // also unblocks a body writer stuck on the connection
	if pc.stop != nil {
		pc.stop()
		pc.stop = nil
	}
	var werr error
	if pc.writing {
		select {
		case werr = <-pc.writeDone:
			pc.writing = false
		default:
		}
	}
	ctx := req.Context()
	switch {
	case pc.canceled.Load() || ctx.Err() != nil:
		err = fmt.Errorf("h1client: %w", ctx.Err())
	case abortsRequest(werr):
		err = werr
	case errors.Is(err, os.ErrDeadlineExceeded) && pc.t.ResponseHeaderTimeout > 0:
		err = ErrResponseHeaderTimeout
	case !got && err == io.EOF:
		err = errClosedBeforeResponse
	case !got:
		err = fmt.Errorf("h1client: connection lost before response: %w", err)
	}
	retry := allowRetry && pc.reused && !got && isConnError(err) && pc.claimBody(w)
	if !retry {
		pc.releaseBody(w)
	}
	return nil, retry, err
}

// abortsRequest reports whether a body writer's error leaves the request
// unfinishable on the caller's side (its body failed, or its trailers were
// invalid), as opposed to the connection failing, where the upstream may
// still have answered.
func abortsRequest(err error) bool {
	var be *bodyReadError
	var re *requestError
	return errors.As(err, &be) || errors.As(err, &re)
}

// isConnError reports whether err is the connection failing (reset,
// closed, broken pipe) rather than a timeout, a cancellation or a request
// or response the transport refused.
func isConnError(err error) bool {
	if err == errClosedBeforeResponse {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

// claimBody takes back an untouched request body from the body writer, for
// a retry. A request without a body is always replayable.
func (pc *conn) claimBody(w *wire) bool {
	if w.body == nil {
		return true
	}
	if !pc.bodyState.CompareAndSwap(bodyUntouched, bodyClaimed) {
		return false
	}
	pc.wakeWriter()
	return true
}

// releaseBody closes the request body unless the body writer owns it (the
// writer closes it when it ends).
func (pc *conn) releaseBody(w *wire) {
	if w.body != nil && pc.bodyState.CompareAndSwap(bodyUntouched, bodyClaimed) {
		pc.wakeWriter()
		_ = w.body.Close()
	}
}

// wakeWriter releases a body writer waiting for 100 (Continue): the body
// is not to be sent.
func (pc *conn) wakeWriter() {
	if pc.cont != nil {
		select {
		case pc.cont <- false:
		default:
		}
		pc.cont = nil
	}
}

// done ends a round trip whose response was delivered, when its body ended
// (or at once for a response without body). reuse says whether the body
// ended cleanly; the connection then returns to the pool unless something
// else forbids it.
func (pc *conn) done(reuse bool) {
	if pc.stop != nil {
		if !pc.stop() {
			// The context ended: its AfterFunc has expired, or is about
			// to expire, the connection's deadlines.
			reuse = false
		}
		pc.stop = nil
	}
	if pc.writing && pc.waitWriter(false) != nil {
		reuse = false
	}
	if !reuse || pc.closeAfter {
		pc.close()
		return
	}
	pc.t.put(pc)
}

// waitWriter returns the body writer's result. Unless always is set, it
// waits only for a writer that has read the whole request body and is
// flushing it; and at most maxWriteWait: a writer still reading the
// caller's body may take arbitrarily long, and the connection is better
// closed.
func (pc *conn) waitWriter(always bool) error {
	select {
	case err := <-pc.writeDone:
		pc.writing = false
		return err
	default:
	}
	if !always && !pc.bodyRead.Load() {
		return errWriterBusy
	}
	t := time.NewTimer(maxWriteWait)
	defer t.Stop()
	select {
	case err := <-pc.writeDone:
		pc.writing = false
		return err
	case <-t.C:
		return errWriterBusy
	}
}

// writeBody is the body writer goroutine of one round trip. Its owner is
// the round trip: it ends when the body is sent, fails or is skipped, and
// the connection being closed makes any write fail at once. It may outlive
// the round trip only while blocked in req.Body.Read, which no transport
// can interrupt; the connection is then closed and never reused, so the
// late writer touches nothing shared.
func (pc *conn) writeBody(req *http.Request, body io.ReadCloser, length int64, flushEach bool, cont <-chan bool) {
	err := pc.sendBody(req, body, length, flushEach, cont)
	pc.writeDone <- err
	if abortsRequest(err) {
		// The request can never be completed; stop waiting for a
		// response to it. The caller finds err in writeDone.
		pc.dmu.Lock()
		if !pc.headDone {
			_ = pc.nc.SetReadDeadline(pastDeadline())
		}
		pc.dmu.Unlock()
	}
}

func (pc *conn) sendBody(req *http.Request, body io.ReadCloser, length int64, flushEach bool, cont <-chan bool) error {
	if cont != nil {
		timer := time.NewTimer(pc.t.expectContinueTimeout())
		select {
		case ok := <-cont:
			timer.Stop()
			if !ok {
				if pc.bodyState.CompareAndSwap(bodyUntouched, bodyClaimed) {
					_ = body.Close()
				}
				return errBodySkipped
			}
		case <-timer.C:
			// RFC 9110 section 10.1.1: a client need not wait for 100
			// (Continue) indefinitely.
		}
	}
	if !pc.bodyState.CompareAndSwap(bodyUntouched, bodyClaimed) {
		// The caller took the body back to retry elsewhere.
		return errBodySkipped
	}
	defer body.Close()
	if length >= 0 && length <= int64(pc.bw.Available()) {
		// Small enough to leave with the head, when the head is still
		// buffered (an in-memory body).
		if err := writeLength(pc.bw, body, length, flushEach, &pc.bodyRead); err != nil {
			return err
		}
	} else {
		if err := pc.bw.Flush(); err != nil {
			return err
		}
		bp := pc.t.getCopyBuffer()
		var err error
		if length >= 0 {
			err = copyLength(pc.nc, body, length, *bp, &pc.bodyRead)
		} else {
			err = copyChunked(pc.nc, body, req.Trailer, *bp, &pc.bodyRead)
		}
		pc.t.copyBuffers.Put(bp)
		if err != nil {
			return err
		}
	}
	pc.armHeaderTimer()
	return nil
}

// armHeaderTimer starts the response header timeout, once the request is
// fully written (as net/http does: a slow upload is not a slow upstream).
func (pc *conn) armHeaderTimer() {
	d := pc.t.ResponseHeaderTimeout
	if d <= 0 {
		return
	}
	pc.dmu.Lock()
	if !pc.headDone {
		pc.setReadDeadline(time.Now().Add(d))
		pc.armed = true
	}
	pc.dmu.Unlock()
}

// headerDone records that the final head arrived and clears the response
// header timeout.
func (pc *conn) headerDone() {
	if !pc.writing && pc.t.ResponseHeaderTimeout <= 0 {
		return // nobody else touches the deadline: skip the lock
	}
	pc.dmu.Lock()
	pc.headDone = true
	if pc.armed {
		pc.setReadDeadline(time.Time{})
		pc.armed = false
	}
	pc.dmu.Unlock()
}

// setReadDeadline sets the read deadline without undoing a cancellation:
// cancel stores canceled before expiring the deadline, so whichever of the
// two runs second leaves the deadline expired.
func (pc *conn) setReadDeadline(t time.Time) {
	_ = pc.nc.SetReadDeadline(t)
	if pc.canceled.Load() {
		_ = pc.nc.SetDeadline(pastDeadline())
	}
}

// cancel runs in the request context's AfterFunc: it makes every blocked
// or future read and write on the connection fail at once.
func (pc *conn) cancel() {
	pc.canceled.Store(true)
	_ = pc.nc.SetDeadline(pastDeadline())
}

// interrupt makes a Read blocked on the connection return; the connection
// is not reused afterwards.
func (pc *conn) interrupt() { _ = pc.nc.SetReadDeadline(pastDeadline()) }

// close closes the connection once.
func (pc *conn) close() {
	if pc.closed.CompareAndSwap(false, true) {
		_ = pc.nc.Close()
		pc.t.open.Add(-1)
	}
}

// pastDeadline is a deadline already expired.
func pastDeadline() time.Time { return time.Unix(1, 0) }
