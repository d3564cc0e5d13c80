package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Protocol constants (RFC 9113).
const (
	preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	// initialWindow is the flow-control window every stream and the
	// connection start with (6.9.2).
	initialWindow = 65535
	maxWindow     = 1<<31 - 1
	// readFrameSize is our SETTINGS_MAX_FRAME_SIZE: the RFC's default,
	// so every HEADERS or CONTINUATION frame is small.
	readFrameSize = 16384
	// headerTableSize is the HPACK dynamic table size both sides start with.
	headerTableSize = 4096
	// resetMinStreams and the 50% ratio are the rapid-reset limit
	// (CVE-2023-44487), Envoy's premature-reset heuristic: a browser that
	// cancels a few navigations early in a connection is never at risk.
	resetMinStreams = 100
	// maxHandlersPerStream bounds handlers still running for streams the
	// client already reset, as a multiple of MaxConcurrentStreams.
	maxHandlersPerStream = 4
	readBufferSize       = 4 << 10
	writeBufferSize      = 16 << 10
	// deadlineSlack is how stale the write deadline may get before a
	// flush moves it: setting it costs a syscall-adjacent poller update,
	// so it moves at most once per second.
	deadlineSlack = time.Second
)

var (
	errStreamClosed = errors.New("h2: stream closed")
	errConnClosed   = errors.New("h2: connection closed")
	errClientReset  = errors.New("h2: stream reset by the client")
	errStalled      = errors.New("h2: client granted no flow-control window within the slow-client timeout")
)

// conn is one HTTP/2 connection. The read loop (serve) is its owner: it
// alone reads frames and opens streams. Handlers write their own frames
// under wmu, so a response needs no hand-off to another goroutine.
type conn struct {
	s          *Server
	nc         net.Conn
	tls        *tls.ConnectionState
	remoteAddr string
	ctx        context.Context // canceled when the connection ends
	cancel     context.CancelFunc
	r          io.Reader     // nc, or a bufio.Reader on it when nc does not buffer
	fr         *http2.Framer // reads: the read loop; writes: under wmu
	maxStreams uint32
	streamWin  int32

	// Write side. Whoever holds wmu may write frames to bw; the last
	// writer out flushes (see unlockWrite), so concurrent responses share
	// TLS records and syscalls. bw comes from the server's pool while
	// frames are being written and goes back once flushed, so an idle
	// connection holds no write buffer.
	wmu          sync.Mutex
	wwaiting     atomic.Int32
	bw           *bufio.Writer
	henc         *hpack.Encoder
	hbuf         bytes.Buffer
	werr         error
	deadlineAt   time.Time // the write deadline last set
	lower        map[string]string
	peerMaxFrame atomic.Uint32

	// State shared by the read loop and handlers, under mu.
	mu          sync.Mutex
	flow        sync.Cond // L is &mu; broadcast when send windows grow or streams end
	work        sync.Cond // L is &mu; signaled when queue grows, broadcast when streams run out
	queue       []*stream // streams waiting for an idle worker
	idleWorkers int
	streams     map[uint32]*stream
	maxClientID uint32 // the highest stream id the client opened
	handlers    int    // handlers running, reset streams included
	sendWindow  int64  // connection send window
	peerWindow  int32  // peer's SETTINGS_INITIAL_WINDOW_SIZE
	recvAvail   int32  // connection receive window left to the client
	recvPending int32  // consumed bytes not yet returned by WINDOW_UPDATE
	goingAway   bool   // GOAWAY sent: no new streams, close when idle
	ready       bool   // our SETTINGS went out: a GOAWAY may follow
	closed      bool
	idleTimer   *time.Timer
	idleArmed   bool // idleTimer is running
	// The streams we last reset, in a ring: enough for the frames in
	// flight when a handler ends early, bounded whatever the client does.
	resetIDs  [32]uint32
	resetNext int

	// Read loop only.
	opened, resets int

	// handlerWG counts the worker goroutines; serve waits for them.
	handlerWG sync.WaitGroup
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:          s,
		nc:         nc,
		tls:        tlsState(nc),
		remoteAddr: nc.RemoteAddr().String(),
		maxStreams: s.maxStreams(),
		streamWin:  s.streamWindow(),
		streams:    make(map[uint32]*stream),
		sendWindow: initialWindow,
		peerWindow: initialWindow,
		recvAvail:  s.connWindow(),
		lower:      make(map[string]string),
	}
	c.flow.L = &c.mu
	c.work.L = &c.mu
	c.ctx, c.cancel = context.WithCancel(context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr()))
	// crypto/tls buffers whole records: another buffer on top would only
	// copy. Plain connections get a small one, or every frame would take
	// two reads.
	c.r = nc
	if _, ok := nc.(*tls.Conn); !ok {
		c.r = bufio.NewReaderSize(nc, readBufferSize)
	}
	c.fr = http2.NewFramer(frameWriter{c}, c.r)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(headerTableSize, nil)
	c.fr.MaxHeaderListSize = uint32(s.maxHeaderBytes())
	c.fr.SetMaxReadFrameSize(readFrameSize)
	c.fr.SetReuseFrames()
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.peerMaxFrame.Store(readFrameSize)
	return c
}

