package h2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/keelproxy/keel/internal/testpki"
)

// ioTimeout bounds every wait in these tests.
const ioTimeout = 5 * time.Second

// quietLog discards the server's log; H2_TEST_LOG=1 shows it, debug
// level included.
var quietLog = func() *slog.Logger {
	if os.Getenv("H2_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}()

// ---------------------------------------------------------------------
// Test server: a loopback listener handing accepted conns to ServeConn.

type testServer struct {
	tb   testing.TB
	srv  *Server
	ln   net.Listener
	addr string
	// wrap, if set, turns an accepted conn into the one served (TLS).
	wrap func(net.Conn) (net.Conn, error)

	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	notClosed atomic.Int32 // conns ServeConn returned without closing
}

func startServer(tb testing.TB, srv *Server) *testServer {
	return startServerWrap(tb, srv, nil)
}

func startServerWrap(tb testing.TB, srv *Server, wrap func(net.Conn) (net.Conn, error)) *testServer {
	tb.Helper()
	if srv.ErrorLog == nil {
		srv.ErrorLog = quietLog
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{tb: tb, srv: srv, ln: ln, addr: ln.Addr().String(), wrap: wrap, conns: map[net.Conn]struct{}{}}
	ts.wg.Add(1)
	go ts.accept()
	tb.Cleanup(ts.close)
	return ts
}

func (ts *testServer) url(path string) string { return "http://" + ts.addr + path }

func (ts *testServer) accept() {
	defer ts.wg.Done()
	for {
		c, err := ts.ln.Accept()
		if err != nil {
			return
		}
		ts.mu.Lock()
		ts.conns[c] = struct{}{}
		ts.mu.Unlock()
		ts.wg.Add(1)
		go func() {
			defer ts.wg.Done()
			defer func() {
				ts.mu.Lock()
				delete(ts.conns, c)
				ts.mu.Unlock()
			}()
			sc := c
			if ts.wrap != nil {
				var err error
				if sc, err = ts.wrap(c); err != nil {
					c.Close()
					return
				}
			}
			ts.srv.ServeConn(sc)
			if err := c.SetDeadline(time.Time{}); !errors.Is(err, net.ErrClosed) {
				ts.notClosed.Add(1)
			}
		}()
	}
}

// close stops the listener, shuts the Server down and waits for every
// ServeConn to return, closing the conns that outlive a grace period.
func (ts *testServer) close() {
	ts.ln.Close()
	ts.srv.Shutdown()
	if !waitGroup(&ts.wg, 3*time.Second) {
		ts.mu.Lock()
		n := len(ts.conns)
		for c := range ts.conns {
			c.Close()
		}
		ts.mu.Unlock()
		ts.tb.Logf("%d connection(s) still served 3s after Shutdown; closed them", n)
		if !waitGroup(&ts.wg, ioTimeout) {
			ts.tb.Errorf("ServeConn did not return after its connection was closed")
		}
	}
	if n := ts.notClosed.Load(); n > 0 {
		ts.tb.Errorf("ServeConn returned without closing its connection %d time(s)", n)
	}
}

func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// ---------------------------------------------------------------------
// Clients.

// h2cTransport is an x/net HTTP/2 client speaking h2c with prior
// knowledge.
func h2cTransport(tb testing.TB) *http2.Transport {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return tr
}

func h2cClient(tb testing.TB) *http.Client {
	return &http.Client{Transport: h2cTransport(tb), Timeout: 2 * ioTimeout}
}

// smallWindowClient is net/http's own HTTP/2 client (h2c prior
// knowledge) with the smallest receive windows it accepts.
func smallWindowClient(tb testing.TB) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols: &p,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerConnection: 65535,
			MaxReceiveBufferPerStream:     16384,
		},
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 2 * ioTimeout}
}

// ---------------------------------------------------------------------
// Small helpers.

// gate blocks handlers until the test (or its cleanup) opens it.
// startBlockingServer starts a server whose handler answers "ok", but
// first, for /block, signals entered and waits for release (or the
// request's end). The request body is never read.
func startBlockingServer(t *testing.T) (ts *testServer, entered chan struct{}, release *gate) {
	t.Helper()
	entered = make(chan struct{}, 1)
	var rel *gate
	ts = startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			rel.wait(r.Context())
		}
		io.WriteString(w, "ok")
	})})
	rel = newGate(t)
	return ts, entered, rel
}

