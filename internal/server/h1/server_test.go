package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeepAliveSequential(t *testing.T) {
	t.Parallel()
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, strings.Repeat("x", n))
		_, _ = w.Write(body)
	})
	c := dial(t, ts.addr)
	for i := 0; i < 200; i++ {
		// Sizes cross the held-back buffer, so responses alternate
		// between Content-Length and chunked framing.
		n := (i * 997) % 10000
		body := strconv.Itoa(i)
		c.send(fmt.Sprintf("POST /?n=%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", n, len(body), body))
		res, got := c.response("POST")
		if want := strings.Repeat("x", n) + body; got != want || res.StatusCode != 200 {
			t.Fatalf("request %d: status %d, body %d bytes, want %d", i, res.StatusCode, len(got), len(want))
		}
		if res.Close {
			t.Fatalf("request %d: Connection: close on a keep-alive exchange", i)
		}
	}
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	var order atomic.Int32
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d:%s:%s", order.Add(1), r.URL.Path, body)
	})
	c := dial(t, ts.addr)
	var all strings.Builder
	for i := 0; i < 20; i++ {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&all, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		case 1:
			fmt.Fprintf(&all, "POST /%d HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", i)
		case 2:
			fmt.Fprintf(&all, "POST /%d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n", i)
		}
	}
	c.send(all.String()) // every request in one write
	for i := 0; i < 20; i++ {
		_, got := c.response("GET")
		want := fmt.Sprintf("%d:/%d:%s", i+1, i, []string{"", "abc", "de"}[i%3])
		if got != want {
			t.Fatalf("response %d = %q, want %q", i, got, want)
		}
	}
}

func TestRequestTrailers(t *testing.T) {
	t.Parallel()
	type seen struct{ before, after string }
	got := make(chan seen, 1)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		var s seen
		s.before = fmt.Sprint(r.Trailer)
		_, _ = io.ReadAll(r.Body)
		s.after = fmt.Sprint(r.Trailer)
		got <- s
	})
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
		"3\r\nabc\r\n0\r\nX-Sum: 9\r\nContent-Length: 99\r\nX-Extra: e\r\n\r\n")
	c.response("POST")
	s := <-got
	if want := "map[X-Sum:[]]"; s.before != want {
		t.Errorf("Trailer before EOF = %s, want %s", s.before, want)
	}
	// Content-Length is framing and never comes from a trailer.
	if want := "map[X-Extra:[e] X-Sum:[9]]"; s.after != want {
		t.Errorf("Trailer after EOF = %s, want %s", s.after, want)
	}
}

// readContinue reads an interim 100 response and fails on anything else.
func readContinue(t *testing.T, c *client) {
	t.Helper()
	if head := c.rawHead(); !strings.HasPrefix(head, "HTTP/1.1 100 Continue\r\n") {
		t.Fatalf("interim response = %q, want 100 Continue", head)
	}
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	t.Run("sent once when the handler reads", func(t *testing.T) {
		t.Parallel()
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			b1 := make([]byte, 2)
			_, _ = io.ReadFull(r.Body, b1)
			rest, _ := io.ReadAll(r.Body) // a second read must not resend it
			if r.Header.Get("Expect") != "" {
				w.WriteHeader(http.StatusContinue) // a proxy relaying the upstream's: dropped
			}
			fmt.Fprintf(w, "%s%s", b1, rest)
		})
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		readContinue(t, c)
		c.send("hello")
		res, body := c.response("POST")
		if res.StatusCode != 200 || body != "hello" {
			t.Fatalf("got %d %q, want 200 hello", res.StatusCode, body)
		}
		// The connection stays usable: nothing else was interleaved.
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if res, _ := c.response("GET"); res.StatusCode != 200 {
			t.Fatalf("next request: %d", res.StatusCode)
		}
	})
	t.Run("not sent when the handler answers first", func(t *testing.T) {
		t.Parallel()
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			w.(http.Flusher).Flush()
			_, _ = io.ReadAll(r.Body) // too late for an interim response
		})
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		head := c.rawHead()
		if !strings.HasPrefix(head, "HTTP/1.1 413 ") || !strings.Contains(head, "Connection: close\r\n") {
			t.Fatalf("head = %q, want 413 with Connection: close", head)
		}
	})
	t.Run("not sent when the body is never read", func(t *testing.T) {
		t.Parallel()
		ts := serve(t, okHandler)
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		res, body := c.response("POST")
		if res.StatusCode != 200 || body != "ok" || !res.Close {
			t.Fatalf("got %d %q close=%v, want 200 ok with Connection: close", res.StatusCode, body, res.Close)
		}
		if !c.closed() {
			t.Fatal("connection kept although the body was never requested")
		}
	})
	t.Run("ignored for HTTP/1.0", func(t *testing.T) {
		t.Parallel()
		ts := serve(t, echoHandler)
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
		res, body := c.response("POST")
		if res.StatusCode != 200 || !strings.Contains(body, `body="hi"`) {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
	})
}

