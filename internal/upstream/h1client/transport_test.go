package h1client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoHandler answers what it saw of the request, and a few fixed shapes of
// response by path.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			_, _ = io.WriteString(w, "part1")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part2")
			return
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/notmodified":
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
			return
		case "/empty":
			w.Header().Set("Content-Length", "0")
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if len(body) > 64 {
			body = []byte("n=" + strconv.Itoa(len(body)))
		}
		fmt.Fprintf(w, "%s %s cl=%d te=%v close=%v ua=%q ae=%q body=%s",
			r.Method, r.RequestURI, r.ContentLength, r.TransferEncoding, r.Close,
			r.Header.Get("User-Agent"), r.Header.Get("Accept-Encoding"), body)
	})
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, echoHandler())
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	big := strings.Repeat("x", 1<<20)
	tests := []struct {
		name     string
		method   string
		path     string
		body     func() io.Reader // nil: no body
		length   int64            // ContentLength, when set is true
		set      bool
		wantCode int
		wantBody string
		wantCL   int64
		wantTE   []string
	}{
		{name: "GET", method: "GET", path: "/a?b=c", wantCode: 200,
			wantBody: `GET /a?b=c cl=0 te=[] close=false ua="" ae="" body=`},
		{name: "HEAD", method: "HEAD", path: "/", wantCode: 200, wantBody: "",
			wantCL: int64(len(`HEAD / cl=0 te=[] close=false ua="" ae="" body=`))},
		{name: "POST Content-Length", method: "POST", path: "/p", body: func() io.Reader { return strings.NewReader("hello") },
			wantCode: 200, wantBody: `POST /p cl=5 te=[] close=false ua="" ae="" body=hello`},
		{name: "POST unknown length is chunked", method: "POST", path: "/p", body: func() io.Reader { return newStreamBody("hello") },
			length: -1, set: true, wantCode: 200, wantBody: `POST /p cl=-1 te=[chunked] close=false ua="" ae="" body=hello`},
		{name: "POST zero length with a body is chunked", method: "POST", path: "/p", body: func() io.Reader { return newStreamBody("abc") },
			length: 0, set: true, wantCode: 200, wantBody: `POST /p cl=-1 te=[chunked] close=false ua="" ae="" body=abc`},
		{name: "POST NoBody", method: "POST", path: "/p", body: func() io.Reader { return http.NoBody },
			wantCode: 200, wantBody: `POST /p cl=0 te=[] close=false ua="" ae="" body=`},
		{name: "DELETE without body", method: "DELETE", path: "/d", wantCode: 200,
			wantBody: `DELETE /d cl=0 te=[] close=false ua="" ae="" body=`},
		{name: "PUT 1MB in memory", method: "PUT", path: "/big", body: func() io.Reader { return strings.NewReader(big) },
			wantCode: 200, wantBody: `PUT /big cl=1048576 te=[] close=false ua="" ae="" body=n=1048576`},
		{name: "PUT 1MB streamed with length", method: "PUT", path: "/big", body: func() io.Reader { return newStreamBody(big) },
			length: 1 << 20, set: true, wantCode: 200, wantBody: `PUT /big cl=1048576 te=[] close=false ua="" ae="" body=n=1048576`},
		{name: "PUT 1MB streamed chunked", method: "PUT", path: "/big", body: func() io.Reader { return newStreamBody(big) },
			length: -1, set: true, wantCode: 200, wantBody: `PUT /big cl=-1 te=[chunked] close=false ua="" ae="" body=n=1048576`},
		{name: "chunked response", method: "GET", path: "/chunked", wantCode: 200, wantBody: "part1part2", wantCL: -1, wantTE: []string{"chunked"}},
		{name: "204", method: "GET", path: "/nocontent", wantCode: 204},
		{name: "304", method: "GET", path: "/notmodified", wantCode: 304},
		{name: "explicit empty", method: "GET", path: "/empty", wantCode: 200},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.body != nil {
			body = tt.body()
		}
		req := newReq(t, context.Background(), tt.method, "http://"+s.addr()+tt.path, body)
		if tt.set {
			req.ContentLength = tt.length
		}
		resp, got, err := do(tr, req)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if resp.StatusCode != tt.wantCode || got != tt.wantBody {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, resp.StatusCode, got, tt.wantCode, tt.wantBody)
		}
		wantCL := tt.wantCL
		if wantCL == 0 {
			wantCL = int64(len(tt.wantBody))
		}
		if resp.ContentLength != wantCL || !slices.Equal(resp.TransferEncoding, tt.wantTE) {
			t.Errorf("%s: ContentLength %d TransferEncoding %v, want %d %v", tt.name, resp.ContentLength, resp.TransferEncoding, wantCL, tt.wantTE)
		}
		if resp.Proto != "HTTP/1.1" || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 || resp.Request != req {
			t.Errorf("%s: Proto %q %d.%d Request %p, want HTTP/1.1 and the request", tt.name, resp.Proto, resp.ProtoMajor, resp.ProtoMinor, resp.Request)
		}
		if want := strconv.Itoa(tt.wantCode) + " " + http.StatusText(tt.wantCode); resp.Status != want {
			t.Errorf("%s: Status %q, want %q", tt.name, resp.Status, want)
		}
		if _, ok := resp.Header["Transfer-Encoding"]; ok {
			t.Errorf("%s: Transfer-Encoding left in Header", tt.name)
		}
	}
	if n := s.opened.Load(); n != 1 {
		t.Errorf("server saw %d connections for %d sequential requests, want 1 (keep-alive)", n, len(tests))
	}
}

