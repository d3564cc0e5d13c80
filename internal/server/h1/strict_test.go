package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// echoHandler describes the request as the handler sees it, so the same
// raw request can be compared across servers.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // h1 answers 400 itself for malformed body framing
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "method=%s uri=%s path=%s rawpath=%s rawquery=%s urlhost=%s scheme=%s host=%s proto=%s/%d.%d\n",
		r.Method, r.RequestURI, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.URL.Host, r.URL.Scheme, r.Host,
		r.Proto, r.ProtoMajor, r.ProtoMinor)
	fmt.Fprintf(&sb, "cl=%d te=%q close=%v remote=%v\n", r.ContentLength, r.TransferEncoding, r.Close, r.RemoteAddr != "")
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&sb, "h %s=%q\n", k, r.Header[k])
	}
	fmt.Fprintf(&sb, "body=%q\n", body)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Trailer {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&sb, "t %s=%q\n", k, r.Trailer[k])
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, sb.String())
}

// TestStrictRejections: every malformed or ambiguous request gets its
// exact status, Connection: close, and a closed connection.
func TestStrictRejections(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(echoHandler), MaxURLBytes: 64,
		MaxHeaderBytes: 1024, MaxHeaderCount: 5})
	const h = "Host: example.com\r\n"
	tests := []struct {
		name string
		req  string
		want int
	}{
		{"CL and TE", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE and CL", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n", 400},
		{"TE gzip", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\n\r\n", 501},
		{"TE gzip then chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"TE identity", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: identity\r\n\r\n", 501},
		{"TE chunked not last", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"TE chunked twice", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE chunked twice in list", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, chunked\r\n\r\n", 400},
		{"TE empty", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: \r\n\r\n", 400},
		{"TE empty element", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: ,chunked\r\n\r\n", 400},
		{"TE with parameter", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked;q=1\r\n\r\n", 400},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"CL differing", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
		{"CL differing in list", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5, 6\r\n\r\nhello!", 400},
		{"CL plus sign", "POST / HTTP/1.1\r\n" + h + "Content-Length: +5\r\n\r\nhello", 400},
		{"CL negative", "POST / HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n", 400},
		{"CL hex", "POST / HTTP/1.1\r\n" + h + "Content-Length: 0x5\r\n\r\nhello", 400},
		{"CL trailing junk", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5a\r\n\r\nhello", 400},
		{"CL inner space", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1 2\r\n\r\nhello", 400},
		{"CL empty", "POST / HTTP/1.1\r\n" + h + "Content-Length:\r\n\r\n", 400},
		{"CL overflow", "POST / HTTP/1.1\r\n" + h + "Content-Length: 9223372036854775808\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\n" + h + "X-A: b\r\n c\r\n\r\n", 400},
		{"obs-fold tab", "GET / HTTP/1.1\r\n" + h + "X-A: b\r\n\tc\r\n\r\n", 400},
		{"space before first field", "GET / HTTP/1.1\r\n " + h + "\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : example.com\r\n\r\n", 400},
		{"tab before colon", "GET / HTTP/1.1\r\n" + h + "X-A\t: b\r\n\r\n", 400},
		{"invalid name", "GET / HTTP/1.1\r\n" + h + "X(A): b\r\n\r\n", 400},
		{"space in name", "GET / HTTP/1.1\r\n" + h + "X A: b\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\n" + h + ": b\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\n" + h + "X-A b\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\n" + h + "X-A: b\x00c\r\n\r\n", 400},
		{"bare CR in value", "GET / HTTP/1.1\r\n" + h + "X-A: b\rc\r\n\r\n", 400},
		{"bare CR ends field", "GET / HTTP/1.1\r\n" + h + "X-A: b\rX-B: c\r\n\r\n", 400},
		{"DEL in value", "GET / HTTP/1.1\r\n" + h + "X-A: b\x7fc\r\n\r\n", 400},
		{"bare CR in request line", "GET / HTTP/1.1\r" + h + "\r\n", 400},
		{"invalid method", "G(T / HTTP/1.1\r\n" + h + "\r\n", 400},
		{"double space", "GET  / HTTP/1.1\r\n" + h + "\r\n", 400},
		{"trailing space", "GET / HTTP/1.1 \r\n" + h + "\r\n", 400},
		{"leading space", " GET / HTTP/1.1\r\n" + h + "\r\n", 400},
		{"HTTP/0.9", "GET /\r\n\r\n", 400},
		{"space in target", "GET /a b HTTP/1.1\r\n" + h + "\r\n", 400},
		{"control in target", "GET /a\x01b HTTP/1.1\r\n" + h + "\r\n", 400},
		{"fragment in target", "GET /a#b HTTP/1.1\r\n" + h + "\r\n", 400},
		{"relative target", "GET a/b HTTP/1.1\r\n" + h + "\r\n", 400},
		{"asterisk for GET", "GET * HTTP/1.1\r\n" + h + "\r\n", 400},
		{"absolute ftp", "GET ftp://example.com/ HTTP/1.1\r\n" + h + "\r\n", 400},
		{"absolute userinfo", "GET http://u:p@example.com/ HTTP/1.1\r\n" + h + "\r\n", 400},
		{"absolute no host", "GET http:///a HTTP/1.1\r\n" + h + "\r\n", 400},
		{"authority for GET", "GET example.com:80 HTTP/1.1\r\n" + h + "\r\n", 400},
		{"CONNECT without port", "CONNECT example.com HTTP/1.1\r\n" + h + "\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\n" + h + "\r\n", 505},
		{"HTTP/1.2", "GET / HTTP/1.2\r\n" + h + "\r\n", 505},
		{"HTTP/3.0", "GET / HTTP/3.0\r\n" + h + "\r\n", 505},
		{"HTTP/0.9 version", "GET / HTTP/0.9\r\n" + h + "\r\n", 505},
		{"lower-case version", "GET / http/1.1\r\n" + h + "\r\n", 400},
		{"short version", "GET / HTTP/1\r\n" + h + "\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Host", "GET / HTTP/1.1\r\n" + h + h + "\r\n", 400},
		{"invalid Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"unknown expectation", "POST / HTTP/1.1\r\n" + h + "Expect: something\r\nContent-Length: 1\r\n\r\nx", 417},
		{"forbidden declared trailer", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n", 400},
		{"URI too long", "GET /" + strings.Repeat("a", 64) + " HTTP/1.1\r\n" + h + "\r\n", 414},
		{"request line way too long", "GET /" + strings.Repeat("a", 4000) + " HTTP/1.1\r\n" + h + "\r\n", 414},
		{"head too large", "GET / HTTP/1.1\r\n" + h + "X-A: " + strings.Repeat("a", 1100) + "\r\n\r\n", 431},
		{"too many fields", "GET / HTTP/1.1\r\n" + h + strings.Repeat("X-A: a\r\n", 5) + "\r\n", 431},
		// Chunked framing errors, found while the handler reads the body.
		{"chunk size not hex", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
		{"chunk size negative", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n-1\r\n", 400},
		{"chunk size 0x", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size leading space", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size junk after BWS", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size overflow", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size empty", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk line bare LF", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400},
		{"chunk data without CRLF", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX0\r\n\r\n", 400},
		{"chunk data bare LF", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400},
		{"chunk extension control", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n", 400},
		{"trailer obs-fold", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n", 400},
		{"trailer too large", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: " + strings.Repeat("a", 1100) + "\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, ts.addr)
			c.send(tt.req)
			res, body := c.response(methodOf(tt.req))
			if res.StatusCode != tt.want {
				t.Errorf("status = %d, want %d (body %q)", res.StatusCode, tt.want, body)
			}
			if !res.Close {
				t.Errorf("response without Connection: close")
			}
			if !strings.Contains(body, `"error":"`) || res.Header.Get("X-Proxy-Error") == "" {
				t.Errorf("body %q, X-Proxy-Error %q: want the SPEC error format", body, res.Header.Get("X-Proxy-Error"))
			}
			if !c.closed() {
				t.Errorf("connection still open after %d", res.StatusCode)
			}
		})
	}
}

func methodOf(req string) string {
	m, _, _ := strings.Cut(strings.TrimLeft(req, " "), " ")
	return m
}

// compatCases are valid requests on which h1 must give the handler the
// same view as net/http's server.
var compatCases = []struct {
	name string
	req  string
}{
	{"simple GET", "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"},
	{"escaped path", "GET /a%2Fb/c%20d?q=%41 HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{"raw UTF-8 path", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{"double slash path", "GET //a/b HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{"absolute-form", "GET http://other.example:8080/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{"lower-case names", "GET / HTTP/1.1\r\nhost: example.com\r\naccept-encoding: gzip\r\nx-custom-thing: v\r\n\r\n"},
	{"repeated fields", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\n\r\n"},
	{"OWS trimmed", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: \t v  w \t\r\n\r\n"},
	{"empty value", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A:\r\n\r\n"},
	{"obs-text value", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: caf\xe9\r\n\r\n"},
	{"bare LF", "GET / HTTP/1.1\nHost: example.com\nX-A: b\n\n"},
	{"Connection close", "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"},
	{"Connection list", "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade, Close\r\nUpgrade: websocket\r\n\r\n"},
	{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"},
	{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\nHost: example.com\r\n\r\n"},
	{"Pragma", "GET / HTTP/1.1\r\nHost: example.com\r\nPragma: no-cache\r\n\r\n"},
	{"content-length body", "POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello"},
	{"content-length zero", "POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n"},
	{"identical CL repeated", "POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
	{"chunked", "POST /p HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
	{"chunked upper-case coding", "POST /p HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{"chunked hex sizes and extension", "POST /p HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\nA;name=value\r\n0123456789\r\n0\r\n\r\n"},
	{"chunked with trailers", "POST /p HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Other\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\nx-other: a\r\n\r\n"},
	{"chunked undeclared trailer", "POST /p HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Late: 1\r\n\r\n"},
	{"CONNECT authority", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"},
	{"lower-case method", "get / HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{"extension method", "PURGE /x HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{"IPv6 host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"},
	{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
}

// TestCompatWithNetHTTP runs the same raw requests against h1 and
// net/http's server and requires identical status and handler views.
func TestCompatWithNetHTTP(t *testing.T) {
	t.Parallel()
	ours := startServer(t, &Server{Handler: http.HandlerFunc(echoHandler)})
	theirs := startNetHTTP(t, http.HandlerFunc(echoHandler))
	for _, tt := range compatCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method := methodOf(strings.TrimLeft(tt.req, "\r\n"))
			a := dial(t, ours.addr)
			a.send(tt.req)
			gotRes, got := a.response(method)
			b := dial(t, theirs)
			b.send(tt.req)
			wantRes, want := b.response(method)
			if gotRes.StatusCode != wantRes.StatusCode || got != want {
				t.Errorf("h1: %d\n%s\nnet/http: %d\n%s", gotRes.StatusCode, got, wantRes.StatusCode, want)
			}
			if gotRes.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", gotRes.StatusCode)
			}
			if gotRes.Close != wantRes.Close {
				t.Errorf("response Close = %v, net/http's %v", gotRes.Close, wantRes.Close)
			}
		})
	}
}

// TestAcceptedBeyondNetHTTP covers valid requests where h1 deliberately
// differs from net/http: RFC 9112 2.2 lets a server ignore empty lines
// before the request line (net/http answers 400), and OPTIONS * reaches
// the handler (net/http answers it itself) so a proxy can forward it.
func TestAcceptedBeyondNetHTTP(t *testing.T) {
	t.Parallel()
	ts := serve(t, echoHandler)
	tests := []struct {
		name, req, want string
	}{
		{"leading CRLF", "\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n", "method=GET uri=/x path=/x"},
		{"leading LF", "\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n", "method=GET uri=/x path=/x"},
		{"OPTIONS asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "method=OPTIONS uri=* path=*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, ts.addr)
			c.send(tt.req)
			res, body := c.response(methodOf(strings.TrimLeft(tt.req, "\r\n")))
			if res.StatusCode != http.StatusOK || !strings.HasPrefix(body, tt.want) {
				t.Errorf("got %d %q, want 200 %q...", res.StatusCode, body, tt.want)
			}
		})
	}
}

// TestNetHTTPAcceptsAmbiguousFraming documents why this package exists:
// net/http's server accepts a request with both Content-Length and
// Transfer-Encoding, which h1 rejects (see TestStrictRejections).
func TestNetHTTPAcceptsAmbiguousFraming(t *testing.T) {
	t.Parallel()
	addr := startNetHTTP(t, http.HandlerFunc(echoHandler))
	c := dial(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	res, _ := c.response("POST")
	if res.StatusCode != http.StatusOK {
		t.Skipf("net/http now answers %d: the h1 rationale may be obsolete", res.StatusCode)
	}
}

// startNetHTTP serves h with net/http's server for comparison tests.
func startNetHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	ln := listen(t)
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("net/http Serve = %v", err)
		}
	})
	return ln.Addr().String()
}

var _ net.Listener = (net.Listener)(nil)