type gate struct {
	ch   chan struct{}
	once sync.Once
}

// newGate must be called after startServer so that its cleanup, which
// opens it, runs before the server's.
func newGate(tb testing.TB) *gate {
	g := &gate{ch: make(chan struct{})}
	tb.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) wait(ctx context.Context) {
	select {
	case <-g.ch:
	case <-ctx.Done():
	}
}

func recv[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ioTimeout):
		tb.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// pattern returns n deterministic, non-repeating-ish bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// patternHandler writes ?n= bytes of pattern in 8 KiB writes.
func patternHandler(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	p := pattern(n)
	for len(p) > 0 {
		k := min(len(p), 8<<10)
		if _, err := w.Write(p[:k]); err != nil {
			return
		}
		p = p[k:]
	}
}

// sumHandler answers the length and SHA-256 of the request body.
func sumHandler(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%d %s", len(b), hex.EncodeToString(s[:]))
}

func get(t testing.TB, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return res, string(b)
}

// ---------------------------------------------------------------------
// Tests with real clients.

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d.%d host=%s uri=%s path=%s q=%s cl=%d body=%s",
			r.Method, r.Proto, r.ProtoMajor, r.ProtoMinor, r.Host, r.RequestURI, r.URL.Path, r.URL.RawQuery, r.ContentLength, b)
	})})
	client := h2cClient(t)
	tests := []struct {
		method, path, body, want string
	}{
		{"GET", "/", "", "GET HTTP/2.0 2.0 host=%s uri=/ path=/ q= cl=0 body="},
		{"GET", "/a/b?x=1&y=%20", "", "GET HTTP/2.0 2.0 host=%s uri=/a/b?x=1&y=%%20 path=/a/b q=x=1&y=%%20 cl=0 body="},
		{"POST", "/post", "hello", "POST HTTP/2.0 2.0 host=%s uri=/post path=/post q= cl=5 body=hello"},
		{"PUT", "/put", strings.Repeat("x", 100000), "PUT HTTP/2.0 2.0 host=%s uri=/put path=/put q= cl=100000 body=" + strings.Repeat("x", 100000)},
		{"DELETE", "/d", "", "DELETE HTTP/2.0 2.0 host=%s uri=/d path=/d q= cl=0 body="},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, ts.url(tt.path), body)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if want := fmt.Sprintf(tt.want, ts.addr); res.StatusCode != 200 || res.ProtoMajor != 2 || string(b) != want {
				t.Fatalf("got %d %s %.200q\nwant 200 HTTP/2 %.200q", res.StatusCode, res.Proto, b, want)
			}
		})
	}
}

func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	})})
	client := h2cClient(t)
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/r%d", i)
			res, err := client.Get(ts.url(path))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if string(b) != path {
				t.Errorf("got %q, want %q", b, path)
			}
		}()
	}
	wg.Wait()
}

func TestTLS(t *testing.T) {
	t.Parallel()
	ca := testpki.New(t, "keel h2 test")
	cert, pool := ca.Issue(t, "server", testpki.IPs("127.0.0.1")).TLS, ca.Pool
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	type seen struct {
		tls   bool
		proto string
	}
	got := make(chan seen, 1)
	ts := startServerWrap(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{tls: r.TLS != nil}
		if r.TLS != nil {
			s.proto = r.TLS.NegotiatedProtocol
			s.tls = r.TLS.HandshakeComplete
		}
		got <- s
		io.WriteString(w, "secure")
	})}, func(c net.Conn) (net.Conn, error) {
		tc := tls.Server(c, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		return tc, nil
	})
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 2 * ioTimeout}
	res, body := get(t, client, "https://"+ts.addr+"/")
	if res.StatusCode != 200 || body != "secure" || res.TLS == nil {
		t.Fatalf("got %d %q (TLS %v)", res.StatusCode, body, res.TLS != nil)
	}
	if s := <-got; !s.tls || s.proto != "h2" {
		t.Fatalf("handler saw TLS=%v protocol %q, want a completed handshake with h2", s.tls, s.proto)
	}
}