// TestRequestWire checks the exact bytes of requests.
func TestRequestWire(t *testing.T) {
	t.Parallel()
	got := make(chan *rawRequest, 1)
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readRawRequest(br)
			if err != nil {
				return
			}
			got <- r
			if _, err := io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
				return
			}
		}
	})
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	tests := []struct {
		name       string
		req        func() *http.Request
		wantLine   string
		wantFields []string // sorted
		wantBody   string
	}{
		{
			name: "GET keeps the escaped path and query",
			req: func() *http.Request {
				return newReq(t, context.Background(), "GET", "http://example.com/a%2Fb/c?x=1&y", nil)
			},
			wantLine:   "GET /a%2Fb/c?x=1&y HTTP/1.1",
			wantFields: []string{"Host: example.com"},
		},
		{
			name: "Host override, header values as given, no added fields",
			req: func() *http.Request {
				r := newReq(t, context.Background(), "GET", "http://example.com/", nil)
				r.Host = "virtual.example:8080"
				r.Header.Set("X-Multi", "a")
				r.Header.Add("X-Multi", "b")
				r.Header["content-length"] = []string{"99"}      // never a second length
				r.Header["Transfer-Encoding"] = []string{"gzip"} // framing is ours
				return r
			},
			wantLine:   "GET / HTTP/1.1",
			wantFields: []string{"Host: virtual.example:8080", "X-Multi: a", "X-Multi: b"},
		},
		{
			name: "opaque target",
			req: func() *http.Request {
				r := newReq(t, context.Background(), "GET", "http://example.com/", nil)
				r.URL.Opaque = "/raw%2Fpath"
				return r
			},
			wantLine:   "GET /raw%2Fpath HTTP/1.1",
			wantFields: []string{"Host: example.com"},
		},
		{
			name: "Content-Length body",
			req: func() *http.Request {
				return newReq(t, context.Background(), "POST", "http://h/p", strings.NewReader("hello"))
			},
			wantLine:   "POST /p HTTP/1.1",
			wantFields: []string{"Content-Length: 5", "Host: h"},
			wantBody:   "hello",
		},
		{
			name:       "POST without body says Content-Length: 0",
			req:        func() *http.Request { return newReq(t, context.Background(), "POST", "http://h/p", nil) },
			wantLine:   "POST /p HTTP/1.1",
			wantFields: []string{"Content-Length: 0", "Host: h"},
		},
		{
			name: "chunked body with trailers set at EOF",
			req: func() *http.Request {
				r := newReq(t, context.Background(), "POST", "http://h/p", nil)
				r.Trailer = http.Header{"X-Sum": nil}
				r.Body = io.NopCloser(&trailerSetter{r: strings.NewReader("hello"), trailer: r.Trailer})
				r.ContentLength = -1
				return r
			},
			wantLine:   "POST /p HTTP/1.1",
			wantFields: []string{"Host: h", "Trailer: X-Sum", "Transfer-Encoding: chunked"},
			wantBody:   "5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n",
		},
		{
			name: "Close asks for close",
			req: func() *http.Request {
				r := newReq(t, context.Background(), "GET", "http://h/", nil)
				r.Close = true
				return r
			},
			wantLine:   "GET / HTTP/1.1",
			wantFields: []string{"Connection: close", "Host: h"},
		},
	}
	for _, tt := range tests {
		resp, _, err := do(tr, tt.req())
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if resp.StatusCode != 204 {
			t.Errorf("%s: status %d, want 204", tt.name, resp.StatusCode)
		}
		r := <-got
		slices.Sort(r.fields)
		if r.line != tt.wantLine || !slices.Equal(r.fields, tt.wantFields) || r.body != tt.wantBody {
			t.Errorf("%s: upstream got\n%q %q %q\nwant\n%q %q %q", tt.name, r.line, r.fields, r.body, tt.wantLine, tt.wantFields, tt.wantBody)
		}
	}
}

// trailerSetter sets the X-Sum trailer (to value, or 42) when its body
// ends, as a streaming producer computing a checksum would.
type trailerSetter struct {
	r       io.Reader
	trailer http.Header
	value   string
}

func (s *trailerSetter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		v := s.value
		if v == "" {
			v = "42"
		}
		s.trailer["X-Sum"] = []string{v}
	}
	return n, err
}

func TestInvalidRequest(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	s := newCountedServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	tests := []struct {
		name   string
		modify func(*http.Request)
	}{
		{"CRLF in a value", func(r *http.Request) { r.Header.Set("X-Evil", "a\r\nX-Injected: 1") }},
		{"LF in a value", func(r *http.Request) { r.Header["X-Evil"] = []string{"a\nb"} }},
		{"NUL in a value", func(r *http.Request) { r.Header["X-Evil"] = []string{"a\x00b"} }},
		{"space in a name", func(r *http.Request) { r.Header["Bad Name"] = []string{"x"} }},
		{"newline in a name", func(r *http.Request) { r.Header["Bad\nName"] = []string{"x"} }},
		{"invalid method", func(r *http.Request) { r.Method = "GE T" }},
		{"invalid Host", func(r *http.Request) { r.Host = "a b" }},
		{"CRLF in Host", func(r *http.Request) { r.Host = "a\r\nX: y" }},
		{"space in query", func(r *http.Request) { r.URL.RawQuery = "a b" }},
		{"length without body", func(r *http.Request) { r.ContentLength = 5 }},
		{"nil URL", func(r *http.Request) { r.URL = nil }},
		{"bad trailer name", func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("x")), -1
			r.Trailer = http.Header{"Bad Name": nil}
		}},
	}
	for _, tt := range tests {
		req := newReq(t, context.Background(), "GET", "http://"+s.addr()+"/", nil)
		tt.modify(req)
		if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "invalid request") {
			t.Errorf("%s: RoundTrip error = %v, want an invalid request error", tt.name, err)
		}
	}
	// Nothing reached a handler; a connection may have been opened before
	// a field turned out to be invalid, but no request was completed.
	if _, _, err := get(t, tr, "/"); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1 (only the valid request)", n)
	}
	if tr.OpenConns() != 1 {
		t.Errorf("OpenConns = %d after the failures and one good request, want 1", tr.OpenConns())
	}
}

func TestBodyClosedOnError(t *testing.T) {
	t.Parallel()
	tr := &Transport{Address: "127.0.0.1:1", Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errSentinel
	}}
	body := newStreamBody("x")
	req := newReq(t, context.Background(), "POST", "http://h/", body)
	if _, err := tr.RoundTrip(req); err != errSentinel {
		t.Errorf("RoundTrip with a failing Dial = %v, want the dial error unchanged", err)
	}
	if n := body.closes.Load(); n != 1 {
		t.Errorf("request body closed %d times, want 1", n)
	}
}