func TestInformationalResponses(t *testing.T) {
	t.Parallel()
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Add("Link", "</b.js>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "done")
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	h1, h2 := c.rawHead(), c.rawHead()
	if !strings.HasPrefix(h1, "HTTP/1.1 103 Early Hints\r\n") || strings.Count(h1, "Link:") != 1 {
		t.Errorf("first interim = %q", h1)
	}
	if !strings.HasPrefix(h2, "HTTP/1.1 103 Early Hints\r\n") || strings.Count(h2, "Link:") != 2 {
		t.Errorf("second interim = %q", h2)
	}
	res, body := c.response("GET")
	if res.StatusCode != 200 || body != "done" || res.Header.Get("Link") != "" {
		t.Errorf("final = %d %q Link=%q", res.StatusCode, body, res.Header.Get("Link"))
	}
}

func TestHijack(t *testing.T) {
	t.Parallel()
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "echo")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
			panic(fmt.Sprintf("Write after Hijack = %v", err))
		}
		line, _ := brw.ReadString('\n') // sent by the client with the request
		_, _ = brw.WriteString("echo:" + line)
		_ = brw.Flush()
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping\n")
	head := c.rawHead()
	if !strings.HasPrefix(head, "HTTP/1.1 101 Switching Protocols\r\n") ||
		!strings.Contains(head, "Connection: Upgrade\r\n") || strings.Contains(head, "Content-Length") {
		t.Fatalf("head = %q", head)
	}
	line, err := c.br.ReadString('\n')
	if err != nil || line != "echo:ping\n" {
		t.Fatalf("after hijack read %q, %v; want echo:ping", line, err)
	}
	if !c.closed() {
		t.Fatal("hijacker closed the conn, client should see EOF")
	}
}

func TestFlushDeliversImmediately(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			panic(err)
		}
		<-release // the client must see the event while we wait
		_, _ = io.WriteString(w, "data: 2\n\n")
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("data: 1\n\n"))
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "data: 1\n\n" {
		t.Fatalf("first event %q, %v", buf, err)
	}
	close(release)
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != "data: 2\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" {
		t.Errorf("TransferEncoding = %v, want chunked", res.TransferEncoding)
	}
}

func TestHEADKeepsConnectionInSync(t *testing.T) {
	t.Parallel()
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("b", 10000)) // over the held-back buffer
	})
	c := dial(t, ts.addr)
	for i := 0; i < 3; i++ {
		c.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
		head := c.rawHead()
		if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") {
			t.Fatalf("HEAD head = %q", head)
		}
	}
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := c.response("GET"); len(body) != 10000 {
		t.Fatalf("GET after HEADs: body %d bytes", len(body))
	}
}

