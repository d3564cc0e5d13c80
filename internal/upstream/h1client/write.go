package h1client

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/keelproxy/keel/internal/httpwire"
)

// wire is how one request goes on the wire, decided once per RoundTrip.
type wire struct {
	method string
	// body is the request body, nil when there is none (http.NoBody
	// included).
	body io.ReadCloser
	// length is the Content-Length of body, or -1 for chunked.
	length int64
	// zeroLength asks for "Content-Length: 0" on a request without body.
	zeroLength bool
	expect     bool // "Expect: 100-continue" with a body
	inMemory   bool // body is replayable (GetBody set): it never blocks
	close      bool // send "Connection: close" and do not reuse
	closeToken bool // the caller's Connection field already says close
	upgrade    bool // the request asks to switch protocols
}

// prepare validates what can be validated without writing and decides the
// framing of req (RFC 9112 section 6): Content-Length when the length is
// known and positive, chunked when it is not (ContentLength -1, or 0 with
// a non-empty Body, which is how http.Request spells "unknown").
func prepare(req *http.Request) (wire, error) {
	var w wire
	if req.URL == nil {
		return w, &requestError{why: "nil URL"}
	}
	w.method = req.Method
	if w.method == "" {
		w.method = http.MethodGet
	}
	if !httpwire.ValidToken(w.method) {
		return w, &requestError{why: "invalid method"}
	}
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	switch {
	case body == nil && req.ContentLength > 0:
		return w, &requestError{why: "ContentLength " + strconv.FormatInt(req.ContentLength, 10) + " with nil Body"}
	case body == nil:
		// Many servers want a length on requests that usually carry
		// content; net/http sends it for all but GET and HEAD.
		w.zeroLength = w.method != http.MethodGet && w.method != http.MethodHead && w.method != http.MethodConnect
	case req.ContentLength > 0:
		w.body, w.length = body, req.ContentLength
	default:
		w.body, w.length = body, -1
	}
	h := req.Header
	if w.body != nil {
		w.expect = httpwire.HasToken(h["Expect"], "100-continue")
		w.inMemory = req.GetBody != nil
	}
	w.closeToken = httpwire.HasToken(h["Connection"], "close")
	w.close = req.Close || w.closeToken
	w.upgrade = len(h["Upgrade"]) > 0
	return w, nil
}

// writeHead writes the request line and header section of req to bw. It
// refuses, before writing them, a target, host or field that would break
// the message framing (CR, LF or other control characters; RFC 9112
// section 2.2 and RFC 9110 section 5.5): a caller's bad header must never
// split a request.
func writeHead(bw *bufio.Writer, req *http.Request, w *wire) error {
	_, _ = bw.WriteString(w.method)
	_ = bw.WriteByte(' ')
	if err := writeTarget(bw, req.URL, w.method); err != nil {
		return err
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	// An empty Host is what RFC 9112 section 3.2 asks for when the target
	// has no authority.
	if !validHost(host) {
		return &requestError{why: "invalid Host"}
	}
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	for k, vv := range req.Header {
		if framingField(k) {
			continue
		}
		if !httpwire.ValidToken(k) {
			return &requestError{why: "invalid header field name " + strconv.Quote(k)}
		}
		for _, v := range vv {
			if !httpwire.ValidFieldValue(v) {
				return &requestError{why: "invalid value for header field " + k}
			}
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	switch {
	case w.body == nil && w.zeroLength:
		_, _ = bw.WriteString("Content-Length: 0\r\n")
	case w.body != nil && w.length >= 0:
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), w.length, 10))
		_, _ = bw.WriteString("\r\n")
	case w.body != nil:
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
		if err := writeTrailerField(bw, req.Trailer); err != nil {
			return err
		}
	}
	if w.close && !w.closeToken {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// framingField reports whether k is one of the fields the transport writes
// itself from the request's own fields. The comparison ignores case: a
// non-canonical "content-length" key written through would be a second,
// conflicting length.
func framingField(k string) bool {
	switch len(k) {
	case 4:
		return strings.EqualFold(k, "Host")
	case 7:
		return strings.EqualFold(k, "Trailer")
	case 14:
		return strings.EqualFold(k, "Content-Length")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

// writeTarget writes the request-target: origin-form (path and query) as
// url.URL.RequestURI would build it, without building the string; Opaque
// is honoured, and CONNECT gets the authority-form.
func writeTarget(bw *bufio.Writer, u *url.URL, method string) error {
	var parts [3]string
	switch {
	case method == http.MethodConnect && u.Path == "" && u.Opaque == "":
		parts[0] = u.Host
	case u.Opaque != "":
		if strings.HasPrefix(u.Opaque, "//") {
			parts[0] = u.Scheme + ":"
		}
		parts[1] = u.Opaque
	default:
		parts[1] = u.EscapedPath()
		if parts[1] == "" {
			parts[1] = "/"
		}
	}
	for _, p := range parts[:2] {
		if !validTarget(p) {
			return &requestError{why: "invalid request target"}
		}
	}
	_, _ = bw.WriteString(parts[0])
	_, _ = bw.WriteString(parts[1])
	if u.ForceQuery || u.RawQuery != "" {
		if !validTarget(u.RawQuery) {
			return &requestError{why: "invalid request target"}
		}
		_ = bw.WriteByte('?')
		_, _ = bw.WriteString(u.RawQuery)
	}
	return nil
}

// validTarget reports whether s may appear in a request-target: visible
// ASCII and obs-text, no whitespace or control characters.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost reports whether s is an acceptable Host value: the reg-name,
// IP-literal and port characters of RFC 3986 (the set net/http accepts).
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) < 0 {
			return false
		}
	}
	return true
}

// writeTrailerField announces the request's trailer fields (RFC 9110
// section 6.6.2) so the upstream knows to expect them.
func writeTrailerField(bw *bufio.Writer, trailer http.Header) error {
	if len(trailer) == 0 {
		return nil
	}
	_, _ = bw.WriteString("Trailer: ")
	first := true
	for k := range trailer {
		if !httpwire.ValidToken(k) || framingField(k) {
			return &requestError{why: "invalid trailer field name " + strconv.Quote(k)}
		}
		if !first {
			_, _ = bw.WriteString(", ")
		}
		first = false
		_, _ = bw.WriteString(k)
	}
	_, _ = bw.WriteString("\r\n")
	return nil
}

// flushRoom is the free space below which writeLength flushes before its
// next read, so reads fill most of the buffer instead of its tail.
const flushRoom = 1 << 10

// writeLength copies exactly n bytes of body to bw, for bodies that fit in
// bw: read straight into bw's free space, they leave with the head in one
// write. With flushEach every read is flushed, so a trickling body reaches
// the upstream as it comes. bodyRead is set once the body is fully read.
func writeLength(bw *bufio.Writer, body io.Reader, n int64, flushEach bool, bodyRead *atomic.Bool) error {
	for n > 0 {
		if bw.Available() < flushRoom {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), n)]
		m, rerr := body.Read(buf)
		if m > 0 {
			_, _ = bw.Write(buf[:m])
			n -= int64(m)
			if flushEach {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
		}
		if n == 0 {
			break
		}
		if rerr == io.EOF {
			return &bodyReadError{err: io.ErrUnexpectedEOF}
		}
		if rerr != nil {
			return &bodyReadError{err: rerr}
		}
	}
	bodyRead.Store(true)
	return bw.Flush()
}

