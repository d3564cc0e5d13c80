package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/keelproxy/keel/internal/httpwire"
)

func newTestParser() *parser {
	return &parser{maxHeaderBytes: DefaultMaxHeaderBytes, maxHeaderCount: DefaultMaxHeaderCount,
		maxURLBytes: DefaultMaxURLBytes}
}

// summary renders the fields of a parsed head that tests compare.
func (h *head) summary() string {
	return fmt.Sprintf("%s %s %s host=%s cl=%d chunked=%v close=%v ka10=%v expect=%v hdr=%v trailer=%v",
		h.method, h.url, h.proto, h.host, h.contentLength, h.chunked, h.close, h.keepAlive10,
		h.expectContinue, h.header, h.trailer)
}

func TestReadHead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"minimal", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			"GET / HTTP/1.1 host=a cl=0 chunked=false close=false ka10=false expect=false hdr=map[] trailer=map[]"},
		{"HTTP/1.0 defaults to close", "GET /x?y HTTP/1.0\r\n\r\n",
			"GET /x?y HTTP/1.0 host= cl=0 chunked=false close=true ka10=false expect=false hdr=map[] trailer=map[]"},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			"GET / HTTP/1.0 host= cl=0 chunked=false close=false ka10=true expect=false hdr=map[Connection:[Keep-Alive]] trailer=map[]"},
		{"close token in list", "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n",
			"GET / HTTP/1.1 host=a cl=0 chunked=false close=true ka10=false expect=false hdr=map[Connection:[foo, close]] trailer=map[]"},
		{"chunked with declared trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: x-a, X-B\r\n\r\n",
			"POST / HTTP/1.1 host=a cl=-1 chunked=true close=false ka10=false expect=false hdr=map[] trailer=map[X-A:[] X-B:[]]"},
		{"CL list collapsed", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007, 7\r\nContent-Length: 7\r\n\r\n",
			"POST / HTTP/1.1 host=a cl=7 chunked=false close=false ka10=false expect=false hdr=map[Content-Length:[7]] trailer=map[]"},
		{"expect continue", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
			"PUT / HTTP/1.1 host=a cl=1 chunked=false close=false ka10=false expect=true hdr=map[Content-Length:[1] Expect:[100-Continue]] trailer=map[]"},
		{"expect continue without body", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
			"PUT / HTTP/1.1 host=a cl=0 chunked=false close=false ka10=false expect=false hdr=map[Expect:[100-continue]] trailer=map[]"},
		{"absolute-form wins over Host", "GET http://b:81/p HTTP/1.1\r\nHost: a\r\n\r\n",
			"GET http://b:81/p HTTP/1.1 host=b:81 cl=0 chunked=false close=false ka10=false expect=false hdr=map[] trailer=map[]"},
		{"Pragma implies Cache-Control", "GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
			"GET / HTTP/1.1 host=a cl=0 chunked=false close=false ka10=false expect=false hdr=map[Cache-Control:[no-cache] Pragma:[no-cache]] trailer=map[]"},
		{"common lower-case names", "GET / HTTP/1.1\r\nhost: a\r\nuser-agent: u\r\nx-forwarded-for: 1.2.3.4\r\nx-weird-name: w\r\n\r\n",
			"GET / HTTP/1.1 host=a cl=0 chunked=false close=false ka10=false expect=false hdr=map[User-Agent:[u] X-Forwarded-For:[1.2.3.4] X-Weird-Name:[w]] trailer=map[]"},
	}
	for _, tt := range tests {
		for _, size := range []int{16, 4096} {
			t.Run(fmt.Sprintf("%s/buf%d", tt.name, size), func(t *testing.T) {
				var h head
				err := newTestParser().readHead(bufio.NewReaderSize(strings.NewReader(tt.in), size), &h)
				if err != nil {
					t.Fatalf("readHead(%q) = %v", tt.in, err)
				}
				if got := h.summary(); got != tt.want {
					t.Errorf("readHead(%q)\n got %s\nwant %s", tt.in, got, tt.want)
				}
			})
		}
	}
}

func TestReadHeadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     error // a *reqError status, io.EOF or io.ErrUnexpectedEOF
		status   int
	}{
		{"empty", "", io.EOF, 0},
		{"only empty lines", "\r\n\r\n", io.EOF, 0},
		{"cut in request line", "GET / HT", io.ErrUnexpectedEOF, 0},
		{"cut in fields", "GET / HTTP/1.1\r\nHost: a\r\n", io.ErrUnexpectedEOF, 0},
		{"long line across buffer fills", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\n\r\n", nil, 414},
		{"long field across buffer fills", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 70000) + "\r\n\r\n", nil, 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h head
			err := newTestParser().readHead(bufio.NewReaderSize(strings.NewReader(tt.in), 16), &h)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("readHead = %v, want %v", err, tt.want)
				}
				return
			}
			re, ok := errIsReq(err)
			if !ok || re.status != tt.status {
				t.Errorf("readHead = %v, want status %d", err, tt.status)
			}
		})
	}
}

func TestCanonicalKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Content-Type", "Content-Type"},
		{"content-type", "Content-Type"},
		{"CONTENT-TYPE", "Content-Type"},
		{"x-request-id", "X-Request-Id"},
		{"x-my-header", "X-My-Header"},
		{"X-MY-HEADER", "X-My-Header"},
		{"a", "A"},
		{"dnt", "Dnt"},
		{strings.Repeat("long-", 10), http.CanonicalHeaderKey(strings.Repeat("long-", 10))},
	}
	for _, tt := range tests {
		if got := httpwire.CanonicalKey(tt.in); got != tt.want {
			t.Errorf("httpwire.CanonicalKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := http.CanonicalHeaderKey(tt.in); got != tt.want {
			t.Errorf("net/http canonical form of %q is %q, table says %q", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalKeyAllocs(t *testing.T) {
	for _, name := range []string{"Content-Type", "content-type", "x-forwarded-for"} {
		if n := testing.AllocsPerRun(100, func() { httpwire.CanonicalKey(name) }); n != 0 {
			t.Errorf("httpwire.CanonicalKey(%q) allocates %v times, want 0", name, n)
		}
	}
}

func TestOriginFormMatchesNetURL(t *testing.T) {
	targets := []string{
		"/", "/a/b/c", "/a?b=c&d=e", "/a?", "/a??", "/?", "/a?b?c", "//x/y", "/a:b@c;d=e,f+g$h&i~j",
		"/a%20b", "/a!b", "/a*b", "/(x)", "/a'b", "/caf\xc3\xa9", "/a[b]", "/a|b", "/a^b", "/a{b}",
		"/a\\b", "/a\"b", "/a<b>", "/a`b", "/%2F", "/a?%zz", "/a?x=%41#",
	}
	for _, target := range targets {
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("ParseRequestURI(%q): %v", target, err)
		}
		var got url.URL
		if !originForm(target, &got) {
			continue // the slow path is url.ParseRequestURI itself
		}
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("originForm(%q) = %#v, want %#v", target, got, *want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		var u url.URL
		originForm("/api/v1/items?id=42", &u)
	}); n != 0 {
		t.Errorf("originForm allocates %v times, want 0", n)
	}
}
