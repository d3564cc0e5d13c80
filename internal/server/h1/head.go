package h1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keelproxy/keel/internal/httpwire"
)

// requestLineSlack is what the request line may hold besides the
// request-target (method, two spaces, version, CRLF) before the server
// stops reading it and answers 414.
const requestLineSlack = 64

// reqError is a request the server refuses without calling the handler.
// The connection is always closed after the response (RFC 9112 section 11:
// once framing is in doubt, nothing later on the connection can be trusted).
type reqError struct {
	status   int    // HTTP status sent
	category string // SPEC section 6 error category
	msg      string // a constant, safe to echo to the client
}

func (e *reqError) Error() string { return "h1: " + e.msg }

func badRequest(msg string) *reqError {
	return &reqError{status: http.StatusBadRequest, category: "bad_request", msg: msg}
}

var (
	errURITooLong = &reqError{status: http.StatusRequestURITooLong, category: "uri_too_long",
		msg: "request-target too long"}
	errHeaderTooLarge = &reqError{status: http.StatusRequestHeaderFieldsTooLarge,
		category: "header_too_large", msg: "request header section too large"}
	errTooManyHeaders = &reqError{status: http.StatusRequestHeaderFieldsTooLarge,
		category: "header_too_large", msg: "too many header fields"}
	errVersion = &reqError{status: http.StatusHTTPVersionNotSupported, category: "bad_request",
		msg: "HTTP version not supported"}
	errUnknownCoding = &reqError{status: http.StatusNotImplemented, category: "bad_request",
		msg: "unsupported transfer coding"}
	errExpectation = &reqError{status: http.StatusExpectationFailed, category: "bad_request",
		msg: "unsupported expectation"}
)

// span is one line of a header block: p.buf[start:end], terminator excluded.
type span struct{ start, end int }

// parser reads request heads and trailer sections. A conn owns one and
// reuses its buffers across requests; it is not safe for concurrent use.
type parser struct {
	maxHeaderBytes int // bytes of a head (request line included) or trailer section
	maxHeaderCount int // field lines in a head or trailer section
	maxURLBytes    int // bytes of the request-target

	buf   []byte // the raw block being read, reused
	lines []span // the non-empty lines of buf, reused
}

// head is a parsed request head with the framing facts the server needs.
type head struct {
	method, target, proto string
	minor                 int // 0 or 1; the major version is always 1
	url                   *url.URL
	header                http.Header
	trailer               http.Header // declared trailers (nil values), nil when none
	host                  string

	// Storage supplied by the caller to spare allocations: the URL of an
	// origin-form target is written to urlBuf, and single field values
	// are sliced from vals when the head has no more fields than it holds.
	urlBuf *url.URL
	vals   []string

	contentLength  int64 // -1 with chunked
	chunked        bool
	close          bool // the client does not want the connection kept
	keepAlive10    bool // an HTTP/1.0 client asked for keep-alive
	expectContinue bool // "Expect: 100-continue" with a body, HTTP/1.1
}