func TestTrailers(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = w.Write(b)
		w.Header().Set("X-Checksum", "req="+r.Trailer.Get("X-Sum"))
		w.Header().Set(http.TrailerPrefix+"X-Late", "undeclared")
	}))
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	req := newReq(t, context.Background(), "POST", "http://"+s.addr()+"/", nil)
	req.Trailer = http.Header{"X-Sum": nil}
	req.Body = io.NopCloser(&trailerSetter{r: strings.NewReader("data"), trailer: req.Trailer})
	req.ContentLength = -1
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v, ok := resp.Trailer["X-Checksum"]; !ok || v != nil {
		t.Errorf("before the body: Trailer = %v, want X-Checksum declared with no value", resp.Trailer)
	}
	if _, ok := resp.Header["Trailer"]; ok {
		t.Errorf("Header still has Trailer: %v", resp.Header)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "data" {
		t.Fatalf("body = %q, %v; want data", b, err)
	}
	if got, want := resp.Trailer.Get("X-Checksum"), "req=42"; got != want {
		t.Errorf("trailer X-Checksum = %q, want %q", got, want)
	}
	if got := resp.Trailer.Get("X-Late"); got != "undeclared" {
		t.Errorf("trailer X-Late = %q, want undeclared", got)
	}
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, echoHandler())
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	uses := []struct {
		name string
		path string
		use  func(*http.Response) error
	}{
		{"read to EOF", "/", func(r *http.Response) error { _, err := io.ReadAll(r.Body); return err }},
		{"read to EOF, not closed", "/", func(r *http.Response) error { _, err := io.ReadAll(r.Body); return err }},
		{"closed unread (buffered)", "/", func(r *http.Response) error { return r.Body.Close() }},
		{"chunked read to EOF", "/chunked", func(r *http.Response) error { _, err := io.ReadAll(r.Body); return err }},
		{"no body, not closed", "/nocontent", func(*http.Response) error { return nil }},
		{"read exactly the length", "/empty", func(*http.Response) error { return nil }},
	}
	for _, u := range uses {
		req := newReq(t, context.Background(), "GET", "http://"+s.addr()+u.path, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", u.name, err)
		}
		if err := u.use(resp); err != nil {
			t.Fatalf("%s: %v", u.name, err)
		}
		if got := tr.IdleConns(); got != 1 {
			t.Errorf("%s: IdleConns = %d, want 1", u.name, got)
		}
	}
	if n := s.opened.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1", n)
	}
	if n := tr.OpenConns(); n != 1 {
		t.Errorf("OpenConns = %d, want 1", n)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, echoHandler())
	tr := &Transport{Address: s.addr(), MaxIdle: 8}
	t.Cleanup(tr.CloseIdleConnections)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			for i := range 20 {
				path := "/"
				if (g+i)%3 == 0 {
					path = "/chunked"
				}
				if _, _, err := get(t, tr, path); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if idle, open := tr.IdleConns(), tr.OpenConns(); idle > 8 || idle != open {
		t.Errorf("after the load IdleConns = %d, OpenConns = %d; want equal and at most MaxIdle 8", idle, open)
	}
}

func TestConnectionClose(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = io.WriteString(w, "ok close="+strconv.FormatBool(r.Close))
	}))
	tests := []struct {
		name     string
		path     string
		reqClose bool
		want     string
	}{
		{"response says close", "/close", false, "ok close=false"},
		{"request says close", "/", true, "ok close=true"},
	}
	for _, tt := range tests {
		tr := &Transport{Address: s.addr()}
		req := newReq(t, context.Background(), "GET", "http://"+s.addr()+tt.path, nil)
		req.Close = tt.reqClose
		resp, body, err := do(tr, req)
		if err != nil || body != tt.want {
			t.Fatalf("%s: %q, %v; want %q", tt.name, body, err, tt.want)
		}
		if !resp.Close && !tt.reqClose {
			t.Errorf("%s: resp.Close = false, want true", tt.name)
		}
		if tr.IdleConns() != 0 || tr.OpenConns() != 0 {
			t.Errorf("%s: IdleConns %d OpenConns %d, want the connection closed", tt.name, tr.IdleConns(), tr.OpenConns())
		}
	}
}

func TestHTTP10(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		response  string
		wantBody  string
		wantClose bool
		wantCL    int64
	}{
		{"read to close", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, until close", "hello, until close", true, -1},
		{"length, no keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", true, 2},
		{"length and keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "ok", false, 2},
		{"HTTP/1.1 without length reads to close", "HTTP/1.1 200 OK\r\n\r\nstream", "stream", true, -1},
	}
	for _, tt := range tests {
		s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			for {
				if _, err := readRawRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, tt.response)
				if tt.wantClose {
					return
				}
			}
		})
		tr := &Transport{Address: s.addr()}
		for i := range 2 {
			resp, body, err := get(t, tr, "/")
			if err != nil || body != tt.wantBody {
				t.Fatalf("%s #%d: %q, %v; want %q", tt.name, i, body, err, tt.wantBody)
			}
			if resp.Close != tt.wantClose || resp.ContentLength != tt.wantCL {
				t.Errorf("%s: Close %v ContentLength %d, want %v %d", tt.name, resp.Close, resp.ContentLength, tt.wantClose, tt.wantCL)
			}
		}
		wantConns := int32(1)
		if tt.wantClose {
			wantConns = 2
		}
		if n := s.accepted.Load(); n != wantConns {
			t.Errorf("%s: %d connections for 2 requests, want %d", tt.name, n, wantConns)
		}
		tr.CloseIdleConnections()
	}
}

