package h2

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// Regression tests from the review of this server: each one failed
// against the first version.

// theConn returns the one connection srv is serving.
func theConn(t *testing.T, srv *Server) *conn {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for time.Now().Before(deadline) {
		srv.mu.Lock()
		for c := range srv.conns {
			srv.mu.Unlock()
			return c
		}
		srv.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no connection served")
	return nil
}

// waitFor polls cond (which runs under c.mu) until it holds.
func waitFor(t *testing.T, c *conn, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// readQuiet reads and handles frames until none arrives for d, calling fn
// for each.
func readQuiet(rc *rawConn, d time.Duration, fn func(http2.Frame)) {
	for {
		_ = rc.c.SetReadDeadline(time.Now().Add(d))
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return
		}
		rc.handle(f)
		fn(f)
	}
}

// Padding counts against the stream window (6.9.1) but processData returns
// only the connection's share of it (conn.go:638-640); the stream's is gone
// for good. A client that pads its DATA frames sees its stream window
// shrink by the padding of every frame although the handler read every
// byte, until the upload stalls.
func TestReviewPaddingStreamCreditReturned(t *testing.T) {
	t.Parallel()
	var read atomic.Int64
	ts := startServer(t, &Server{StreamWindow: 65535, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1024)
		for {
			n, err := r.Body.Read(buf)
			read.Add(int64(n))
			if err != nil {
				break
			}
		}
		io.WriteString(w, "ok")
	})})
	rc := connectRaw(t, ts.addr)
	rc.headers(1, false, reqFields("POST", "/")...)
	// 255 frames of 256 bytes each: 1 data byte, 255 bytes of padding
	// (the pad-length octet and 254 padding octets).
	const frames = 255
	pad := make([]byte, 254)
	rc.batch(func() {
		for range frames {
			rc.check(rc.fr.WriteDataPadded(1, false, []byte{'x'}, pad))
		}
	})
	win := int64(65535 - frames*256)
	deadline := time.Now().Add(ioTimeout)
	for read.Load() < frames {
		if time.Now().After(deadline) {
			t.Fatalf("handler read %d bytes, want %d", read.Load(), frames)
		}
		time.Sleep(time.Millisecond)
	}
	readQuiet(rc, 300*time.Millisecond, func(f http2.Frame) {
		if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID == 1 {
			win += int64(wu.Increment)
		}
	})
	if win < 16384 {
		t.Fatalf("handler consumed all %d bytes sent, but the client's stream window is %d: the padding's stream credit was never returned, the upload stalls", frames*256, win)
	}
}

// sendOne reserves send window in awaitWindow and only then takes wmu;
// when the stream was reset in between it returns errStreamClosed
// (write.go:260-263) without giving the reserved bytes back to
// c.sendWindow. Every such race leaks up to a frame of connection window,
// which the client never learns about (it never receives the bytes), so
// the connection's downloads eventually stall for good.
func TestReviewConnSendWindowLeakOnReset(t *testing.T) {
	t.Parallel()
	ready := make(chan struct{})
	proceed := make(chan struct{})
	writeErr := make(chan error, 1)
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			close(ready)
			<-proceed
			_, err := w.Write(make([]byte, 16384))
			writeErr <- err
		case "/b":
			w.Write(make([]byte, 65535))
		}
	})})
	rc := connectRaw(t, ts.addr)
	rc.autoWindow = false
	rc.get(1, "/a")
	recv(t, ready, "handler /a")
	c := theConn(t, ts.srv)
	c.wmu.Lock()
	close(proceed)
	// The handler reserved its window and waits for wmu.
	deadline := time.Now().Add(ioTimeout)
	for c.wwaiting.Load() == 0 {
		if time.Now().After(deadline) {
			c.wmu.Unlock()
			t.Fatal("handler never waited for wmu")
		}
		time.Sleep(time.Millisecond)
	}
	rc.check(rc.fr.WriteRSTStream(1, http2.ErrCodeCancel))
	waitFor(t, c, "stream 1 to close", func() bool { return c.streams[1] == nil })
	c.wmu.Unlock()
	if err := recv(t, writeErr, "write result"); err == nil {
		t.Fatal("write on a reset stream succeeded")
	}

	rc.get(3, "/b")
	got := 0
	readQuiet(rc, 300*time.Millisecond, func(f http2.Frame) {
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 3 {
			got += len(d.Data())
		}
	})
	if got != 65535 {
		t.Fatalf("stream 3 received %d bytes of the 65535 the connection window allows: the window reserved for the reset stream leaked", got)
	}
}