// readBlock reads one header block (a request head when startLine, else a
// trailer section) up to and including its empty line. Lines end in CRLF or,
// as RFC 9112 section 2.2 allows a recipient to accept, a bare LF; a CR
// anywhere else is left in the line, where validation rejects it.
// It returns io.EOF only when the reader ended before any byte of the block.
func (p *parser) readBlock(br *bufio.Reader, startLine bool) error {
	p.buf, p.lines = p.buf[:0], p.lines[:0]
	consumed, lineStart := 0, 0
	for {
		frag, err := br.ReadSlice('\n')
		consumed += len(frag)
		if startLine && len(p.lines) == 0 && len(p.buf)+len(frag)-lineStart > p.maxURLBytes+requestLineSlack {
			return errURITooLong
		}
		if consumed > p.maxHeaderBytes {
			if startLine && len(p.lines) > 0 {
				return errHeaderTooLarge
			}
			if startLine {
				return errURITooLong
			}
			return errHeaderTooLarge
		}
		p.buf = append(p.buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF {
				if len(p.lines) == 0 && len(p.buf) == lineStart {
					return io.EOF
				}
				return io.ErrUnexpectedEOF
			}
			return err
		}
		end := len(p.buf) - 1
		if end > lineStart && p.buf[end-1] == '\r' {
			end--
		}
		if end == lineStart {
			if startLine && len(p.lines) == 0 {
				// RFC 9112 2.2: a server SHOULD ignore at least one
				// empty line received before the request-line.
				p.buf = p.buf[:lineStart]
				continue
			}
			return nil
		}
		p.lines = append(p.lines, span{lineStart, end})
		fields := len(p.lines)
		if startLine {
			fields--
		}
		if fields > p.maxHeaderCount {
			return errTooManyHeaders
		}
		lineStart = len(p.buf)
	}
}

// release drops buffers grown by an unusually large block, so one big
// request does not pin memory for the rest of a keep-alive connection.
func (p *parser) release() {
	if cap(p.buf) > 8<<10 {
		p.buf = nil
	}
	if cap(p.lines) > 256 {
		p.lines = nil
	}
}

// readHead reads and validates a request head into h. On a malformed
// request it returns a *reqError; io.EOF means the client closed cleanly
// before sending a byte; other errors are I/O errors.
func (p *parser) readHead(br *bufio.Reader, h *head) error {
	if err := p.readBlock(br, true); err != nil {
		return err
	}
	// One allocation for the whole head: every name and value below is a
	// substring of it.
	raw := string(p.buf)
	if err := h.parseRequestLine(raw[p.lines[0].start:p.lines[0].end], p.maxURLBytes); err != nil {
		return err
	}
	hdr, err := parseFields(raw, p.lines[1:], h.vals)
	if err != nil {
		return err
	}
	h.header = hdr
	return h.interpret()
}