// TestMalformedResponses: ambiguous or broken responses fail, with an error
// matching ErrMalformedResponse, and their connection is closed.
func TestMalformedResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		response string
		inBody   bool // the error surfaces while reading the body
	}{
		{"both Content-Length and Transfer-Encoding", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false},
		{"differing Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", false},
		{"negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false},
		{"Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", false},
		{"unsupported Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false},
		{"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", false},
		{"Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"garbage status line", "garbage\r\n\r\n", false},
		{"bad status code", "HTTP/1.1 2OO OK\r\n\r\n", false},
		{"HTTP/2 status line", "HTTP/2.0 200 OK\r\n\r\n", false},
		{"header without colon", "HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n", false},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 0\r\n\r\n", false},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n", false},
		{"NUL in value", "HTTP/1.1 200 OK\r\nX-A: b\x00c\r\nContent-Length: 0\r\n\r\n", false},
		{"bare CR in value", "HTTP/1.1 200 OK\r\nX-A: b\rc\r\nContent-Length: 0\r\n\r\n", false},
		{"forbidden trailer declaration", "HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"closed inside the head", "HTTP/1.1 200 OK\r\nContent-Le", false},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", true},
		{"missing CRLF after chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", true},
		{"bare LF after chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", true},
		{"chunk size overflow", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", true},
		{"bad trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nNoColon\r\n\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := readRawRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, tt.response)
				if tt.name == "closed inside the head" {
					return
				}
				_, _ = io.Copy(io.Discard, br) // until the client closes
			})
			tr := &Transport{Address: s.addr()}
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", "http://"+s.addr()+"/", nil))
			if !tt.inBody {
				if !errors.Is(err, ErrMalformedResponse) {
					t.Fatalf("RoundTrip error = %s, want ErrMalformedResponse", describe(err))
				}
			} else {
				if err != nil {
					t.Fatalf("RoundTrip: %v, want the error from the body", err)
				}
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if !errors.Is(err, ErrMalformedResponse) {
					t.Fatalf("body read error = %s, want ErrMalformedResponse", describe(err))
				}
			}
			if n := tr.OpenConns(); n != 0 {
				t.Errorf("OpenConns = %d after a malformed response, want 0", n)
			}
		})
	}
}

func TestTruncatedBody(t *testing.T) {
	t.Parallel()
	for _, response := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
	} {
		s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := readRawRequest(br); err == nil {
				_, _ = io.WriteString(c, response)
			}
		})
		tr := &Transport{Address: s.addr()}
		_, body, err := get(t, tr, "/")
		if !errors.Is(err, io.ErrUnexpectedEOF) || body != "hello" {
			t.Errorf("truncated %q: body %q, error %v; want hello and io.ErrUnexpectedEOF", response, body, err)
		}
		if tr.OpenConns() != 0 {
			t.Errorf("OpenConns = %d, want 0", tr.OpenConns())
		}
	}
}

func TestInterimResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		interim string
		wantErr bool
	}{
		{"103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", false},
		{"unasked 100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", false},
		{"several", "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n", false},
		{"too many", strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", max1xx+1), true},
	}
	for _, tt := range tests {
		s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			for {
				if _, err := readRawRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, tt.interim+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		tr := &Transport{Address: s.addr()}
		resp, body, err := get(t, tr, "/")
		switch {
		case tt.wantErr && !errors.Is(err, ErrMalformedResponse):
			t.Errorf("%s: error %v, want ErrMalformedResponse", tt.name, err)
		case !tt.wantErr && (err != nil || resp.StatusCode != 200 || body != "ok"):
			t.Errorf("%s: got %v %q %v, want 200 ok", tt.name, resp, body, err)
		case !tt.wantErr && resp.Header.Get("Link") != "":
			t.Errorf("%s: interim header leaked into the final response", tt.name)
		}
		tr.CloseIdleConnections()
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	tr := &Transport{Address: s.addr(), ResponseHeaderTimeout: 100 * time.Millisecond}
	t.Cleanup(tr.CloseIdleConnections)

	start := time.Now()
	_, _, err := get(t, tr, "/slow")
	var ne net.Error
	if !errors.Is(err, ErrResponseHeaderTimeout) || !errors.As(err, &ne) || !ne.Timeout() ||
		!strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Errorf("slow upstream: error %s, want ErrResponseHeaderTimeout, a net.Error timeout", describe(err))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow upstream: took %v, want about 100ms", d)
	}

	// The timeout counts from the end of the request: a slow upload is not
	// a slow upstream.
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "part1")
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(pw, "part2")
		pw.Close()
	}()
	req := newReq(t, context.Background(), "POST", "http://"+s.addr()+"/", pr)
	if _, body, err := do(tr, req); err != nil || body != "ok" {
		t.Errorf("slow upload: %q, %v; want ok", body, err)
	}
	// And it does not cut the body that follows the head.
	if _, body, err := get(t, tr, "/"); err != nil || body != "ok" {
		t.Errorf("after the timeouts: %q, %v; want ok", body, err)
	}
}

func TestContextCancel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))

	t.Run("waiting for headers", func(t *testing.T) {
		t.Parallel()
		tr := &Transport{Address: s.addr()}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := tr.RoundTrip(newReq(t, ctx, "GET", "http://"+s.addr()+"/head", nil))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %s, want context.Canceled", describe(err))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v after cancel", d)
		}
		if n := tr.OpenConns(); n != 0 {
			t.Errorf("OpenConns = %d, want 0", n)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		tr := &Transport{Address: s.addr()}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := tr.RoundTrip(newReq(t, ctx, "GET", "http://"+s.addr()+"/head", nil))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %s, want context.DeadlineExceeded", describe(err))
		}
	})
	t.Run("reading the body", func(t *testing.T) {
		t.Parallel()
		tr := &Transport{Address: s.addr()}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := tr.RoundTrip(newReq(t, ctx, "GET", "http://"+s.addr()+"/body", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 7)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "partial" {
			t.Fatalf("first bytes %q, %v", buf, err)
		}
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err = resp.Body.Read(buf)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Read after cancel = %s, want context.Canceled", describe(err))
		}
		if n := tr.OpenConns(); n != 0 {
			t.Errorf("OpenConns = %d, want 0", n)
		}
	})
	t.Run("already canceled", func(t *testing.T) {
		t.Parallel()
		tr := &Transport{Address: s.addr(), Dial: func(context.Context, string, string) (net.Conn, error) {
			t.Error("dialed for a canceled request")
			return nil, errSentinel
		}}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := tr.RoundTrip(newReq(t, ctx, "GET", "http://h/", nil)); !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	})
	t.Run("canceled after the response", func(t *testing.T) {
		t.Parallel()
		tr := &Transport{Address: s.addr()}
		ok := newCountedServer(t, echoHandler())
		tr.Address = ok.addr()
		ctx, cancel := context.WithCancel(context.Background())
		if _, _, err := do(tr, newReq(t, ctx, "GET", "http://h/", nil)); err != nil {
			t.Fatal(err)
		}
		cancel()
		// The pooled connection is not affected by the ended context.
		if _, _, err := get(t, tr, "/"); err != nil {
			t.Fatal(err)
		}
		if n := ok.opened.Load(); n != 1 {
			t.Errorf("server saw %d connections, want 1", n)
		}
		tr.CloseIdleConnections()
	})
}

