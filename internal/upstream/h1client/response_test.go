package h1client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keelproxy/keel/internal/httpwire"
)

// parsed is what reading one response off a byte stream gave.
type parsed struct {
	resp    *http.Response
	body    string
	bodyErr error
	// rest is what was left on the stream after the response.
	rest string
}

// readOne reads one response for method from raw with a read buffer of
// size, and its body, without a connection.
func readOne(raw, method string, size int) (*parsed, error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), size)
	head, _, err := readHead(br)
	if err != nil {
		return nil, err
	}
	r, err := parseResponse(head, &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	p := &parsed{resp: &r.Response}
	if r.Response.Body != http.NoBody {
		r.body.bind(nil, br)
	}
	b, err := io.ReadAll(r.Response.Body)
	p.body, p.bodyErr = string(b), err
	rest, _ := io.ReadAll(br)
	p.rest = string(rest)
	return p, nil
}

func TestParseResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		raw        string
		method     string
		wantStatus string
		wantCode   int
		wantHeader http.Header
		wantBody   string
		wantCL     int64
		wantClose  bool
		wantTE     []string
		wantTrail  http.Header
		wantRest   string
	}{
		{
			name:       "canonical names kept, lower-case names canonicalised",
			raw:        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nX-CUSTOM-thing: a\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 2\r\n\r\nokNEXT",
			wantStatus: "200 OK", wantCode: 200,
			wantHeader: http.Header{"Content-Type": {"text/plain"}, "X-Custom-Thing": {"a"}, "Set-Cookie": {"a=1", "b=2"}, "Content-Length": {"2"}},
			wantBody:   "ok", wantCL: 2, wantRest: "NEXT",
		},
		{
			name:       "values trimmed, empty value kept, obs-text allowed",
			raw:        "HTTP/1.1 200 OK\r\nX-A: \t spaced \t\r\nX-Empty:\r\nX-Utf8: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
			wantStatus: "200 OK", wantCode: 200,
			wantHeader: http.Header{"X-A": {"spaced"}, "X-Empty": {""}, "X-Utf8": {"caf\xc3\xa9"}, "Content-Length": {"0"}},
		},
		{
			name:       "bare LF line ends",
			raw:        "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
			wantStatus: "200 OK", wantCode: 200, wantHeader: http.Header{"Content-Length": {"2"}}, wantBody: "ok", wantCL: 2,
		},
		{
			name:       "no reason phrase",
			raw:        "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
			wantStatus: "404", wantCode: 404, wantHeader: http.Header{"Content-Length": {"0"}},
		},
		{
			name:       "empty reason phrase",
			raw:        "HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n",
			wantStatus: "500 ", wantCode: 500, wantHeader: http.Header{"Content-Length": {"0"}},
		},
		{
			name:       "identical Content-Length repeated is one",
			raw:        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: "200 OK", wantCode: 200, wantHeader: http.Header{"Content-Length": {"2"}}, wantBody: "ok", wantCL: 2,
		},
		{
			name:       "chunked with extensions and trailers",
			raw:        "HTTP/1.1 200 OK\r\nTrailer: X-Sum, grpc-status\r\nTransfer-Encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\nA \r\n0123456789\r\n0\r\nX-Sum: 9\r\nGrpc-Status: 0\r\nX-Extra: e\r\n\r\nNEXT",
			wantStatus: "200 OK", wantCode: 200, wantHeader: http.Header{},
			wantBody: "abc0123456789", wantCL: -1, wantTE: []string{"chunked"},
			wantTrail: http.Header{"X-Sum": {"9"}, "Grpc-Status": {"0"}, "X-Extra": {"e"}}, wantRest: "NEXT",
		},
		{
			name:       "Trailer without chunked stays a field",
			raw:        "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 0\r\n\r\n",
			wantStatus: "200 OK", wantCode: 200, wantHeader: http.Header{"Trailer": {"X-Sum"}, "Content-Length": {"0"}},
		},
		{
			name:       "HTTP/1.0 reads to close",
			raw:        "HTTP/1.0 200 OK\r\n\r\nall of it",
			wantStatus: "200 OK", wantCode: 200, wantHeader: http.Header{}, wantBody: "all of it", wantCL: -1, wantClose: true,
		},
		{
			name:       "HTTP/1.0 keep-alive",
			raw:        "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: "200 OK", wantCode: 200, wantHeader: http.Header{"Connection": {"Keep-Alive"}, "Content-Length": {"2"}},
			wantBody: "ok", wantCL: 2,
		},
		{
			name:       "Connection close among options",
			raw:        "HTTP/1.1 200 OK\r\nConnection: foo, CLOSE\r\nContent-Length: 0\r\n\r\n",
			wantStatus: "200 OK", wantCode: 200, wantHeader: http.Header{"Connection": {"foo, CLOSE"}, "Content-Length": {"0"}}, wantClose: true,
		},
		{
			name: "HEAD has no body whatever the fields say", method: "HEAD",
			raw:        "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nNEXT",
			wantStatus: "200 OK", wantCode: 200, wantHeader: http.Header{"Content-Length": {"50"}}, wantCL: 50, wantRest: "NEXT",
		},
		{
			name: "HEAD chunked", method: "HEAD",
			raw:        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nNEXT",
			wantStatus: "200 OK", wantCode: 200, wantHeader: http.Header{}, wantCL: -1, wantTE: []string{"chunked"}, wantRest: "NEXT",
		},
		{
			name:       "304 has no body",
			raw:        "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\nNEXT",
			wantStatus: "304 Not Modified", wantCode: 304, wantHeader: http.Header{"Content-Length": {"50"}}, wantRest: "NEXT",
		},
		{
			name:       "204 has no body",
			raw:        "HTTP/1.1 204 No Content\r\n\r\nNEXT",
			wantStatus: "204 No Content", wantCode: 204, wantHeader: http.Header{}, wantRest: "NEXT",
		},
		{
			name:       "interim response",
			raw:        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK",
			wantStatus: "103 Early Hints", wantCode: 103, wantHeader: http.Header{"Link": {"</a>"}}, wantRest: "HTTP/1.1 200 OK",
		},
	}
	for _, tt := range tests {
		for _, size := range []int{16, 4096} {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			p, err := readOne(tt.raw, method, size)
			if err != nil {
				t.Errorf("%s (buffer %d): %v", tt.name, size, err)
				continue
			}
			r := p.resp
			if r.Status != tt.wantStatus || r.StatusCode != tt.wantCode {
				t.Errorf("%s: status %q %d, want %q %d", tt.name, r.Status, r.StatusCode, tt.wantStatus, tt.wantCode)
			}
			if !equalHeader(r.Header, tt.wantHeader) {
				t.Errorf("%s: Header %v, want %v", tt.name, r.Header, tt.wantHeader)
			}
			if p.body != tt.wantBody || p.bodyErr != nil || p.rest != tt.wantRest {
				t.Errorf("%s: body %q (%v) rest %q, want %q rest %q", tt.name, p.body, p.bodyErr, p.rest, tt.wantBody, tt.wantRest)
			}
			if r.ContentLength != tt.wantCL || r.Close != tt.wantClose || !slices.Equal(r.TransferEncoding, tt.wantTE) {
				t.Errorf("%s: ContentLength %d Close %v TE %v, want %d %v %v", tt.name, r.ContentLength, r.Close, r.TransferEncoding, tt.wantCL, tt.wantClose, tt.wantTE)
			}
			if !equalHeader(r.Trailer, tt.wantTrail) {
				t.Errorf("%s: Trailer %v, want %v", tt.name, r.Trailer, tt.wantTrail)
			}
		}
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// TestParseErrors covers rejections not already exercised through a server
// in TestMalformedResponses.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		raw    string
		inBody bool
	}{
		{"empty line first", "\r\nHTTP/1.1 200 OK\r\n\r\n", false},
		{"leading space in status line", " HTTP/1.1 200 OK\r\n\r\n", false},
		{"status code 099", "HTTP/1.1 099 X\r\n\r\n", false},
		{"four digit status", "HTTP/1.1 2000 X\r\n\r\n", false},
		{"lower-case version", "http/1.1 200 OK\r\n\r\n", false},
		{"control character in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", false},
		{"empty field name", "HTTP/1.1 200 OK\r\n: v\r\n\r\n", false},
		{"Content-Length with plus", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", false},
		{"Content-Length overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false},
		{"empty Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", false},
		{"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false},
		{"chunked with an empty list element", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n", false},
		{"two Transfer-Encoding fields", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"Trailer declaring Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: transfer-encoding\r\n\r\n0\r\n\r\n", false},
		{"chunk size with sign", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", true},
		{"empty chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", true},
		{"chunk extension with control", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x00\r\nhello\r\n0\r\n\r\n", true},
		{"junk after chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n", true},
		{"obs-fold in trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", true},
	}
	for _, tt := range tests {
		p, err := readOne(tt.raw, "GET", 4096)
		if !tt.inBody {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Errorf("%s: error %v, want ErrMalformedResponse", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: head error %v, want the error in the body", tt.name, err)
			continue
		}
		if !errors.Is(p.bodyErr, ErrMalformedResponse) {
			t.Errorf("%s: body error %v, want ErrMalformedResponse", tt.name, p.bodyErr)
		}
	}
}

// TestChunkedEarlyEOF: when the end of a chunked body is buffered with its
// last data, Read reports io.EOF with the data, which is what returns a
// connection to the pool without another Read.
func TestChunkedEarlyEOF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"no trailers", "5\r\nhello\r\n0\r\n\r\n"},
		{"trailers", "5\r\nhello\r\n0\r\nX-A: b\r\n\r\n"},
		{"two chunks", "2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"},
	}
	for _, tt := range tests {
		br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + tt.body))
		head, _, err := readHead(br)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseResponse(head, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.body.bind(nil, br)
		buf := make([]byte, 64)
		var got []byte
		var rerr error
		reads := 0
		for rerr == nil {
			var n int
			n, rerr = r.body.Read(buf)
			got = append(got, buf[:n]...)
			reads++
			if n == 0 && rerr == nil {
				t.Fatalf("%s: empty read", tt.name)
			}
		}
		want := 1
		if tt.name == "two chunks" {
			want = 2
		}
		if string(got) != "hello" || rerr != io.EOF || reads != want {
			t.Errorf("%s: %q, %v after %d reads; want hello, EOF after %d", tt.name, got, rerr, reads, want)
		}
	}
}

func TestCanonicalKey(t *testing.T) {
	// Not parallel: AllocsPerRun needs the process to itself.
	for _, name := range []string{
		"content-type", "CONTENT-TYPE", "Content-Type", "x-request-id", "www-authenticate", "etag", "ETag",
		"x-custom-header", "X_Under_Score", "a", "foo-", "-foo", "x--y", "grpc-status", "Strict-Transport-Security",
	} {
		if got, want := httpwire.CanonicalKey(name), http.CanonicalHeaderKey(name); got != want {
			t.Errorf("httpwire.CanonicalKey(%q) = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"Content-Type", "content-type", "x-request-id"} {
		if n := testing.AllocsPerRun(100, func() { _ = httpwire.CanonicalKey(name) }); n != 0 {
			t.Errorf("httpwire.CanonicalKey(%q) allocates %.0f times, want 0", name, n)
		}
	}
}

func TestCopyChunked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		reads   []string
		trailer http.Header
		want    string
	}{
		{"empty", nil, nil, "0\r\n\r\n"},
		{"one read", []string{"hello"}, nil, "5\r\nhello\r\n0\r\n\r\n"},
		{"reads become chunks", []string{"a", strings.Repeat("b", 300)}, nil, "1\r\na\r\n12c\r\n" + strings.Repeat("b", 300) + "\r\n0\r\n\r\n"},
		{"trailers", []string{"x"}, http.Header{"X-Sum": {"1", "2"}}, "1\r\nx\r\n0\r\nX-Sum: 1\r\nX-Sum: 2\r\n\r\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		var done atomic.Bool
		if err := copyChunked(&out, &readsReader{reads: tt.reads}, tt.trailer, make([]byte, 1024), &done); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if out.String() != tt.want || !done.Load() {
			t.Errorf("%s: wrote %q (body read: %v), want %q", tt.name, out.String(), done.Load(), tt.want)
		}
	}
}

// readsReader returns each of reads from one Read call.
type readsReader struct{ reads []string }

func (r *readsReader) Read(p []byte) (int, error) {
	if len(r.reads) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.reads[0])
	r.reads[0] = r.reads[0][n:]
	if r.reads[0] == "" {
		r.reads = r.reads[1:]
	}
	return n, nil
}

// FuzzReadResponse feeds arbitrary bytes to the response parser as a
// keep-alive stream of responses. It must never panic, and what it accepts
// must be self-consistent and accepted alike by net/http (which is no
// stricter than this parser).
func FuzzReadResponse(f *testing.F) {
	seeds := []string{
		// Plain, keep-alive pair.
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n",
		// Chunked with extension and trailers.
		"HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n",
		// Interim then final.
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		// Read to close, HTTP/1.0.
		"HTTP/1.0 200 OK\r\n\r\nuntil the end",
		// Ambiguous framing.
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		// obs-fold, bare LF, bad chunk.
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false, false)
	}
	f.Add([]byte(seeds[1]), true, true)
	f.Fuzz(func(t *testing.T, data []byte, head, small bool) {
		size := 4096
		if small {
			size = 16
		}
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		req := &http.Request{Method: method}
		br := bufio.NewReaderSize(bytes.NewReader(data), size)
		for i := 0; i < 4; i++ {
			h, _, err := readHead(br)
			if err != nil {
				return
			}
			r, err := parseResponse(h, req)
			if err != nil {
				return
			}
			resp := &r.Response
			if i == 0 && size == 4096 {
				differential(t, data, req, resp)
			}
			checkResponse(t, resp)
			if resp.Body == http.NoBody {
				continue
			}
			r.body.bind(nil, br)
			n, err := io.Copy(io.Discard, &r.body)
			if err == nil && r.body.mode == bodyLength && n != resp.ContentLength {
				t.Fatalf("read %d body bytes without error, ContentLength %d", n, resp.ContentLength)
			}
			if err != nil || r.body.mode == bodyUntilClose {
				return
			}
		}
	})
}

// checkResponse verifies invariants of any response the parser accepted.
func checkResponse(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.StatusCode < 100 || resp.StatusCode > 999 || resp.ProtoMajor != 1 {
		t.Fatalf("accepted status %d proto %d", resp.StatusCode, resp.ProtoMajor)
	}
	if _, ok := resp.Header["Transfer-Encoding"]; ok {
		t.Fatal("Transfer-Encoding left in Header")
	}
	if resp.TransferEncoding != nil && (len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked") {
		t.Fatalf("TransferEncoding %v", resp.TransferEncoding)
	}
	if resp.TransferEncoding != nil && resp.Header.Get("Content-Length") != "" {
		t.Fatal("accepted both Transfer-Encoding and Content-Length")
	}
	if resp.ContentLength < -1 || len(resp.Header["Content-Length"]) > 1 {
		t.Fatalf("ContentLength %d, fields %q", resp.ContentLength, resp.Header["Content-Length"])
	}
	for k, vv := range resp.Header {
		if k != http.CanonicalHeaderKey(k) || !httpwire.ValidToken(k) {
			t.Fatalf("non-canonical or invalid key %q", k)
		}
		for _, v := range vv {
			if !httpwire.ValidFieldValue(v) || strings.ContainsAny(v, "\r\n") {
				t.Fatalf("invalid value %q for %s", v, k)
			}
		}
	}
}

// differential checks that net/http reads an accepted response head the
// same way. Bodies are not compared: net/http's lenient paths (it accepts
// some framing this parser refuses) make "we accept, it accepts" the only
// direction that must hold.
func differential(t *testing.T, data []byte, req *http.Request, resp *http.Response) {
	t.Helper()
	want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
	if err != nil {
		t.Fatalf("accepted a head net/http rejects (%v):\n%q", err, data)
	}
	defer want.Body.Close()
	if want.StatusCode != resp.StatusCode || want.ProtoMinor != resp.ProtoMinor || want.ContentLength != resp.ContentLength ||
		want.Close != resp.Close || !slices.Equal(want.TransferEncoding, resp.TransferEncoding) {
		t.Fatalf("differs from net/http:\ngot  %d 1.%d cl=%d close=%v te=%v\nwant %d 1.%d cl=%d close=%v te=%v\n%q",
			resp.StatusCode, resp.ProtoMinor, resp.ContentLength, resp.Close, resp.TransferEncoding,
			want.StatusCode, want.ProtoMinor, want.ContentLength, want.Close, want.TransferEncoding, data)
	}
	if !equalHeader(want.Header, resp.Header) {
		t.Fatalf("header differs from net/http:\ngot  %q\nwant %q", resp.Header, want.Header)
	}
}
