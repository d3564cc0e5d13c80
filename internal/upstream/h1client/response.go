package h1client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/keelproxy/keel/internal/httpwire"
)

// maxHeadBytes bounds one response head (status line and field lines) and,
// separately, the trailer section of a chunked body. Upstreams are trusted
// more than clients, but a runaway head must not grow memory without
// bound; 1MB is far above any real response head (net/http allows 10MB).
const maxHeadBytes = 1 << 20

// max1xx bounds the interim (1xx) responses skipped before the final one,
// so an upstream cannot keep a round trip busy forever with 103s.
const max1xx = 16

// response is one parsed response and its body reader, allocated together:
// the caller gets &r.Response and r.Response.Body points at &r.body, so the
// two cost one allocation. values backs the header values of a typical
// response in the same allocation.
type response struct {
	http.Response
	body   body
	values [8]string
}

// framing collects what the framing-related fields of a head say (RFC 9112
// section 6).
type framing struct {
	contentLength int64
	hasLength     bool
	hasTE         bool // a Transfer-Encoding field was present
	chunked       bool // ... and it said exactly "chunked"
	close         bool // Connection: close
	keepAlive     bool // Connection: keep-alive (meaningful for HTTP/1.0)
	hasTrailer    bool
}

// readHead reads one response head from br, status line to the empty line
// included, and returns it as one string (the one allocation of the head:
// field names and values are substrings of it). got reports whether any
// byte of a response arrived, which decides if a failed round trip may be
// retried.
func readHead(br *bufio.Reader) (head string, got bool, err error) {
	from := 0
	for {
		n := br.Buffered()
		buf, _ := br.Peek(n) // cannot fail: n bytes are buffered
		if end := headEnd(buf, from); end > 0 {
			head = string(buf[:end])
			_, _ = br.Discard(end)
			return head, true, nil
		}
		if n == br.Size() {
			// The head is larger than the read buffer: the rare slow path.
			return readLongHead(br)
		}
		// Resume the search just before the end: a terminator may straddle
		// the bytes we have and the bytes to come.
		from = max(0, n-3)
		if _, err := br.Peek(n + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if br.Buffered() > 0 && err == io.EOF {
				err = malformed("connection closed inside the response head")
			}
			return "", br.Buffered() > 0, err
		}
	}
}

// headEnd returns the length of the head at the start of b, up to and
// including the empty line that ends it, or -1 when b holds no complete
// head. Lines end in CRLF or, tolerated by RFC 9112 section 2.2, a bare LF.
// The search for line ends starts at from.
func headEnd(b []byte, from int) int {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}

// readLongHead reads a head that does not fit in br's buffer, line by line,
// so that nothing after the head is consumed.
func readLongHead(br *bufio.Reader) (string, bool, error) {
	buf := make([]byte, 0, 2*br.Size())
	lineStart := 0
	for {
		line, err := br.ReadSlice('\n')
		buf = append(buf, line...)
		if len(buf) > maxHeadBytes {
			return "", true, malformed("response head too large")
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			return "", true, malformed("connection closed inside the response head")
		case err != nil:
			return "", true, err
		}
		if l := buf[lineStart:]; len(l) == 1 || len(l) == 2 && l[0] == '\r' {
			return string(buf), true, nil
		}
		lineStart = len(buf)
	}
}

// cutLine splits s after its first line, dropping the line terminator
// (CRLF or LF). ok is false when s holds no complete line.
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return "", s, false
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest, true
}