// serve runs the read loop until the connection ends.
func (c *conn) serve() {
	defer func() {
		c.close()
		// The handlers' contexts are canceled: they end promptly, and
		// ServeConn stays their owner until they have.
		c.handlerWG.Wait()
	}()
	if d := c.s.prefaceTimeout(); d > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(d))
	}
	var buf [len(preface)]byte
	if _, err := io.ReadFull(c.r, buf[:]); err != nil || string(buf[:]) != preface {
		c.connError(http2.ConnectionError(http2.ErrCodeProtocol), "bad connection preface")
		return
	}
	c.lockWrite()
	c.writeSettings()
	if extra := c.recvAvail - initialWindow; extra > 0 {
		_ = c.fr.WriteWindowUpdate(0, uint32(extra))
	}
	c.unlockWrite()
	c.mu.Lock()
	c.ready = true
	shutdown := c.goingAway
	c.goingAway = false
	c.mu.Unlock()
	if shutdown {
		// Shutdown came while the preface was on its way, or before
		// ServeConn: GOAWAY now, and the read loop below reads until the
		// client closes (or the linger ends), so that closing does not
		// reset the connection under the GOAWAY.
		c.goAway()
	}

	// The first frame must be the client's SETTINGS (3.4).
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.readError(err)
		return
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		c.connError(http2.ConnectionError(http2.ErrCodeProtocol), "first frame is not SETTINGS")
		return
	}
	if err := c.process(f); err != nil {
		c.readError(err)
		return
	}
	c.mu.Lock()
	// Under mu: a GOAWAY that raced the client's SETTINGS has set the
	// linger deadline, which must stay.
	if !c.goingAway {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	c.armIdleLocked()
	c.mu.Unlock()

	for {
		f, err := c.fr.ReadFrame()
		if err == nil {
			err = c.process(f)
		}
		if err == nil {
			continue
		}
		var se http2.StreamError
		if errors.As(err, &se) {
			if c.fr.ErrorDetail() != nil {
				// A header block the framer refused (an invalid field):
				// its HEADERS still opened the stream (5.1.1), and the
				// client's DATA for it must not look like an idle
				// stream's.
				c.mu.Lock()
				if se.StreamID%2 == 1 && se.StreamID > c.maxClientID {
					c.maxClientID = se.StreamID
				}
				c.mu.Unlock()
			}
			c.resetStream(se.StreamID, se.Code, nil)
			continue
		}
		c.readError(err)
		return
	}
}

// readError ends the connection after a read or protocol error.
func (c *conn) readError(err error) {
	if errors.Is(err, http2.ErrFrameTooLarge) {
		err = http2.ConnectionError(http2.ErrCodeFrameSize) // 4.2
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.connError(ce, err.Error())
		return
	}
	// An I/O error or the client closing: nothing to tell it.
}

// connError sends GOAWAY with the error code and ends the connection
// (5.4.1). The read loop calls it and returns: the write side is shut
// down and what the client still sends is read and dropped for up to
// lingerTimeout, since closing a socket with unread bytes makes the
// kernel reset it, and a client could lose the GOAWAY to that reset.
func (c *conn) connError(ce http2.ConnectionError, why string) {
	c.s.logger().Debug("http2 connection error", "remote", c.remoteAddr, "code", http2.ErrCode(ce).String(), "detail", why)
	c.lockWrite() // before goingAway is set: see goAway
	c.mu.Lock()
	last := c.maxClientID
	c.goingAway = true
	c.mu.Unlock()
	_ = c.fr.WriteGoAway(last, http2.ErrCode(ce), nil)
	c.wmu.Unlock()
	c.closeWrite()
	_, _ = io.CopyN(io.Discard, c.r, maxLingerBytes)
}