// oneShotServer answers one request per connection with a keep-alive
// response and then closes the connection without saying so: every pooled
// connection goes stale.
func oneShotServer(t *testing.T) (*rawServer, chan struct{}) {
	closed := make(chan struct{}, 16)
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		defer func() { closed <- struct{}{} }()
		r, err := readRawHead(br)
		if err != nil {
			return
		}
		if r.field("Expect") == "" {
			if err := readRawBody(br, r); err != nil {
				return
			}
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	return s, closed
}

func TestStaleConnRetry(t *testing.T) {
	t.Parallel()
	s, closed := oneShotServer(t)
	tr := &Transport{Address: s.addr(), ExpectContinueTimeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	if _, _, err := get(t, tr, "/"); err != nil {
		t.Fatal(err)
	}
	<-closed
	if _, body, err := get(t, tr, "/"); err != nil || body != "ok" {
		t.Fatalf("GET on a stale connection = %q, %v; want it retried", body, err)
	}
	<-closed
	// A body not read yet (held back by Expect: 100-continue) may be
	// replayed too.
	body := newStreamBody("payload")
	req := newReq(t, context.Background(), "POST", "http://"+s.addr()+"/", body)
	req.ContentLength = 7
	req.Header.Set("Expect", "100-continue")
	if _, got, err := do(tr, req); err != nil || got != "ok" {
		t.Fatalf("POST with an unread body on a stale connection = %q, %v; want it retried", got, err)
	}
	if n := s.accepted.Load(); n != 3 {
		t.Errorf("server saw %d connections, want 3 (one per request)", n)
	}
	eventually(t, "the request body to be closed", func() bool { return body.closes.Load() == 1 })
}

func TestNoRetry(t *testing.T) {
	t.Parallel()
	t.Run("fresh connection", func(t *testing.T) {
		t.Parallel()
		s := newRawServer(t, func(c net.Conn, br *bufio.Reader) { _, _ = readRawHead(br) })
		tr := &Transport{Address: s.addr()}
		_, _, err := get(t, tr, "/")
		if err == nil || !strings.Contains(err.Error(), "EOF") {
			t.Errorf("error = %v, want one mentioning EOF", err)
		}
		if n := s.accepted.Load(); n != 1 {
			t.Errorf("server saw %d connections, want 1 (no retry of a fresh connection)", n)
		}
	})
	t.Run("response bytes arrived", func(t *testing.T) {
		t.Parallel()
		var n int
		var mu sync.Mutex
		s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			for {
				if _, err := readRawRequest(br); err != nil {
					return
				}
				mu.Lock()
				n++
				first := n == 1
				mu.Unlock()
				if !first {
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		tr := &Transport{Address: s.addr()}
		if _, _, err := get(t, tr, "/"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := get(t, tr, "/"); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("error = %s, want a malformed (truncated) response", describe(err))
		}
		if n := s.accepted.Load(); n != 1 {
			t.Errorf("server saw %d connections, want 1 (no retry after response bytes)", n)
		}
	})
	t.Run("body partly sent", func(t *testing.T) {
		t.Parallel()
		gotBody := make(chan struct{})
		var n int
		var mu sync.Mutex
		s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			for {
				r, err := readRawHead(br)
				if err != nil {
					return
				}
				mu.Lock()
				n++
				first := n == 1
				mu.Unlock()
				if !first {
					// Read a body byte, then drop the connection without a
					// response.
					_, _ = br.ReadByte()
					close(gotBody)
					return
				}
				_ = readRawBody(br, r)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		tr := &Transport{Address: s.addr()}
		if _, _, err := get(t, tr, "/"); err != nil {
			t.Fatal(err)
		}
		br := newBlockingReader("part")
		defer close(br.release)
		req := newReq(t, context.Background(), "POST", "http://"+s.addr()+"/", io.NopCloser(br))
		req.ContentLength = 100
		_, err := tr.RoundTrip(req)
		if err == nil || !(strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset")) {
			t.Errorf("error = %v, want EOF or connection reset", err)
		}
		<-gotBody
		if n := s.accepted.Load(); n != 1 {
			t.Errorf("server saw %d connections, want 1 (a partly sent body is not replayed)", n)
		}
	})
}

func TestBodyReadError(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "unreachable")
	}))
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	for _, length := range []int64{100, -1} {
		req := newReq(t, context.Background(), "POST", "http://"+s.addr()+"/", nil)
		req.Body = io.NopCloser(&failingReader{prefix: "abc", err: errSentinel})
		req.ContentLength = length
		start := time.Now()
		_, err := tr.RoundTrip(req)
		if !errors.Is(err, errSentinel) {
			t.Errorf("length %d: error = %s, want errors.Is the body's error", length, describe(err))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("length %d: took %v", length, d)
		}
	}
	// Invalid trailer values, known only at the body's end, fail the
	// request instead of leaving it unfinished on the wire.
	req := newReq(t, context.Background(), "POST", "http://"+s.addr()+"/", nil)
	req.Trailer = http.Header{"X-Sum": nil}
	req.Body = io.NopCloser(&trailerSetter{r: strings.NewReader("data"), trailer: req.Trailer, value: "bad\r\nvalue"})
	req.ContentLength = -1
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "invalid value for trailer") {
		t.Errorf("invalid trailer value: error = %v, want an invalid request error", err)
	}
	// A body shorter than its ContentLength fails too.
	req = newReq(t, context.Background(), "POST", "http://"+s.addr()+"/", newStreamBody("short"))
	req.ContentLength = 10
	if _, err := tr.RoundTrip(req); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: error = %s, want io.ErrUnexpectedEOF", describe(err))
	}
	eventually(t, "the connections to close", func() bool { return tr.OpenConns() == 0 })
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	t.Run("100 releases the body", func(t *testing.T) {
		t.Parallel()
		s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body) // net/http sends 100 Continue here
			_, _ = io.WriteString(w, "got="+string(b))
		}))
		tr := &Transport{Address: s.addr(), ExpectContinueTimeout: 10 * time.Second}
		t.Cleanup(tr.CloseIdleConnections)
		for range 2 {
			req := newReq(t, context.Background(), "PUT", "http://"+s.addr()+"/", strings.NewReader("payload"))
			req.Header.Set("Expect", "100-continue")
			start := time.Now()
			resp, body, err := do(tr, req)
			if err != nil || resp.StatusCode != 200 || body != "got=payload" {
				t.Fatalf("got %v %q %v, want 200 got=payload", resp, body, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v: the body waited for the timeout, not the 100", d)
			}
		}
		if n := s.opened.Load(); n != 1 {
			t.Errorf("server saw %d connections, want 1 (reused after 100-continue)", n)
		}
	})
	t.Run("final status without 100 skips the body", func(t *testing.T) {
		t.Parallel()
		leaked := make(chan int, 1)
		s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := readRawHead(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _ := io.Copy(io.Discard, br)
			leaked <- int(n)
		})
		tr := &Transport{Address: s.addr(), ExpectContinueTimeout: 10 * time.Second}
		body := newStreamBody("payload")
		req := newReq(t, context.Background(), "PUT", "http://"+s.addr()+"/", body)
		req.ContentLength = 7
		req.Header.Set("Expect", "100-continue")
		resp, _, err := do(tr, req)
		if err != nil || resp.StatusCode != http.StatusExpectationFailed {
			t.Fatalf("got %v, %v; want 417", resp, err)
		}
		if n := <-leaked; n != 0 {
			t.Errorf("upstream received %d body bytes after its 417, want 0", n)
		}
		eventually(t, "the body to be closed", func() bool { return body.closes.Load() == 1 })
		if n := tr.OpenConns(); n != 0 {
			t.Errorf("OpenConns = %d, want 0 (the request was left incomplete)", n)
		}
	})
	t.Run("timeout sends the body", func(t *testing.T) {
		t.Parallel()
		s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			r, err := readRawRequest(br) // no 100: just wait for the body
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(r.body))+"\r\n\r\n"+r.body)
		})
		tr := &Transport{Address: s.addr(), ExpectContinueTimeout: 50 * time.Millisecond}
		t.Cleanup(tr.CloseIdleConnections)
		req := newReq(t, context.Background(), "PUT", "http://"+s.addr()+"/", strings.NewReader("payload"))
		req.Header.Set("Expect", "100-continue")
		if _, body, err := do(tr, req); err != nil || body != "payload" {
			t.Errorf("got %q, %v; want the body echoed", body, err)
		}
	})
}