func TestFlushSendsAtOnce(t *testing.T) {
	t.Parallel()
	var release *gate
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Early", "1")
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		release.wait(r.Context())
		io.WriteString(w, "second")
	})})
	release = newGate(t)
	client := h2cClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.url("/"), nil)
	res, err := client.Do(req) // headers must arrive while the handler waits
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("X-Early") != "1" || res.ContentLength != -1 {
		t.Fatalf("header %v content length %d; want X-Early and no Content-Length", res.Header, res.ContentLength)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "first" {
		t.Fatalf("read %q, %v; want the flushed %q", first, err, "first")
	}
	release.open()
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != "second" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestEarlyHints(t *testing.T) {
	t.Parallel()
	var release *gate
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		release.wait(r.Context()) // the client sees the 103 before this returns
		w.Header().Set("X-Final", "1")
		io.WriteString(w, "page")
	})})
	release = newGate(t)
	client := h2cClient(t)
	var hints []string
	req, _ := http.NewRequest("GET", ts.url("/"), nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
			release.open()
			return nil
		},
	}))
	ctx, cancel := context.WithTimeout(req.Context(), ioTimeout)
	defer cancel()
	res, err := client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%v (103 never arrived?)", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := []string{"103 </style.css>; rel=preload"}; fmt.Sprint(hints) != fmt.Sprint(want) {
		t.Fatalf("informational responses %q, want %q", hints, want)
	}
	if res.StatusCode != 200 || string(b) != "page" || res.Header.Get("X-Final") != "1" {
		t.Fatalf("final response %d %q %v", res.StatusCode, b, res.Header)
	}
}

func TestResponseTrailers(t *testing.T) {
	t.Parallel()
	for _, flush := range []bool{false, true} {
		t.Run(fmt.Sprintf("flush=%v", flush), func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Declared")
				io.WriteString(w, "body")
				if flush {
					w.(http.Flusher).Flush()
				}
				w.Header().Set("X-Declared", "d")
				w.Header().Set(http.TrailerPrefix+"X-Prefixed", "p")
			})})
			res, body := get(t, h2cClient(t), ts.url("/"))
			if body != "body" {
				t.Fatalf("body %q", body)
			}
			if res.Trailer.Get("X-Declared") != "d" || res.Trailer.Get("X-Prefixed") != "p" {
				t.Fatalf("trailers %v, want X-Declared: d and X-Prefixed: p", res.Trailer)
			}
			if res.Header.Get("X-Declared") != "" || res.Header.Get("X-Prefixed") != "" {
				t.Fatalf("trailer values leaked into the header: %v", res.Header)
			}
		})
	}
}

func TestHeaderChangesAfterWriteIgnored(t *testing.T) {
	t.Parallel()
	// net/http: changing the header map after WriteHeader (or the first
	// Write) has no effect, except for trailers.
	tests := []struct {
		name string
		h    http.HandlerFunc
	}{
		{"after WriteHeader", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.Header().Set("X-Late", "1")
			io.WriteString(w, "body")
		}},
		{"after Write", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "body")
			w.Header().Set("X-Late", "1")
		}},
		{"after Flush", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Late", "1")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, &Server{Handler: tt.h})
			res, body := get(t, h2cClient(t), ts.url("/"))
			if body != "body" || res.Header.Get("X-Late") != "" || res.Trailer.Get("X-Late") != "" {
				t.Fatalf("body %q header %v trailer %v; X-Late was set after the header was written", body, res.Header, res.Trailer)
			}
		})
	}
}

func TestRequestTrailers(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %v t=%s", b, err, r.Trailer.Get("X-T"))
	})})
	req, _ := http.NewRequest("POST", ts.url("/"), io.NopCloser(strings.NewReader("payload")))
	req.Trailer = http.Header{"X-T": {"tv"}}
	res, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := "payload <nil> t=tv"; string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

func TestAutoContentLength(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		h       http.HandlerFunc
		wantCL  int64
		wantHdr string // Content-Length header value, "" for none
		body    string
	}{
		{"small body", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }, 5, "5", "hello"},
		{"two writes", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hel")
			io.WriteString(w, "lo")
		}, 5, "5", "hello"},
		{"explicit", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "abc")
		}, 3, "3", "abc"},
		{"flushed", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hel")
			w.(http.Flusher).Flush()
			io.WriteString(w, "lo")
		}, -1, "", "hello"},
		{"no body", func(w http.ResponseWriter, r *http.Request) {}, 0, "", ""},
		{"204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, &Server{Handler: tt.h})
			res, body := get(t, h2cClient(t), ts.url("/"))
			if body != tt.body || res.ContentLength != tt.wantCL {
				t.Fatalf("body %q content length %d, want %q %d", body, res.ContentLength, tt.body, tt.wantCL)
			}
			got := res.Header.Values("Content-Length")
			if tt.name == "no body" { // 0 or absent are both fine
				if len(got) > 1 || len(got) == 1 && got[0] != "0" {
					t.Fatalf("Content-Length %q", got)
				}
				return
			}
			if (tt.wantHdr == "" && len(got) != 0) || (tt.wantHdr != "" && (len(got) != 1 || got[0] != tt.wantHdr)) {
				t.Fatalf("Content-Length %q, want %q", got, tt.wantHdr)
			}
		})
	}
}