// maxLingerBytes bounds what a closing connection reads and drops.
const maxLingerBytes = 256 << 10

// close ends the connection: handlers see their contexts canceled and
// their writes fail, blocked flow-control waits return.
func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	streams := make([]*stream, 0, len(c.streams))
	for _, st := range c.streams {
		streams = append(streams, st)
	}
	c.flow.Broadcast()
	c.work.Broadcast()
	c.mu.Unlock()
	c.cancel()
	for _, st := range streams {
		st.body.closeWithError(errConnClosed)
	}
	// Closing unblocks a writer stuck on a client that stopped reading;
	// taking wmu afterwards waits for it to give up.
	_ = c.nc.Close()
	c.wmu.Lock()
	if c.werr == nil {
		c.werr = errConnClosed
	}
	c.wmu.Unlock()
}

// goAway starts a graceful close: GOAWAY with the last stream accepted,
// then close once no stream is open (Server.Shutdown, client GOAWAY).
func (c *conn) goAway() {
	// wmu first (the lock order is wmu, then mu): a stream that closes
	// once goingAway is set closes the connection, and must find the
	// GOAWAY already written.
	c.lockWrite()
	c.mu.Lock()
	if c.goingAway || c.closed || !c.ready {
		// Not ready: serve sends it after our SETTINGS, which come first.
		c.goingAway = true
		c.mu.Unlock()
		c.unlockWrite()
		return
	}
	c.goingAway = true
	last, idle := c.maxClientID, len(c.streams) == 0
	c.mu.Unlock()
	_ = c.fr.WriteGoAway(last, http2.ErrCodeNo, nil)
	c.unlockWrite()
	if idle {
		c.closeWrite()
	}
}

// closeWrite ends a connection that said GOAWAY and has nothing left to
// send: whatever is buffered is flushed, later writes are refused, and
// the write side is shut down. The read loop then reads until the client
// closes too (or lingerTimeout passes), so the client's last frames do
// not make the kernel reset the connection before it read ours.
func (c *conn) closeWrite() {
	c.lockWrite()
	if c.werr == nil {
		c.flushLocked()
	}
	if c.werr == nil {
		c.werr = errConnClosed
		if !shutdownWrite(c.nc) {
			_ = c.nc.Close()
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	}
	c.wmu.Unlock()
}

// lingerTimeout bounds the reads after our side of the connection closed.
const lingerTimeout = time.Second

// shutdownWrite half-closes nc: close_notify for TLS, then FIN. It reports
// false when nc cannot be half-closed.
func shutdownWrite(nc net.Conn) bool {
	for {
		switch c := nc.(type) {
		case *tls.Conn:
			_ = c.CloseWrite()
			nc = c.NetConn()
		case interface{ CloseWrite() error }:
			return c.CloseWrite() == nil
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return false
		}
	}
}

// armIdleLocked starts the idle timer if the connection has no stream.
// The caller holds mu.
func (c *conn) armIdleLocked() {
	d := c.s.idleTimeout()
	if d <= 0 || len(c.streams) > 0 || c.closed {
		return
	}
	c.idleArmed = true
	if c.idleTimer == nil {
		c.idleTimer = time.AfterFunc(d, c.idleFired)
		return
	}
	c.idleTimer.Reset(d)
}

func (c *conn) idleFired() {
	c.mu.Lock()
	idle := len(c.streams) == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.goAway()
	}
}

func (c *conn) writeSettings() {
	_ = c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.maxStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(c.streamWin)},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: readFrameSize},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(c.s.maxHeaderBytes())},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
	)
}

// lockWrite takes the right to write frames. The waiting count tells the
// holder whether someone else will flush after it.
func (c *conn) lockWrite() {
	c.wwaiting.Add(1)
	c.wmu.Lock()
	c.wwaiting.Add(-1)
	if c.bw == nil {
		c.bw = c.s.getWriter(c.nc)
	}
	c.refreshDeadline()
}

// frameWriter is the framer's destination: the connection's current
// write buffer. Used under wmu only.
type frameWriter struct{ c *conn }