func TestUpgrade(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		// Bytes of the new protocol right behind the 101 head.
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello\n")
		_ = brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo " + line)
			_ = brw.Flush()
		}
	}))
	tr := &Transport{Address: s.addr()}
	req := newReq(t, context.Background(), "GET", "http://"+s.addr()+"/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		t.Fatalf("got %d with body %T, want 101 with an io.ReadWriteCloser", resp.StatusCode, resp.Body)
	}
	br := bufio.NewReader(rwc)
	if got, err := br.ReadString('\n'); err != nil || got != "hello\n" {
		t.Fatalf("bytes after the 101 head: %q, %v; want hello", got, err)
	}
	for _, msg := range []string{"one\n", "two\n"} {
		if _, err := io.WriteString(rwc, msg); err != nil {
			t.Fatal(err)
		}
		if got, err := br.ReadString('\n'); err != nil || got != "echo "+msg {
			t.Fatalf("upgraded echo: got %q, %v; want %q", got, err, "echo "+msg)
		}
	}
	if tr.OpenConns() != 1 || tr.IdleConns() != 0 {
		t.Errorf("during the upgrade OpenConns %d IdleConns %d, want 1 and 0", tr.OpenConns(), tr.IdleConns())
	}
	rwc.Close()
	if tr.OpenConns() != 0 {
		t.Errorf("after Close OpenConns = %d, want 0", tr.OpenConns())
	}

	// A 101 nobody asked for is a protocol violation.
	raw := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRawRequest(br); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
		}
	})
	tr2 := &Transport{Address: raw.addr()}
	if _, _, err := get(t, tr2, "/"); !errors.Is(err, ErrMalformedResponse) {
		t.Errorf("unrequested 101: error %v, want ErrMalformedResponse", err)
	}
}

