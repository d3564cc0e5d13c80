package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// newTestBody returns a body reading in through a bufio.Reader of size.
func newTestBody(in io.Reader, size int, h *head) (*body, *http.Request) {
	c := &conn{p: *newTestParser()}
	c.cr.init(c)
	c.bufr = bufio.NewReaderSize(in, size)
	r := &http.Request{Trailer: h.trailer}
	b := &body{}
	b.init(c, nil, r, h, c.cr.begin(false))
	return b, r
}

func TestChunkedBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want, trailer string
		err                     string // "" = io.EOF at the end; "unexpected" or a BodyError reason
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", "map[]", ""},
		{"several chunks", "1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n0\r\n\r\n", "abcdef", "map[]", ""},
		{"upper and lower hex", "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", strings.Repeat("0123456789", 2), "map[]", ""},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", "map[]", ""},
		{"extensions", "5;a=b;c=\"d e\"\r\nhello\r\n0;last\r\n\r\n", "hello", "map[]", ""},
		{"BWS before extension", "5 \t;a\r\nhello\r\n0\r\n\r\n", "hello", "map[]", ""},
		{"trailers", "5\r\nhello\r\n0\r\nX-A: 1\r\nx-b: 2\r\nX-A: 3\r\n\r\n", "hello", "map[X-A:[1 3] X-B:[2]]", ""},
		{"forbidden trailers dropped", "0\r\nHost: evil\r\nTransfer-Encoding: chunked\r\nX-Ok: y\r\n\r\n", "", "map[X-Ok:[y]]", ""},
		{"bare LF in trailer section", "0\r\nX-A: 1\n\n", "", "map[X-A:[1]]", ""},
		{"truncated data", "5\r\nhel", "hel", "map[]", "unexpected"},
		{"truncated before last chunk", "5\r\nhello\r\n", "hello", "map[]", "unexpected"},
		{"truncated trailers", "0\r\nX-A: 1\r\n", "", "map[]", "unexpected"},
		{"not hex", "g\r\n", "", "map[]", "invalid chunk size"},
		{"empty size", "\r\nhello\r\n", "", "map[]", "chunk size line not terminated by CRLF"},
		{"bare LF size line", "5\nhello\r\n0\r\n\r\n", "", "map[]", "chunk size line not terminated by CRLF"},
		{"junk after size", "5x\r\nhello\r\n0\r\n\r\n", "", "map[]", "invalid chunk size"},
		{"too large", "1000000000000000\r\n", "", "map[]", "chunk size too large"},
		{"data not followed by CRLF", "5\r\nhelloXX0\r\n\r\n", "hello", "map[]", "missing CRLF after chunk data"},
		{"control in extension", "5;a\x00\r\nhello\r\n0\r\n\r\n", "", "map[]", "invalid chunk extension"},
		{"malformed trailer", "0\r\nbad trailer\r\n\r\n", "", "map[]", "malformed trailer field"},
		{"size line too long", "5;" + strings.Repeat("x", 5000) + "\r\nhello\r\n0\r\n\r\n", "", "map[]", "chunk size line too long"},
		{"extension flood", strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 40) + "0\r\n\r\n",
			strings.Repeat("x", 16), "map[]", "too much chunk framing overhead"},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
		size int
	}{
		{"whole", func(r io.Reader) io.Reader { return r }, 4096},
		{"one byte at a time", iotest.OneByteReader, 4096},
		{"small buffer", iotest.HalfReader, 32},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			if rd.size < 4096 && (strings.Contains(tt.name, "too long") || strings.Contains(tt.name, "flood")) {
				// A chunk line is limited to the buffer size: with a small
				// buffer these cases test the buffer, not the limit.
				continue
			}
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				h := &head{chunked: true, contentLength: -1}
				b, r := newTestBody(rd.wrap(strings.NewReader(tt.in)), rd.size, h)
				got, err := io.ReadAll(b)
				if string(got) != tt.want {
					t.Errorf("body = %q, want %q", got, tt.want)
				}
				switch tt.err {
				case "":
					if err != nil {
						t.Errorf("err = %v, want clean EOF", err)
					}
				case "unexpected":
					if !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Errorf("err = %v, want ErrUnexpectedEOF", err)
					}
				default:
					var be *BodyError
					if !errors.As(err, &be) || be.Reason != tt.err {
						t.Errorf("err = %v, want BodyError %q", err, tt.err)
					}
				}
				if got := fmt.Sprint(r.Trailer); got != tt.trailer {
					t.Errorf("Trailer = %s, want %s", got, tt.trailer)
				}
			})
		}
	}
}

// TestBodyEOFWithLastData: when the end of the body is already buffered,
// the read that returns the last bytes also returns io.EOF, so a proxy
// learns the body is complete without another read.
func TestBodyEOFWithLastData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		h    head
	}{
		{"content-length", "hello", head{contentLength: 5}},
		{"chunked", "2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n", head{chunked: true, contentLength: -1}},
		{"chunked with trailers", "5\r\nhello\r\n0\r\nX-A: b\r\n\r\n", head{chunked: true, contentLength: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTestBody(strings.NewReader(tt.in+"GET / HTTP/1.1\r\n"), 4096, &tt.h)
			_, _ = b.c.bufr.Peek(len(tt.in)) // all buffered, as after one socket read
			buf := make([]byte, 100)
			n, err := b.Read(buf)
			if string(buf[:n]) != "hello" || err != io.EOF {
				t.Errorf("Read = %q, %v; want hello, EOF", buf[:n], err)
			}
			rest, _ := b.c.bufr.Peek(b.c.bufr.Buffered())
			if string(rest) != "GET / HTTP/1.1\r\n" {
				t.Errorf("next request bytes = %q: the body reader overran", rest)
			}
		})
	}
}

func TestFixedBody(t *testing.T) {
	t.Parallel()
	h := &head{contentLength: 10}
	b, _ := newTestBody(iotest.OneByteReader(strings.NewReader("0123")), 4096, h)
	got, err := io.ReadAll(b)
	if string(got) != "0123" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAll = %q, %v; want 0123, ErrUnexpectedEOF", got, err)
	}
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Read after failure = %v, want the sticky error", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Errorf("Read after Close = %v, want ErrBodyReadAfterClose", err)
	}
}