// parseRequestLine parses "method SP request-target SP HTTP-version"
// (RFC 9112 section 3) strictly: single spaces, no leading or trailing
// whitespace.
func (h *head) parseRequestLine(line string, maxURL int) error {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !httpwire.ValidToken(method) {
		return badRequest("malformed request line")
	}
	switch proto {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
		h.minor = 0
	default:
		if len(proto) == 8 && strings.HasPrefix(proto, "HTTP/") && isDigit(proto[5]) && proto[6] == '.' && isDigit(proto[7]) {
			return errVersion
		}
		return badRequest("malformed HTTP version")
	}
	h.method, h.target, h.proto = method, target, proto
	if len(target) > maxURL {
		return errURITooLong
	}
	if target == "" {
		return badRequest("empty request-target")
	}
	for i := 0; i < len(target); i++ {
		if byteClass[target[i]]&classTarget == 0 {
			return badRequest("invalid request-target")
		}
	}
	if h.urlBuf != nil && originForm(target, h.urlBuf) {
		h.url = h.urlBuf
		return nil
	}
	u, err := parseTarget(method, target)
	if err != nil {
		return err
	}
	h.url = u
	return nil
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// originForm parses the common origin-form target into u exactly as
// url.ParseRequestURI would, without allocating. It reports false, leaving
// the work to parseTarget, for anything else: targets not starting with
// '/', and paths with percent-escapes or bytes net/url records in RawPath.
// The caller has already rejected control characters and spaces.
func originForm(target string, u *url.URL) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if byteClass[path[i]]&classPath == 0 {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// parseTarget parses a non-empty request-target free of invalid bytes in
// one of the four forms of RFC 9112 section 3.2. Authority-form is accepted for CONNECT only and
// asterisk-form for OPTIONS only; the URL then looks like net/http's.
func parseTarget(method, target string) (*url.URL, error) {
	switch {
	case target[0] == '/':
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return nil, badRequest("invalid request-target")
		}
		return u, nil
	case target == "*":
		if method != http.MethodOptions {
			return nil, badRequest("asterisk-form is only for OPTIONS")
		}
		return &url.URL{Path: "*"}, nil
	case method == http.MethodConnect:
		// authority-form (RFC 9112 3.2.3): host:port and nothing else.
		u, err := url.ParseRequestURI("http://" + target)
		if err != nil || u.Host == "" || u.Port() == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery {
			return nil, badRequest("invalid authority-form request-target")
		}
		u.Scheme = ""
		return u, nil
	}
	// absolute-form (RFC 9112 3.2.2), which a server MUST accept.
	u, err := url.ParseRequestURI(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, badRequest("invalid absolute-form request-target")
	}
	return u, nil
}

// parseFields builds the header map from the field lines of raw. Keys are
// canonical; repeated fields keep every value in order.
func parseFields(raw string, lines []span, vals []string) (http.Header, error) {
	hdr := make(http.Header, len(lines))
	// One backing array for all single values, sliced with full capacity
	// so that appending a second value never overwrites a neighbour (the
	// same trick as net/textproto).
	if len(lines) > len(vals) {
		vals = make([]string, len(lines))
	}
	for i, ln := range lines {
		name, value, err := parseField(raw[ln.start:ln.end])
		if err != nil {
			return nil, err
		}
		key := httpwire.CanonicalKey(name)
		if vv, ok := hdr[key]; ok {
			hdr[key] = append(vv, value)
			continue
		}
		vals[i] = value
		hdr[key] = vals[i : i+1 : i+1]
	}
	return hdr, nil
}

// parseField splits and validates one field line (RFC 9112 section 5).
func parseField(line string) (name, value string, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		// RFC 9112 5.2: a server MUST reject obs-fold (or replace it);
		// whitespace before the first field is rejected too (2.2).
		return "", "", badRequest("obsolete line folding")
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok || name == "" {
		return "", "", badRequest("malformed header line")
	}
	if !httpwire.ValidToken(name) {
		if c := name[len(name)-1]; c == ' ' || c == '\t' {
			// RFC 9112 5.1: MUST reject whitespace between name and colon.
			return "", "", badRequest("whitespace before colon in header line")
		}
		return "", "", badRequest("invalid header name")
	}
	value = httpwire.TrimOWS(value)
	if !httpwire.ValidFieldValue(value) {
		return "", "", badRequest("invalid header value")
	}
	return name, value, nil
}

// interpret applies the message-framing and connection rules of RFC 9112
// sections 6, 9 and RFC 9110 section 7.2 to a parsed head.
func (h *head) interpret() error {
	hdr := h.header
	if err := h.framing(); err != nil {
		return err
	}

	hosts := hdr["Host"]
	switch {
	case len(hosts) > 1:
		return badRequest("more than one Host header")
	case len(hosts) == 0 && h.minor == 1:
		// RFC 9112 3.2: MUST respond 400 to an HTTP/1.1 request without Host.
		return badRequest("missing Host header")
	case len(hosts) == 1 && !validHost(hosts[0]):
		return badRequest("invalid Host header")
	}
	// RFC 9112 3.2.2: with absolute-form the target's authority wins.
	h.host = h.url.Host
	if h.host == "" && len(hosts) == 1 {
		h.host = hosts[0]
	}
	if !validHost(h.host) {
		return badRequest("invalid host in request-target")
	}
	delete(hdr, "Host") // net/http semantics: the host lives in Request.Host

	conn := hdr["Connection"]
	if h.minor == 0 {
		h.keepAlive10 = httpwire.HasToken(conn, "keep-alive")
		h.close = !h.keepAlive10
	} else {
		h.close = httpwire.HasToken(conn, "close")
	}

	if ex, ok := hdr["Expect"]; ok {
		if httpwire.HasToken(ex, "100-continue") {
			h.expectContinue = h.minor == 1 && h.contentLength != 0
		} else {
			// RFC 9110 10.1.1: a server MAY answer 417 to an
			// expectation it does not understand.
			return errExpectation
		}
	}

	// RFC 9111 5.4 and net/http: Pragma: no-cache means Cache-Control:
	// no-cache when the latter is absent.
	if p := hdr["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	return nil
}

// framing determines the body length (RFC 9112 6.3) and rejects every
// ambiguous combination, since a proxy that frames a request differently
// from its upstream enables request smuggling.
func (h *head) framing() error {
	hdr := h.header
	te, hasTE := hdr["Transfer-Encoding"]
	cl, hasCL := hdr["Content-Length"]
	switch {
	case hasTE && hasCL:
		return badRequest("both Transfer-Encoding and Content-Length")
	case hasTE:
		if h.minor == 0 {
			// RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding
			// MUST be treated as having faulty framing.
			return badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		if err := checkChunkedOnly(te); err != nil {
			return err
		}
		delete(hdr, "Transfer-Encoding") // net/http semantics: see Request.TransferEncoding
		h.chunked, h.contentLength = true, -1
		return h.declaredTrailers()
	case hasCL:
		n, canon, err := parseContentLength(cl)
		if err != nil {
			return err
		}
		if canon {
			hdr["Content-Length"] = []string{strconv.FormatInt(n, 10)}
		}
		h.contentLength = n
	default:
		h.contentLength = 0 // RFC 9112 6.3 rule 7: a request without framing has no body
	}
	return nil
}

// checkChunkedOnly accepts a Transfer-Encoding whose only coding is chunked.
// RFC 9112 6.1: chunked MUST be the final coding and applied once; other
// codings are answered 501 (6.1: "SHOULD respond with 501").
func checkChunkedOnly(values []string) error {
	chunked := 0
	for _, v := range values {
		for {
			elem, rest, more := strings.Cut(v, ",")
			elem = httpwire.TrimOWS(elem)
			switch {
			case strings.EqualFold(elem, "chunked"):
				chunked++
			case !httpwire.ValidToken(elem):
				return badRequest("malformed Transfer-Encoding")
			case chunked > 0:
				return badRequest("chunked is not the final transfer coding")
			default:
				return errUnknownCoding
			}
			if !more {
				break
			}
			v = rest
		}
	}
	if chunked != 1 {
		return badRequest("chunked applied more than once")
	}
	return nil
}

// parseContentLength parses every Content-Length value. Repeated fields or
// list elements with the same decimal value collapse to one (RFC 9110 8.6
// permits this); differing or malformed values are rejected. canon reports
// that the header must be rewritten to the single value.
func parseContentLength(values []string) (n int64, canon bool, err error) {
	n = -1
	for _, v := range values {
		for {
			elem, rest, more := strings.Cut(v, ",")
			m, ok := httpwire.ParseDecimal(httpwire.TrimOWS(elem))
			if !ok {
				return 0, false, badRequest("invalid Content-Length")
			}
			if n >= 0 && m != n {
				return 0, false, badRequest("conflicting Content-Length values")
			}
			canon = canon || more || n >= 0
			n = m
			if !more {
				break
			}
			v = rest
		}
	}
	return n, canon, nil
}

// declaredTrailers fills h.trailer from the Trailer field of a chunked
// request, as net/http does: the keys are present with nil values until
// the body reaches EOF.
func (h *head) declaredTrailers() error {
	vv, ok := h.header["Trailer"]
	if !ok {
		return nil
	}
	delete(h.header, "Trailer")
	tr, err := httpwire.DeclaredTrailers(vv)
	if err != nil {
		return badRequest(err.Error())
	}
	h.trailer = tr
	return nil
}

// errIsReq reports whether err is a request rejection and returns it.
func errIsReq(err error) (*reqError, bool) {
	var re *reqError
	ok := errors.As(err, &re)
	return re, ok
}