func TestUnreadBody(t *testing.T) {
	t.Parallel()
	ts := serve(t, okHandler) // never reads the body
	tests := []struct {
		name      string
		req       string
		wantClose bool
	}{
		{"short body drained", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", false},
		{"short chunked drained", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false},
		{"long body closes", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("z", 1000000), true},
		{"long chunked closes", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strings.Repeat("8000\r\n"+strings.Repeat("q", 0x8000)+"\r\n", 12) + "0\r\n\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, ts.addr)
			go func() { _, _ = io.WriteString(c.c, tt.req) }() // may block on a big body
			res, body := c.response("POST")
			if res.StatusCode != 200 || body != "ok" {
				t.Fatalf("got %d %q", res.StatusCode, body)
			}
			if tt.wantClose {
				if !c.closed() {
					t.Fatal("connection kept after an undrainable body")
				}
				return
			}
			if res.Close {
				t.Fatal("Connection: close after a drainable body")
			}
			c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if res, body := c.response("GET"); res.StatusCode != 200 || body != "ok" {
				t.Fatalf("next request: %d %q", res.StatusCode, body)
			}
		})
	}
}

func TestBodyAfterHandlerReturns(t *testing.T) {
	t.Parallel()
	bodies := make(chan io.ReadCloser, 1)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) { bodies <- r.Body })
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
	c.response("POST")
	b := <-bodies
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Fatalf("Read after handler = %v, want ErrBodyReadAfterClose", err)
	}
}

func TestShortContentLengthClosesConnection(t *testing.T) {
	t.Parallel()
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		_, _ = io.WriteString(w, "short")
		if _, err := io.WriteString(w, "toolong!"); !errors.Is(err, http.ErrContentLength) {
			panic(fmt.Sprintf("overlong write = %v", err))
		}
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	head := c.rawHead()
	if !strings.Contains(head, "Content-Length: 10\r\n") {
		t.Fatalf("head = %q", head)
	}
	got, _ := io.ReadAll(c.br)
	if string(got) != "short" {
		t.Fatalf("body = %q, want short and then close", got)
	}
}

func TestKeepAlivesDisabled(t *testing.T) {
	t.Parallel()
	ts := serve(t, okHandler)
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if res, _ := c.response("GET"); res.Close {
		t.Fatal("Connection: close before SetKeepAlivesEnabled(false)")
	}
	ts.SetKeepAlivesEnabled(false)
	// The idle connection was closed; a new one gets Connection: close.
	if !c.closed() {
		t.Fatal("idle connection kept after SetKeepAlivesEnabled(false)")
	}
	c2 := dial(t, ts.addr)
	c2.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if res, _ := c2.response("GET"); !res.Close {
		t.Fatal("no Connection: close with keep-alives disabled")
	}
	ts.SetKeepAlivesEnabled(true)
}

func TestExactLimitsAccepted(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(okHandler), MaxURLBytes: 100, MaxHeaderCount: 3})
	c := dial(t, ts.addr)
	target := "/" + strings.Repeat("a", 99)
	c.send("GET " + target + " HTTP/1.1\r\nHost: a\r\nX-1: a\r\nX-2: b\r\n\r\n")
	if res, _ := c.response("GET"); res.StatusCode != 200 {
		t.Fatalf("target of exactly MaxURLBytes and MaxHeaderCount fields: %d, want 200", res.StatusCode)
	}
}

func TestDefaultLimits(t *testing.T) {
	t.Parallel()
	ts := serve(t, okHandler)
	tests := []struct {
		name string
		req  string
		want int
	}{
		{"8KB target", "GET /" + strings.Repeat("a", 8<<10-1) + " HTTP/1.1\r\nHost: a\r\n\r\n", 200},
		{"8KB+1 target", "GET /" + strings.Repeat("a", 8<<10) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"60KB cookie", "GET / HTTP/1.1\r\nHost: a\r\nCookie: " + strings.Repeat("c", 60<<10) + "\r\n\r\n", 200},
		{"65KB cookie", "GET / HTTP/1.1\r\nHost: a\r\nCookie: " + strings.Repeat("c", 65<<10) + "\r\n\r\n", 431},
		{"100 fields", "GET / HTTP/1.1\r\n" + strings.Repeat("X-A: a\r\n", 99) + "Host: a\r\n\r\n", 200},
		{"101 fields", "GET / HTTP/1.1\r\n" + strings.Repeat("X-A: a\r\n", 100) + "Host: a\r\n\r\n", 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, ts.addr)
			go func() { _, _ = io.WriteString(c.c, tt.req) }()
			if res, _ := c.response("GET"); res.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.want)
			}
		})
	}
}