func (w frameWriter) Write(p []byte) (int, error) { return w.c.bw.Write(p) }

// unlockWrite flushes unless another writer is waiting for the lock: that
// one will, so frames of concurrent responses leave in one write. The
// invariant: whenever wmu is free and nobody waits, bw is empty. Flush
// also reports a failed write that bypassed the buffer (a frame larger
// than it), since bufio's errors stick.
func (c *conn) unlockWrite() {
	if c.werr == nil && c.wwaiting.Load() == 0 {
		c.flushLocked()
		if c.werr == nil {
			c.s.putWriter(c.bw)
			c.bw = nil
		}
	}
	c.wmu.Unlock()
}

// flushLocked writes out bw. A failure (also one of an earlier write that
// bypassed the buffer: bufio's errors stick) ends the connection. The
// caller holds wmu.
func (c *conn) flushLocked() {
	if c.bw == nil {
		return
	}
	if err := c.bw.Flush(); err != nil {
		c.werr = err
		// The client is gone or stuck: end the connection so the read
		// loop stops too.
		_ = c.nc.Close()
	}
}

// refreshDeadline keeps the write deadline SlowClientTimeout ahead, moving
// it only when half of that (at most deadlineSlack) has been used up:
// each move is a poller update. The caller holds wmu.
func (c *conn) refreshDeadline() {
	d := c.s.slowClientTimeout()
	if d <= 0 {
		return
	}
	now := time.Now()
	if c.deadlineAt.Sub(now) < d-min(d/2, deadlineSlack) {
		c.deadlineAt = now.Add(d)
		_ = c.nc.SetWriteDeadline(c.deadlineAt)
	}
}