func TestDrain(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	unblock := make(chan struct{})
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			entered <- struct{}{}
			<-unblock
		}
		_, _ = io.WriteString(w, "close="+strconv.FormatBool(r.Close))
	}))
	var once sync.Once
	release := func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(release) // runs before the server's Close
	tr := &Transport{Address: s.addr()}
	slow, err := tr.RoundTrip(newReq(t, context.Background(), "GET", "http://"+s.addr()+"/slow", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	<-entered
	// A second connection, idle once this returns.
	if _, _, err := get(t, tr, "/"); err != nil {
		t.Fatal(err)
	}
	if tr.IdleConns() != 1 || tr.OpenConns() != 2 {
		t.Fatalf("before Drain IdleConns %d OpenConns %d, want 1 and 2", tr.IdleConns(), tr.OpenConns())
	}
	tr.Drain()
	if tr.IdleConns() != 0 || tr.OpenConns() != 1 {
		t.Errorf("after Drain IdleConns %d OpenConns %d, want 0 and 1 (the busy one)", tr.IdleConns(), tr.OpenConns())
	}
	release()
	b, err := io.ReadAll(slow.Body)
	if err != nil || string(b) != "close=false" {
		t.Fatalf("in-flight request = %q, %v; want it to complete", b, err)
	}
	if tr.OpenConns() != 0 {
		t.Errorf("after the in-flight request OpenConns = %d, want 0", tr.OpenConns())
	}
	// A straggler still works, on its own connection, and asks the
	// upstream to close it.
	if _, body, err := get(t, tr, "/"); err != nil || body != "close=true" {
		t.Errorf("straggler = %q, %v; want close=true", body, err)
	}
	if tr.OpenConns() != 0 || tr.IdleConns() != 0 {
		t.Errorf("after the straggler OpenConns %d IdleConns %d, want 0", tr.OpenConns(), tr.IdleConns())
	}
	eventually(t, "the server to see every connection closed", func() bool { return s.closed.Load() == 3 })
}

func TestFullDuplex(t *testing.T) {
	t.Parallel()
	const size = 10 << 20
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			// Answer without reading; net/http closes the connection.
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		_ = http.NewResponseController(w).EnableFullDuplex()
		_, _ = io.WriteString(w, "ack\n")
		w.(http.Flusher).Flush()
		n, _ := io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "n="+strconv.FormatInt(n, 10))
	}))
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	tests := []struct {
		name     string
		path     string
		length   int64
		wantCode int
		wantBody string
	}{
		{"answer first, then read (length)", "/", size, 200, "ack\nn=10485760"},
		{"answer first, then read (chunked)", "/", -1, 200, "ack\nn=10485760"},
		{"answer without reading", "/reject", size, 413, "too large\n"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req := newReq(t, ctx, "POST", "http://"+s.addr()+tt.path, io.NopCloser(&patternReader{n: size}))
		req.ContentLength = tt.length
		resp, err := tr.RoundTrip(req)
		if err != nil {
			cancel()
			t.Fatalf("%s: %v", tt.name, err)
		}
		if resp.StatusCode != tt.wantCode {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.wantCode)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil || string(b) != tt.wantBody {
			t.Errorf("%s: body %q, %v; want %q", tt.name, b, err, tt.wantBody)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, echoHandler())
	tr := &Transport{Address: s.addr(), IdleTimeout: 50 * time.Millisecond}
	t.Cleanup(tr.CloseIdleConnections)
	if _, _, err := get(t, tr, "/"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, _, err := get(t, tr, "/"); err != nil {
		t.Fatal(err)
	}
	if n := s.opened.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2 (the idle one expired)", n)
	}
	if tr.OpenConns() != 1 {
		t.Errorf("OpenConns = %d, want 1 (the expired one closed)", tr.OpenConns())
	}
}

func TestMaxIdle(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 3)
	unblock := make(chan struct{})
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-unblock
		_, _ = io.WriteString(w, "ok")
	}))
	tr := &Transport{Address: s.addr(), MaxIdle: 1}
	t.Cleanup(tr.CloseIdleConnections)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, _, err := get(t, tr, "/"); err != nil {
				t.Error(err)
			}
		})
	}
	for range 3 {
		<-entered
	}
	close(unblock)
	wg.Wait()
	if tr.IdleConns() != 1 || tr.OpenConns() != 1 {
		t.Errorf("IdleConns %d OpenConns %d, want 1 and 1", tr.IdleConns(), tr.OpenConns())
	}
}

func TestEarlyClose(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		_, _ = io.Copy(w, io.LimitReader(&patternReader{n: int64(n)}, int64(n)))
	}))
	tests := []struct {
		name      string
		query     string
		wantReuse bool
	}{
		{"small buffered remainder", "n=100", true},
		{"small chunked remainder", "n=100&chunked=1", true},
		{"large remainder", "n=1048576", false},
		{"large chunked remainder", "n=1048576&chunked=1", false},
	}
	for _, tt := range tests {
		tr := &Transport{Address: s.addr()}
		resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", "http://"+s.addr()+"/?"+tt.query, nil))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		if !tt.wantReuse {
			// Let the rest of the head's read buffer fill, so the test
			// cannot pass by luck.
			time.Sleep(20 * time.Millisecond)
		}
		resp.Body.Close()
		if _, err := resp.Body.Read(buf); err == nil {
			t.Errorf("%s: Read after Close succeeded", tt.name)
		}
		if got := tr.IdleConns() == 1; got != tt.wantReuse {
			t.Errorf("%s: connection reused = %v, want %v", tt.name, got, tt.wantReuse)
		}
		tr.CloseIdleConnections()
		if tr.OpenConns() != 0 {
			t.Errorf("%s: OpenConns = %d, want 0", tt.name, tr.OpenConns())
		}
	}
}

// TestCloseDuringRead: Close from another goroutine unblocks a Read.
func TestCloseDuringRead(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, "x")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	tr := &Transport{Address: s.addr()}
	resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", "http://"+s.addr()+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, func() { resp.Body.Close() })
	if _, err := resp.Body.Read(make([]byte, 10)); !errors.Is(err, errBodyClosed) {
		t.Errorf("Read blocked while Close ran = %v, want %v", err, errBodyClosed)
	}
	resp.Body.Close()
	if tr.OpenConns() != 0 {
		t.Errorf("OpenConns = %d, want 0", tr.OpenConns())
	}
}

func TestLongHead(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("v", 10000)
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Long", long)
		w.Header().Set("X-After", "after")
		_, _ = io.WriteString(w, "body")
	}))
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	for range 2 {
		resp, body, err := get(t, tr, "/")
		if err != nil || body != "body" || resp.Header.Get("X-Long") != long || resp.Header.Get("X-After") != "after" {
			t.Fatalf("long head: body %q err %v, header lengths %d, want it parsed", body, err, len(resp.Header.Get("X-Long")))
		}
	}
	// Beyond maxHeadBytes it is refused.
	raw := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRawRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Fill: " + strings.Repeat("f", 1000) + "\r\n"
		for i := 0; i < maxHeadBytes/len(line)+1; i++ {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	tr2 := &Transport{Address: raw.addr()}
	if _, _, err := get(t, tr2, "/"); !errors.Is(err, ErrMalformedResponse) {
		t.Errorf("oversized head: error %v, want ErrMalformedResponse", err)
	}
}

