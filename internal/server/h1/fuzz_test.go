package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"testing"

	"github.com/keelproxy/keel/internal/httpwire"
)

// FuzzReadRequest feeds arbitrary bytes to the request parser and body
// reader. It must never panic, and whatever it accepts must have
// consistent framing. Where net/http also accepts the same bytes, both
// must agree on the framing and the body, and stop at the same byte: a
// disagreement there is what request smuggling exploits.
func FuzzReadRequest(f *testing.F) {
	for _, tt := range compatCases {
		f.Add([]byte(tt.req))
	}
	seeds := []string{
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabcGET",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
		"GET http://x/y HTTP/1.0\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := head{urlBuf: new(url.URL), vals: make([]string, 4)}
		p := newTestParser()
		p.maxHeaderBytes, p.maxHeaderCount, p.maxURLBytes = 4096, 50, 1024
		in := bytes.NewReader(data)
		br := bufio.NewReaderSize(in, 4096)
		if err := p.readHead(br, &h); err != nil {
			return
		}
		checkFraming(t, &h)
		if h.url == h.urlBuf {
			// The allocation-free origin-form path must agree with net/url.
			want, err := url.ParseRequestURI(h.target)
			if err != nil || !reflect.DeepEqual(h.url, want) {
				t.Fatalf("originForm(%q) = %#v, net/url %#v, %v", h.target, h.url, want, err)
			}
		}

		b, _ := newTestBody(nil, 16, &h)
		b.c.bufr = br
		var body []byte
		var bodyErr error
		if h.contentLength != 0 {
			body, bodyErr = io.ReadAll(b)
		}
		ourRest := br.Buffered() + in.Len()

		theirIn := bytes.NewReader(data)
		theirBr := bufio.NewReaderSize(theirIn, 4096)
		req, err := http.ReadRequest(theirBr)
		if err != nil {
			return // net/http rejects: nothing to compare
		}
		theirChunked := len(req.TransferEncoding) > 0
		if theirChunked != h.chunked || (!h.chunked && req.ContentLength != h.contentLength) {
			t.Fatalf("framing differs: h1 cl=%d chunked=%v, net/http cl=%d te=%v",
				h.contentLength, h.chunked, req.ContentLength, req.TransferEncoding)
		}
		if req.Method != h.method || req.RequestURI != h.target || req.Host != h.host {
			t.Fatalf("request differs: h1 %q %q %q, net/http %q %q %q",
				h.method, h.target, h.host, req.Method, req.RequestURI, req.Host)
		}
		theirBody, theirErr := io.ReadAll(req.Body)
		if bodyErr != nil || theirErr != nil {
			return // either side refused the body: no message boundary to agree on
		}
		if !bytes.Equal(body, theirBody) {
			t.Fatalf("body differs: h1 %q, net/http %q", body, theirBody)
		}
		if theirRest := theirBr.Buffered() + theirIn.Len(); theirRest != ourRest {
			t.Fatalf("next message starts at a different byte: h1 leaves %d, net/http %d", ourRest, theirRest)
		}
	})
}

// checkFraming asserts the invariants of an accepted head.
func checkFraming(t *testing.T, h *head) {
	t.Helper()
	if h.minor != 0 && h.minor != 1 {
		t.Fatalf("accepted HTTP/1.%d", h.minor)
	}
	if !httpwire.ValidToken(h.method) || h.url == nil || h.target == "" {
		t.Fatalf("accepted method %q target %q", h.method, h.target)
	}
	if _, ok := h.header["Host"]; ok {
		t.Fatalf("Host left in the header map")
	}
	if !validHost(h.host) {
		t.Fatalf("accepted Host %q", h.host)
	}
	_, hasTE := h.header["Transfer-Encoding"]
	cl, hasCL := h.header["Content-Length"]
	switch {
	case hasTE:
		t.Fatalf("Transfer-Encoding left in the header map")
	case h.chunked:
		if hasCL || h.contentLength != -1 || h.minor != 1 {
			t.Fatalf("chunked with Content-Length %q, cl=%d, HTTP/1.%d", cl, h.contentLength, h.minor)
		}
	case hasCL:
		if len(cl) != 1 {
			t.Fatalf("Content-Length values %q not collapsed", cl)
		}
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n != h.contentLength {
			t.Fatalf("Content-Length %q but cl=%d", cl[0], h.contentLength)
		}
	default:
		if h.contentLength != 0 {
			t.Fatalf("no framing fields but cl=%d", h.contentLength)
		}
	}
	for k, vv := range h.header {
		if !httpwire.ValidToken(k) || k != httpwire.CanonicalKey(k) {
			t.Fatalf("header key %q", k)
		}
		for _, v := range vv {
			if !httpwire.ValidFieldValue(v) || v != httpwire.TrimOWS(v) {
				t.Fatalf("header value %q", v)
			}
		}
	}
}