// parseResponse parses head, as returned by readHead, into a response for
// req (which may be nil in tests; its Method decides HEAD framing). The
// body reader is set up but not bound to a connection. Header values,
// canonical names and the status text are substrings of head.
func parseResponse(head string, req *http.Request) (*response, error) {
	line, rest, ok := cutLine(head)
	if !ok {
		return nil, malformed("missing status line")
	}
	code, minor, status, err := parseStatusLine(line)
	if err != nil {
		return nil, err
	}
	r := new(response)
	resp := &r.Response
	resp.Status, resp.StatusCode = status, code
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = line[:8], 1, minor
	resp.Request = req

	// One []string backs every single-valued field, plus a spare slot for
	// TransferEncoding: no allocation per field, none at all for up to 7
	// fields. The three-index slices keep an append for a repeated field
	// from writing into a neighbour's slot.
	nfields := max(strings.Count(rest, "\n")-1, 0)
	hdr := make(http.Header, nfields)
	vals := r.values[:]
	if nfields+1 > len(vals) {
		vals = make([]string, nfields+1)
	}
	used := 0
	var f framing
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return nil, malformed("unterminated header section")
		}
		if line == "" {
			break
		}
		name, value, err := splitField(line)
		if err != nil {
			return nil, err
		}
		key := httpwire.CanonicalKey(name)
		switch key {
		case "Content-Length":
			n, ok := httpwire.ParseDecimal(value)
			if !ok {
				return nil, malformed("invalid Content-Length")
			}
			if f.hasLength {
				// RFC 9110 section 8.6: repeated identical values may be
				// treated as one; differing ones make the framing
				// ambiguous (a response-splitting vector).
				if n != f.contentLength {
					return nil, malformed("differing Content-Length values")
				}
				continue
			}
			f.contentLength, f.hasLength = n, true
		case "Transfer-Encoding":
			if err := f.addTransferEncoding(value); err != nil {
				return nil, err
			}
			// Dechunking is the transport's job: like net/http, the
			// field moves to Response.TransferEncoding.
			continue
		case "Connection":
			f.addConnection(value)
		case "Trailer":
			f.hasTrailer = true
		}
		if vv, ok := hdr[key]; ok {
			hdr[key] = append(vv, value)
			continue
		}
		vals[used] = value
		hdr[key] = vals[used : used+1 : used+1]
		used++
	}
	if rest != "" {
		return nil, malformed("data after the response head")
	}
	resp.Header = hdr
	if err := frame(r, &f, req, vals[nfields:]); err != nil {
		return nil, err
	}
	return r, nil
}

// frame decides how the body of r is delimited (RFC 9112 section 6.3) and
// sets ContentLength, TransferEncoding, Close, Trailer and Body. spare is a
// one-element slice free for TransferEncoding.
func frame(r *response, f *framing, req *http.Request, spare []string) error {
	resp := &r.Response
	minor := resp.ProtoMinor
	if f.hasTE {
		switch {
		case f.hasLength:
			// RFC 9112 section 6.3 item 3: such a message "ought to be
			// handled as an error"; a proxy forwarding it would hand the
			// ambiguity on.
			return malformed("both Transfer-Encoding and Content-Length")
		case minor == 0:
			// RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0
			// message means the framing is faulty.
			return malformed("Transfer-Encoding in an HTTP/1.0 response")
		case !f.chunked:
			return malformed("unsupported Transfer-Encoding")
		}
		spare[0] = "chunked"
		resp.TransferEncoding = spare[:1:1]
		if f.hasTrailer {
			// Even without a body (HEAD, 204): the field describes the
			// chunked framing, as net/http treats it.
			if err := declareTrailers(resp); err != nil {
				return err
			}
		}
	}
	resp.Close = f.close || minor == 0 && !f.keepAlive
	isHead := req != nil && req.Method == http.MethodHead
	code := resp.StatusCode
	switch {
	case isHead || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified:
		// RFC 9112 section 6.3 item 1: never a body, whatever the fields
		// say. For HEAD, ContentLength reports what a GET would carry,
		// as net/http does.
		resp.Body = http.NoBody
		if isHead && f.hasLength {
			resp.ContentLength = f.contentLength
		} else if isHead {
			resp.ContentLength = -1
		}
	case f.chunked:
		resp.ContentLength = -1
		r.body.init(resp, bodyChunked, 0)
		resp.Body = &r.body
	case f.hasLength && f.contentLength == 0:
		resp.Body = http.NoBody
	case f.hasLength:
		resp.ContentLength = f.contentLength
		r.body.init(resp, bodyLength, f.contentLength)
		resp.Body = &r.body
	default:
		// RFC 9112 section 6.3 item 8: the body runs until the server
		// closes the connection, which therefore cannot be reused.
		resp.ContentLength = -1
		resp.Close = true
		r.body.init(resp, bodyUntilClose, 0)
		resp.Body = &r.body
	}
	return nil
}