// TestStreamingRequestBody: a trickling body reaches the upstream as it
// comes (each read is flushed), which long-lived uploads rely on.
func TestStreamingRequestBody(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	s := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		_, _ = io.ReadFull(r.Body, buf)
		got <- string(buf)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	br := newBlockingReader("first")
	req := newReq(t, context.Background(), "POST", "http://"+s.addr()+"/", io.NopCloser(br))
	req.ContentLength = -1
	done := make(chan error, 1)
	go func() {
		_, _, err := do(tr, req)
		done <- err
	}()
	select {
	case g := <-got:
		if g != "first" {
			t.Errorf("upstream got %q, want first", g)
		}
	case <-time.After(5 * time.Second):
		t.Error("the first body bytes did not reach the upstream while the body was open")
	}
	close(br.release)
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestDialErrorUnchanged(t *testing.T) {
	t.Parallel()
	type dialErr struct{ error }
	tr := &Transport{Address: "127.0.0.1:1", Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network != "tcp" || addr != "127.0.0.1:1" {
			t.Errorf("Dial(%q, %q), want tcp and the Address", network, addr)
		}
		return nil, &dialErr{errSentinel}
	}}
	_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", "http://elsewhere.example/", nil))
	var de *dialErr
	if !errors.As(err, &de) {
		t.Errorf("error = %s, want the Dial error unchanged", describe(err))
	}
}

func TestHeadResponse(t *testing.T) {
	t.Parallel()
	// A HEAD response announces the length of the GET body but has none:
	// the next response on the connection must parse.
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readRawRequest(br)
			if err != nil {
				return
			}
			if strings.HasPrefix(r.line, "HEAD") {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
				continue
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
		}
	})
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	resp, body, err := do(tr, newReq(t, context.Background(), "HEAD", "http://"+s.addr()+"/", nil))
	if err != nil || body != "" || resp.ContentLength != 1234 || resp.Body != http.NoBody {
		t.Fatalf("HEAD: %q ContentLength %d err %v, want no body and 1234", body, resp.ContentLength, err)
	}
	if _, body, err := get(t, tr, "/"); err != nil || body != "ok" {
		t.Fatalf("GET after HEAD: %q, %v", body, err)
	}
	if s.accepted.Load() != 1 {
		t.Errorf("server saw %d connections, want 1", s.accepted.Load())
	}
}

func TestBufferSizes(t *testing.T) {
	t.Parallel()
	s := newCountedServer(t, echoHandler())
	big := bytes.Repeat([]byte("y"), 100000)
	for _, size := range []int{1, 300, 64 << 10} {
		tr := &Transport{Address: s.addr(), ReadBufferSize: size, WriteBufferSize: size}
		req := newReq(t, context.Background(), "POST", "http://"+s.addr()+"/p", io.NopCloser(bytes.NewReader(big)))
		req.ContentLength = -1
		if _, body, err := do(tr, req); err != nil || !strings.HasSuffix(body, "body=n=100000") {
			t.Errorf("buffers of %d: %q, %v", size, body, err)
		}
		if _, body, err := get(t, tr, "/chunked"); err != nil || body != "part1part2" {
			t.Errorf("buffers of %d: %q, %v", size, body, err)
		}
		tr.CloseIdleConnections()
	}
}

// TestIdleProbe: a connection parked for a while is probed before reuse, so
// an unsolicited 408 that an upstream wrote on it while idle is not taken
// for the answer to the next request.
func TestIdleProbe(t *testing.T) {
	t.Parallel()
	testUnsolicited408(t, "",
		func(h func(net.Conn, *bufio.Reader)) *rawServer { return newRawServer(t, h) },
		func(addr string) *Transport { return &Transport{Address: addr, probeIdle: 20 * time.Millisecond} })
}

// testUnsolicited408 runs one request over a transport from newTransport
// against a server from start, makes the server write an unsolicited 408
// on the idle connection, and checks the next request gets its answer
// from a new connection. kind names the connection in failures.
func testUnsolicited408(t *testing.T, kind string, start func(func(net.Conn, *bufio.Reader)) *rawServer, newTransport func(addr string) *Transport) {
	t.Helper()
	nudge := make(chan struct{})
	s := start(func(c net.Conn, br *bufio.Reader) {
		if _, err := readRawRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		select {
		case <-nudge:
			_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		case <-time.After(10 * time.Second):
		}
	})
	tr := newTransport(s.addr())
	t.Cleanup(tr.CloseIdleConnections)
	if _, _, err := get(t, tr, "/"); err != nil {
		t.Fatal(err)
	}
	close(nudge)
	time.Sleep(50 * time.Millisecond)
	resp, body, err := get(t, tr, "/")
	if err != nil || resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after an unsolicited 408 on the idle %sconnection: %v %q %v, want 200 ok from a new connection", kind, resp, body, err)
	}
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
}

func TestPeerGone(t *testing.T) {
	t.Parallel()
	actions := make(chan string, 1)
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		switch <-actions {
		case "write":
			_, _ = io.WriteString(c, "x")
			_, _ = io.Copy(io.Discard, br)
		case "close":
		case "wait":
			_, _ = io.Copy(io.Discard, br)
		}
	})
	tests := []struct {
		action string
		want   bool
	}{{"wait", false}, {"write", true}, {"close", true}}
	for _, tt := range tests {
		nc, err := net.Dial("tcp", s.addr())
		if err != nil {
			t.Fatal(err)
		}
		actions <- tt.action
		var p prober
		p.init(nc)
		if tt.want {
			eventually(t, "peerGone after "+tt.action, p.peerGone)
		} else {
			time.Sleep(20 * time.Millisecond)
			if p.peerGone() {
				t.Errorf("peerGone on an open, silent connection = true, want false")
			}
		}
		nc.Close()
	}
}