func TestSlowClientTimeout(t *testing.T) {
	t.Parallel()
	werr := make(chan error, 1)
	ctxDone := make(chan bool, 1)
	ts := startServer(t, &Server{SlowClientTimeout: 200 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 64<<10)
			for i := 0; i < 2000; i++ { // 128MB: far more than socket buffers hold
				if _, err := w.Write(chunk); err != nil {
					werr <- err
					select {
					case <-r.Context().Done():
						ctxDone <- true
					case <-time.After(time.Second):
						ctxDone <- false
					}
					return
				}
			}
			werr <- nil
		})})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	// The client reads nothing.
	start := time.Now()
	select {
	case err := <-werr:
		if err == nil {
			t.Fatal("handler wrote 128MB to a client that reads nothing")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("write failed after %v, want about the 200ms timeout", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write still blocked after 10s")
	}
	if !<-ctxDone {
		t.Error("request context not cancelled after the write failure")
	}
}

func TestSlowButLiveClientIsServed(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	ts := startServer(t, &Server{SlowClientTimeout: 300 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(make([]byte, size))
		})})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Read slowly but steadily: 128KB every 50ms, for longer in total
	// than the slow-client timeout.
	n := 0
	buf := make([]byte, 128<<10)
	for {
		time.Sleep(50 * time.Millisecond)
		m, err := io.ReadFull(res.Body, buf)
		n += m
		if err != nil {
			break
		}
	}
	if n != size {
		t.Fatalf("read %d bytes, want %d: a slow but live client was cut", n, size)
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(okHandler), ReadHeaderTimeout: 200 * time.Millisecond})
	tests := []struct{ name, partial string }{
		{"nothing sent", ""},
		{"partial head", "GET / HTTP/1.1\r\nHost: a\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, ts.addr)
			c.send(tt.partial)
			start := time.Now()
			if !c.closed() {
				t.Fatal("connection still open")
			}
			if d := time.Since(start); d < 100*time.Millisecond {
				t.Errorf("closed after %v, before the timeout", d)
			}
		})
	}
	t.Run("kept-alive connection", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		c.response("GET")
		time.Sleep(300 * time.Millisecond) // idle: not bounded by ReadHeaderTimeout
		c.send("GET / HTTP/1.1\r\n")
		start := time.Now()
		if !c.closed() {
			t.Fatal("connection still open with a stalled head")
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("closed after %v, before the timeout", d)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(okHandler), IdleTimeout: 200 * time.Millisecond})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	c.response("GET")
	start := time.Now()
	if !c.closed() {
		t.Fatal("idle connection still open")
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("closed after %v, want about 200ms", d)
	}
}

func TestShutdownCompletesInFlight(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})}
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	busy := dial(t, ln.Addr().String())
	busy.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
	close(release)
	res, body := busy.response("GET")
	if body != "finished" || !res.Close {
		t.Errorf("in-flight response %q close=%v, want finished with Connection: close", body, res.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
}

func TestShutdownClosesIdleAndTimesOut(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			<-block
		}
	})}
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	idle := dial(t, ln.Addr().String())
	idle.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	idle.response("GET")
	busy := dial(t, ln.Addr().String())
	busy.send("GET /block HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
	}
	if !idle.closed() {
		t.Error("idle connection not closed by Shutdown")
	}
	close(block)
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
	if err := s.Serve(listen(t)); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v", err)
	}
}