// pipe.write appends at the end of buf and buf is compacted only when the
// reader drains it completely (stream.go:431-433, 453-456). A handler that
// reads more slowly than the client sends, so the pipe is never empty,
// makes append copy the consumed prefix again and again: the buffer grows
// with the whole upload, not the stream window.
func TestReviewPipeBufferBounded(t *testing.T) {
	t.Parallel()
	const size = 2 << 20
	ts := startServer(t, &Server{StreamWindow: 65535, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.Body.(*pipe)
		maxCap := 0
		buf := make([]byte, 65536)
		total := 0
		for {
			p.mu.Lock()
			avail, ended := len(p.buf)-p.r, p.err != nil
			maxCap = max(maxCap, cap(p.buf))
			p.mu.Unlock()
			if ended {
				n, _ := io.Copy(io.Discard, r.Body)
				total += int(n)
				break
			}
			if avail < 20000 {
				time.Sleep(100 * time.Microsecond)
				continue
			}
			// Leave some bytes behind: a reader slower than the client.
			n, err := io.ReadFull(r.Body, buf[:avail-10000])
			total += n
			if err != nil {
				break
			}
		}
		io.WriteString(w, strconv.Itoa(total)+" "+strconv.Itoa(maxCap))
	})})
	rc := connectRaw(t, ts.addr)
	rc.headers(1, false, reqFields("POST", "/")...)
	rc.sendBody(1, make([]byte, size), true)
	res := rc.readResponse(1)
	var total, maxCap int
	if _, err := fmt.Sscan(string(res.body), &total, &maxCap); err != nil || total != size {
		t.Fatalf("response %q: %v", res.body, err)
	}
	if maxCap > 256<<10 {
		t.Fatalf("request body buffer grew to %d bytes for a 65535-byte stream window", maxCap)
	}
}

// processTrailers -> pipe.endWithTrailer writes the request's Trailer
// field and map from the read loop (stream.go endWithTrailer) while the
// handler may be using the request, e.g. httputil.ReverseProxy's
// req.Clone reading r.Trailer: a data race. With declared trailers the
// read loop writes into the map the handler sees (req.Trailer[k] = vv), a
// possible fatal "concurrent map read and map write". x/net copies
// trailers into the request on the handler's own Read that returns
// io.EOF. (The handler looks at r.Trailer in a loop with no I/O: any
// socket I/O is a happens-before edge for the race detector.)
func TestReviewRequestTrailersRace(t *testing.T) {
	// Not parallel: a race report fails every test running at the time.
	started := make(chan struct{})
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		n := 0
		for start := time.Now(); time.Since(start) < 150*time.Millisecond; {
			if r.Trailer != nil { // as ReverseProxy's req.Clone does
				n++
			}
		}
		w.Header().Set("X-Seen", strconv.Itoa(n))
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, r.Trailer.Get("X-T"))
	})})
	rc := connectRaw(t, ts.addr)
	rc.headers(1, false, reqFields("POST", "/")...)
	recv(t, started, "handler start")
	rc.headers(1, true, "x-t", "v")
	rc.expectStatus(1, "200", "v")
}

// pipe.Read sends 100 Continue via rw.sendContinue, which reads
// rw.sentHeader (write.go:203) without wmu; the handler goroutine writes it
// (write.go:266). HTTP/2 handlers may read the body on another goroutine
// (ReverseProxy's transport does) while the handler writes the response:
// a data race, and a 100 Continue may follow the final HEADERS (a
// malformed response).
func TestReviewExpectContinueRace(t *testing.T) {
	// Not parallel: a race report fails every test running at the time.
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(50 * time.Millisecond)
			io.Copy(io.Discard, r.Body)
		}()
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-done
	})})
	rc := connectRaw(t, ts.addr)
	rc.headers(1, false, append(reqFields("POST", "/"), "expect", "100-continue")...)
	rc.data(1, true, []byte("abc"))
	rc.expectStatus(1, "200", "")
}