func TestDateHeader(t *testing.T) {
	t.Parallel()
	const fixed = "Mon, 02 Jan 2006 15:04:05 GMT"
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fixed" {
			w.Header().Set("Date", fixed)
		}
		io.WriteString(w, "ok")
	})})
	client := h2cClient(t)
	res, _ := get(t, client, ts.url("/"))
	d, err := http.ParseTime(res.Header.Get("Date"))
	if err != nil || time.Since(d).Abs() > time.Minute {
		t.Fatalf("Date %q (%v), want the current time", res.Header.Get("Date"), err)
	}
	res, _ = get(t, client, ts.url("/fixed"))
	if got := res.Header.Values("Date"); len(got) != 1 || got[0] != fixed {
		t.Fatalf("Date %q, want the handler's %q", got, fixed)
	}
}

func TestBodyNotAllowed(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusNoContent, http.StatusNotModified} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			errc := make(chan error, 1)
			ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(code)
				_, err := io.WriteString(w, "x")
				errc <- err
			})})
			res, body := get(t, h2cClient(t), ts.url("/"))
			if res.StatusCode != code || body != "" {
				t.Fatalf("got %d %q", res.StatusCode, body)
			}
			if err := recv(t, errc, "handler"); !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Fatalf("Write after %d returned %v, want http.ErrBodyNotAllowed", code, err)
			}
		})
	}
}

func TestLargeBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		win      int32 // server StreamWindow and ConnWindow; 0 for defaults
		client   func(testing.TB) *http.Client
		size     int
		parallel int
	}{
		// Bigger than every window on both sides.
		{"minimal server windows, x/net client", 65535, h2cClient, 1 << 20, 3},
		{"minimal windows both sides", 65535, smallWindowClient, 1 << 20, 3},
		{"default windows, x/net client", 0, h2cClient, 5 << 20, 1},
		{"default server windows, small client windows", 0, smallWindowClient, 2 << 20, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := &Server{StreamWindow: tt.win, ConnWindow: tt.win}
			srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "POST" {
					sumHandler(w, r)
					return
				}
				patternHandler(w, r)
			})
			ts := startServer(t, srv)
			client := tt.client(t)
			want := pattern(tt.size)
			var wg sync.WaitGroup
			for range tt.parallel {
				wg.Add(2)
				go func() { // upload
					defer wg.Done()
					res, err := client.Post(ts.url("/up"), "application/octet-stream", bytes.NewReader(want))
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if string(b) != sumOf(want) {
						t.Errorf("upload: server saw %q, want %q", b, sumOf(want))
					}
				}()
				go func() { // download
					defer wg.Done()
					res, err := client.Get(ts.url(fmt.Sprintf("/down?n=%d", tt.size)))
					if err != nil {
						t.Error(err)
						return
					}
					b, err := io.ReadAll(res.Body)
					res.Body.Close()
					if err != nil || !bytes.Equal(b, want) {
						t.Errorf("download: %d bytes, %v; want %d bytes of the pattern", len(b), err, tt.size)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// ---------------------------------------------------------------------
// Benchmarks.

func BenchmarkSmallGET(b *testing.B) {
	ts := startServer(b, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello, world")
	})})
	client := h2cClient(b)
	url := ts.url("/")
	if _, body := get(b, client, url); body != "hello, world" { // warm the connection
		b.Fatalf("body %q", body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

func BenchmarkPOST64K(b *testing.B) {
	ts := startServer(b, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})})
	client := h2cClient(b)
	url := ts.url("/")
	payload := pattern(64 << 10)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Post(url, "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				b.Error(err)
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if string(body) != "65536" {
				b.Errorf("server read %q bytes", body)
				return
			}
		}
	})
}