func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			_, _ = io.WriteString(w, "partial")
			panic("boom")
		case "/abort":
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(w, "ok")
	})
	for _, path := range []string{"/panic", "/abort"} {
		c := dial(t, ts.addr)
		c.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
		got, err := io.ReadAll(c.br)
		if len(got) != 0 || err != nil {
			t.Errorf("%s: got %q, %v; want the connection closed with no response", path, got, err)
		}
	}
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := c.response("GET"); body != "ok" {
		t.Fatalf("server broken after a panic: %q", body)
	}
	logs := ts.logs.String()
	if strings.Count(logs, "panic serving") != 1 || !strings.Contains(logs, "boom") {
		t.Errorf("logs = %q, want one panic record (none for ErrAbortHandler)", logs)
	}
}

func TestContextCancellation(t *testing.T) {
	t.Parallel()
	t.Run("client goes away", func(t *testing.T) {
		t.Parallel()
		cancelled := make(chan error, 1)
		entered := make(chan struct{})
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			close(entered)
			select {
			case <-r.Context().Done():
				cancelled <- r.Context().Err()
			case <-time.After(5 * time.Second):
				cancelled <- nil
			}
		})
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
		<-entered
		c.c.Close()
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Fatalf("context error = %v, want Canceled", err)
		}
	})
	t.Run("handler returns", func(t *testing.T) {
		t.Parallel()
		ctxs := make(chan context.Context, 1)
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) { ctxs <- r.Context() })
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		c.response("GET")
		ctx := <-ctxs
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("context not cancelled after the handler returned")
		}
		if ctx.Value(http.LocalAddrContextKey) == nil {
			t.Error("no LocalAddrContextKey in the request context")
		}
	})
	t.Run("pipelined byte does not cancel", func(t *testing.T) {
		t.Parallel()
		errs := make(chan error, 2)
		ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
				errs <- r.Context().Err()
			case <-time.After(200 * time.Millisecond):
				errs <- nil
			}
			_, _ = io.WriteString(w, r.URL.Path)
		})
		c := dial(t, ts.addr)
		c.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
		time.Sleep(50 * time.Millisecond) // the background read is running
		c.send("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
		for _, want := range []string{"/1", "/2"} {
			if _, body := c.response("GET"); body != want {
				t.Fatalf("body = %q, want %q", body, want)
			}
			if err := <-errs; err != nil {
				t.Fatalf("%s: context ended with %v", want, err)
			}
		}
	})
}

func TestResponseController(t *testing.T) {
	t.Parallel()
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for _, err := range []error{
			rc.EnableFullDuplex(),
			rc.SetReadDeadline(time.Now().Add(time.Minute)),
			rc.SetWriteDeadline(time.Now().Add(time.Minute)),
			rc.SetWriteDeadline(time.Time{}),
		} {
			if err != nil {
				panic(err)
			}
		}
		// Full duplex: echo the body while writing the response.
		br := bufio.NewReader(r.Body)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				_, _ = io.WriteString(w, "echo "+line)
				if err := rc.Flush(); err != nil {
					panic(err)
				}
			}
			if err != nil {
				return
			}
		}
	})
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
	c.send("4\r\none\n\r\n")
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(res.Body)
	if line, _ := rd.ReadString('\n'); line != "echo one\n" {
		t.Fatalf("first echo %q", line)
	}
	c.send("4\r\ntwo\n\r\n0\r\n\r\n")
	if line, _ := rd.ReadString('\n'); line != "echo two\n" {
		t.Fatalf("second echo %q", line)
	}
}

func TestMalformedBodyStatusCode(t *testing.T) {
	t.Parallel()
	got := make(chan int, 1)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		var sc interface{ StatusCode() int }
		if errors.As(err, &sc) {
			got <- sc.StatusCode()
			http.Error(w, "bad body", sc.StatusCode())
			return
		}
		got <- 0
	})
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nnothex\r\n")
	res, _ := c.response("POST")
	if code := <-got; code != http.StatusBadRequest {
		t.Errorf("StatusCode() = %d, want 400", code)
	}
	if res.StatusCode != http.StatusBadRequest || !res.Close || !c.closed() {
		t.Errorf("response %d close=%v: want 400, Connection: close and a closed connection", res.StatusCode, res.Close)
	}
}