// Shutdown after our SETTINGS went out but before the client's arrived:
// goAway finds no stream and calls closeWrite, which sets the linger read
// deadline; serve then processes the client's SETTINGS and clears the read
// deadline (conn.go:200). Nothing arms it again (the idle timer's goAway
// is a no-op once goingAway is set), so ServeConn hangs for as long as the
// client keeps the connection open.
func TestReviewShutdownBeforeClientSettings(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: okHandler, IdleTimeout: 200 * time.Millisecond})
	rc := dialRaw(t, ts.addr)
	rc.check(func() error { _, err := rc.w.Write([]byte(clientPreface)); return err }())
	f := rc.next() // the server's SETTINGS
	if _, ok := f.(*http2.SettingsFrame); !ok {
		t.Fatalf("got %v, want SETTINGS", describe(f))
	}
	c := theConn(t, ts.srv)
	waitFor(t, c, "ready", func() bool { return c.ready })
	ts.srv.Shutdown()
	rc.waitGoAway()
	rc.check(rc.fr.WriteSettings())
	deadline := time.Now().Add(lingerTimeout + 500*time.Millisecond)
	for time.Now().Before(deadline) {
		ts.srv.mu.Lock()
		n := len(ts.srv.conns)
		ts.srv.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("ServeConn still running %v after Shutdown of an idle connection (linger is %v)", lingerTimeout+500*time.Millisecond, lingerTimeout)
}

// A handler that writes more than the Content-Length it declared gets no
// error (net/http: http.ErrContentLength) and the client gets DATA beyond
// the declared length, a malformed response (RFC 9113 8.1.1) that the proxy
// passes on from a lying upstream.
func TestReviewContentLengthOverrun(t *testing.T) {
	t.Parallel()
	werr := make(chan error, 1)
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		_, err := io.WriteString(w, "hello")
		werr <- err
	})})
	rc := connectRaw(t, ts.addr)
	rc.get(1, "/")
	res := rc.readResponse(1)
	err := recv(t, werr, "write result")
	if !res.reset && res.header.Get("content-length") == "2" && len(res.body) > 2 {
		t.Fatalf("response declares content-length 2 but carries %d bytes %q (handler's Write error: %v)", len(res.body), res.body, err)
	}
	if err == nil {
		t.Fatal("Write beyond the declared Content-Length succeeded; net/http returns http.ErrContentLength")
	}
}

// A HEADERS frame the Framer rejects as a stream error (here an upper-case
// field name) never reaches processHeaders, so maxClientID does not move
// past its stream (conn.go:214-215). DATA the client had already sent on
// that stream is then taken for DATA on an idle stream: a connection
// error that kills every other stream on the connection.
func TestReviewInvalidHeaderStreamThenData(t *testing.T) {
	t.Parallel()
	ts, entered, release := startBlockingServer(t)
	rc := connectRaw(t, ts.addr)
	rc.get(1, "/block")
	recv(t, entered, "handler start")
	rc.batch(func() {
		rc.headers(3, false, append(reqFields("POST", "/"), "X-Upper", "v")...)
		rc.data(3, true, []byte("body"))
	})
	rc.expectReset(3, http2.ErrCodeProtocol)
	release.open()
	rc.expectStatus(1, "200", "ok")
	if rc.goAway != nil {
		t.Fatalf("connection ended with GOAWAY %+v", rc.goAway)
	}
}

// RFC 9113 5.1: "An endpoint MUST ignore frames that it receives on closed
// streams after it has sent a RST_STREAM frame." A handler that answers
// without reading the whole upload gets its stream reset with NO_ERROR
// (handlerDone); the client's trailers, already in flight, then hit
// processHeaders' "HEADERS on a closed stream" branch (stream.go:62-65) and
// the whole connection is closed with STREAM_CLOSED.
func TestReviewTrailersAfterServerReset(t *testing.T) {
	t.Parallel()
	ts, entered, release := startBlockingServer(t)
	rc := connectRaw(t, ts.addr)
	rc.get(1, "/block")
	recv(t, entered, "handler start")
	rc.headers(3, false, reqFields("POST", "/upload")...)
	rc.expectStatus(3, "200", "ok")
	// Sent before the client read the RST_STREAM(NO_ERROR) that follows.
	rc.headers(3, true, "x-checksum", "abc")
	rc.ping([8]byte{1})
	release.open()
	rc.expectStatus(1, "200", "ok")
	if rc.goAway != nil {
		t.Fatalf("connection ended with GOAWAY %+v", rc.goAway)
	}
}