// declareTrailers moves the Trailer field of a chunked response into
// resp.Trailer as keys with nil values, to be filled when the body ends;
// this is what net/http does, and what lets a proxy announce them early.
func declareTrailers(resp *http.Response) error {
	vv := resp.Header["Trailer"]
	delete(resp.Header, "Trailer")
	t, err := httpwire.DeclaredTrailers(vv)
	if err != nil {
		return malformed(err.Error())
	}
	if t != nil {
		resp.Trailer = t
	}
	return nil
}

// parseStatusLine parses "HTTP/1.x NNN reason" (RFC 9112 section 4).
// status is "NNN reason" (or "NNN" without a reason), a substring of line.
func parseStatusLine(line string) (code, minor int, status string, err error) {
	if len(line) < 12 || line[:7] != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' {
		if strings.HasPrefix(line, "HTTP/") && len(line) > 8 && line[6] == '.' && line[5] != '1' {
			return 0, 0, "", malformed("unsupported protocol version")
		}
		return 0, 0, "", malformed("invalid status line")
	}
	if !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || line[9] == '0' {
		return 0, 0, "", malformed("invalid status code")
	}
	code = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if len(line) > 12 {
		// The reason phrase is optional, but its separator is not; some
		// servers omit both, which is unambiguous and accepted.
		if line[12] != ' ' || !httpwire.ValidFieldValue(line[13:]) {
			return 0, 0, "", malformed("invalid reason phrase")
		}
	}
	return code, int(line[7] - '0'), line[9:], nil
}

// splitField splits a field line into a name and a value without
// surrounding whitespace, strictly: RFC 9112 section 5.1 forbids
// whitespace before the colon, section 5.2 lets a proxy reject obs-fold
// (which it must otherwise rewrite), and RFC 9110 section 5.5 forbids
// control characters (CR, LF and NUL included) in values.
func splitField(line string) (name, value string, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", malformed("obsolete line folding")
	}
	colon := strings.IndexByte(line, ':')
	if colon < 0 {
		return "", "", malformed("field line without a colon")
	}
	name = line[:colon]
	if !httpwire.ValidToken(name) {
		return "", "", malformed("invalid field name")
	}
	value = httpwire.TrimOWS(line[colon+1:])
	if !httpwire.ValidFieldValue(value) {
		return "", "", malformed("invalid value in field " + name)
	}
	return name, value, nil
}

// addTransferEncoding records one Transfer-Encoding field. Only a single
// field saying exactly "chunked" is supported, as in net/http: any other
// coding, chunked applied twice, or list syntax around it (empty elements
// included) would leave a framing that some parser on the path may read
// differently.
func (f *framing) addTransferEncoding(v string) error {
	ok := !f.hasTE && strings.EqualFold(v, "chunked")
	f.hasTE, f.chunked = true, ok
	if !ok {
		return malformed("unsupported Transfer-Encoding")
	}
	return nil
}

// addConnection records the close and keep-alive options of one Connection
// field (RFC 9112 section 9.3).
func (f *framing) addConnection(v string) {
	for v != "" {
		var opt string
		opt, v, _ = strings.Cut(v, ",")
		opt = httpwire.TrimOWS(opt)
		switch {
		case strings.EqualFold(opt, "close"):
			f.close = true
		case strings.EqualFold(opt, "keep-alive"):
			f.keepAlive = true
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