// process handles one frame in the read loop. It returns a StreamError
// for an error confined to one stream and a ConnectionError otherwise.
func (c *conn) process(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		c.lockWrite()
		_ = c.fr.WritePing(true, f.Data)
		c.unlockWrite()
	case *http2.RSTStreamFrame:
		return c.processRST(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
	case *http2.GoAwayFrame:
		c.goAway()
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	// Unknown frame types are ignored (5.5).
	return nil
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	// Parameters apply in order, so a repeated one ends with its last
	// value (6.5.3).
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			return c.setPeerWindow(int32(s.Val))
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame.Store(s.Val)
		case http2.SettingHeaderTableSize:
			c.lockWrite()
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
			c.unlockWrite()
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.lockWrite()
	_ = c.fr.WriteSettingsAck()
	c.unlockWrite()
	return nil
}

// setPeerWindow applies a new SETTINGS_INITIAL_WINDOW_SIZE to every open
// stream's send window (6.9.2); windows may go negative.
func (c *conn) setPeerWindow(v int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delta := int64(v) - int64(c.peerWindow)
	c.peerWindow = v
	for _, st := range c.streams {
		st.sendWindow += delta
		if st.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	}
	c.flow.Broadcast()
	return nil
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.flow.Broadcast()
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if c.idleLocked(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil // a closed stream: the update crossed our END_STREAM
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	c.flow.Broadcast()
	return nil
}

// idleLocked reports whether id names a stream the client has not opened
// yet (5.1): frames other than HEADERS and PRIORITY on it are a
// connection error. The caller holds mu.
func (c *conn) idleLocked(id uint32) bool {
	return id%2 == 0 || id > c.maxClientID
}

func (c *conn) processRST(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	st := c.streams[f.StreamID]
	if st == nil {
		idle := c.idleLocked(f.StreamID)
		c.mu.Unlock()
		if idle {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	last := c.closeStreamLocked(st)
	c.mu.Unlock()
	st.cancel()
	st.body.closeWithError(errClientReset)
	if last {
		c.closeWrite()
	}
	c.resets++
	if c.opened >= resetMinStreams && 2*c.resets > c.opened {
		c.s.logger().Debug("http2 rapid reset: closing connection", "remote", c.remoteAddr, "opened", c.opened, "reset", c.resets)
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	return nil
}

// processData takes request body bytes for a stream, enforcing flow
// control and the declared Content-Length.
func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int32(f.Length) // padding counts against the windows too (6.9.1)
	c.mu.Lock()
	if n > c.recvAvail {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvAvail -= n
	st := c.streams[id]
	if st == nil || st.remoteClosed {
		idle := st == nil && c.idleLocked(id)
		ours := st == nil && c.resetByUsLocked(id)
		c.mu.Unlock()
		c.returnConnCredit(n)
		switch {
		case idle:
			return http2.ConnectionError(http2.ErrCodeProtocol)
		case ours:
			return nil // it crossed our RST_STREAM: ignored (5.4.2)
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if n > st.recvAvail {
		c.mu.Unlock()
		c.returnConnCredit(n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.recvAvail -= n
	data := f.Data()
	st.received += int64(len(data))
	if st.declared >= 0 && (st.received > st.declared || f.StreamEnded() && st.received != st.declared) {
		c.mu.Unlock()
		c.returnConnCredit(n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	last := false
	if f.StreamEnded() {
		st.remoteClosed = true
		if st.localClosed {
			last = c.closeStreamLocked(st)
		}
	}
	c.mu.Unlock()
	if last {
		c.closeWrite()
	}
	if pad := n - int32(len(data)); pad > 0 {
		c.returnCredit(st, pad) // padding is never read: its credit is owed now
	}
	if len(data) > 0 && !st.body.write(data) {
		// The handler is done with the body: the bytes are dropped and
		// their credit returned.
		c.returnConnCredit(int32(len(data)))
	}
	if f.StreamEnded() {
		st.body.closeWithError(io.EOF)
	}
	return nil
}

// returnConnCredit gives n bytes of connection window back to the client,
// in updates of at least half the window so a stream of small frames
// does not become a stream of WINDOW_UPDATEs.
func (c *conn) returnConnCredit(n int32) {
	c.returnCredit(nil, n)
}

// returnCredit gives n consumed bytes back to the connection window and,
// when st is still receiving, to its window.
func (c *conn) returnCredit(st *stream, n int32) {
	if n <= 0 {
		return
	}
	var connInc, streamInc int32
	c.mu.Lock()
	c.recvAvail += n
	c.recvPending += n
	if c.recvPending >= c.s.connWindow()/2 {
		connInc, c.recvPending = c.recvPending, 0
	}
	if st != nil && !st.remoteClosed && c.streams[st.id] == st {
		st.recvAvail += n
		st.recvPending += n
		if st.recvPending >= c.streamWin/2 {
			streamInc, st.recvPending = st.recvPending, 0
		}
	}
	c.mu.Unlock()
	if connInc == 0 && streamInc == 0 {
		return
	}
	c.lockWrite()
	if connInc > 0 {
		_ = c.fr.WriteWindowUpdate(0, uint32(connInc))
	}
	if streamInc > 0 {
		_ = c.fr.WriteWindowUpdate(st.id, uint32(streamInc))
	}
	c.unlockWrite()
}

// resetStream sends RST_STREAM for id and closes the stream if it is
// open. st may be nil; it is looked up.
func (c *conn) resetStream(id uint32, code http2.ErrCode, st *stream) {
	c.mu.Lock()
	if st == nil {
		st = c.streams[id]
	}
	last := false
	if st != nil {
		last = c.closeStreamLocked(st)
	}
	c.resetIDs[c.resetNext%len(c.resetIDs)] = id
	c.resetNext++
	c.mu.Unlock()
	c.lockWrite()
	_ = c.fr.WriteRSTStream(id, code)
	c.unlockWrite()
	if st != nil {
		st.cancel()
		st.body.closeWithError(errStreamClosed)
	}
	if last {
		c.closeWrite()
	}
}

// resetByUsLocked reports whether we recently sent RST_STREAM for id, so
// frames the client sent before it saw ours are ignored rather than
// answered with another reset or a connection error. The caller holds mu.
func (c *conn) resetByUsLocked(id uint32) bool {
	return slices.Contains(c.resetIDs[:], id)
}

// closeStreamLocked removes st from the open streams: its send-window
// waiters wake and an idle connection arms its idle timer. It reports
// whether the connection said GOAWAY and has no stream left: the caller
// then calls closeWrite once it has released mu. The caller holds mu.
func (c *conn) closeStreamLocked(st *stream) (last bool) {
	if c.streams[st.id] != st {
		return false
	}
	delete(c.streams, st.id)
	st.dead.Store(true)
	c.flow.Broadcast()
	if len(c.streams) > 0 {
		return false
	}
	c.work.Broadcast() // idle workers exit
	if c.goingAway {
		return true
	}
	c.armIdleLocked()
	return false
}