// copyBufferSize is the size of the pooled buffers large and chunked
// request bodies stream through: big enough for few syscalls per
// megabyte, held only while a body is being sent.
const copyBufferSize = 32 << 10

// copyLength copies exactly n bytes of body to dst through buf, writing
// each read at once (a trickling body reaches the upstream as it comes).
func copyLength(dst io.Writer, body io.Reader, n int64, buf []byte, bodyRead *atomic.Bool) error {
	for n > 0 {
		m, rerr := body.Read(buf[:min(int64(len(buf)), n)])
		if m > 0 {
			if _, err := dst.Write(buf[:m]); err != nil {
				return err
			}
			n -= int64(m)
		}
		if n == 0 {
			break
		}
		if rerr == io.EOF {
			return &bodyReadError{err: io.ErrUnexpectedEOF}
		}
		if rerr != nil {
			return &bodyReadError{err: rerr}
		}
	}
	bodyRead.Store(true)
	return nil
}

// chunkHeaderRoom is the space reserved in front of chunk data for its
// size line: up to 8 hex digits and CRLF (chunks are buffer-sized).
const chunkHeaderRoom = 10

// copyChunked copies body to dst in the chunked coding (RFC 9112 section
// 7.1) through buf, one chunk, and one write, per body read; then the last
// chunk and the fields of trailer, read after the body's EOF (so a body
// may set them as it ends, as http.Request documents).
func copyChunked(dst io.Writer, body io.Reader, trailer http.Header, buf []byte, bodyRead *atomic.Bool) error {
	for {
		// Read after room for the size line, then put the size line right
		// before the data and the CRLF after it: one write, no copy.
		m, rerr := body.Read(buf[chunkHeaderRoom : len(buf)-2])
		if m > 0 {
			start := chunkHeaderRoom - 2 - hexLen(m)
			strconv.AppendInt(buf[start:start], int64(m), 16)
			buf[chunkHeaderRoom-2], buf[chunkHeaderRoom-1] = '\r', '\n'
			end := chunkHeaderRoom + m
			buf[end], buf[end+1] = '\r', '\n'
			if _, err := dst.Write(buf[start : end+2]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &bodyReadError{err: rerr}
		}
	}
	bodyRead.Store(true)
	tail := append(buf[:0], "0\r\n"...)
	for k, vv := range trailer {
		if !httpwire.ValidToken(k) || framingField(k) {
			return &requestError{why: "invalid trailer field name " + strconv.Quote(k)}
		}
		for _, v := range vv {
			if !httpwire.ValidFieldValue(v) {
				return &requestError{why: "invalid value for trailer field " + k}
			}
			tail = append(append(append(append(tail, k...), ": "...), v...), "\r\n"...)
		}
	}
	tail = append(tail, "\r\n"...)
	_, err := dst.Write(tail)
	return err
}

// hexLen returns the number of hex digits of n > 0.
func hexLen(n int) int {
	l := 1
	for n >= 16 {
		n >>= 4
		l++
	}
	return l
}
