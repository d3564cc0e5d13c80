package h2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ---------------------------------------------------------------------
// A raw HTTP/2 client built on http2.Framer, for protocol-level tests.

const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// holdWriter writes to the connection, or, while hold is set, into buf so
// that several frames reach the server in one write.
type holdWriter struct {
	c    net.Conn
	hold bool
	buf  bytes.Buffer
}

func (w *holdWriter) Write(p []byte) (int, error) {
	if w.hold {
		return w.buf.Write(p)
	}
	_ = w.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	return w.c.Write(p)
}

type goAwayInfo struct {
	lastStreamID uint32
	code         http2.ErrCode
	debug        string
}

type rawConn struct {
	t  testing.TB
	c  net.Conn
	w  *holdWriter
	fr *http2.Framer

	encBuf bytes.Buffer
	enc    *hpack.Encoder

	settings      map[http2.SettingID]uint32 // the server's, last value wins
	settingsAcked bool
	goAway        *goAwayInfo

	// autoWindow returns the flow-control credit of every DATA frame
	// read by handle at once.
	autoWindow bool

	// resp collects what each stream received, frame by frame, so that
	// responses may be read in any order.
	resp map[uint32]*rawResponse

	// Send-side flow control: what the server lets us send.
	peerInitWin int64
	connSendWin int64
	sendWin     map[uint32]int64
}

// dialRaw connects to addr without writing anything.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &holdWriter{c: c}
	fr := http2.NewFramer(w, c)
	fr.AllowIllegalWrites = true
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = 16 << 20
	rc := &rawConn{
		t: t, c: c, w: w, fr: fr,
		settings:    map[http2.SettingID]uint32{},
		autoWindow:  true,
		peerInitWin: 65535,
		connSendWin: 65535,
		sendWin:     map[uint32]int64{},
		resp:        map[uint32]*rawResponse{},
	}
	rc.enc = hpack.NewEncoder(&rc.encBuf)
	return rc
}

// connectRaw dials addr, sends the preface and SETTINGS, and returns once
// the server's SETTINGS were read and acknowledged and ours were acked.
func connectRaw(t testing.TB, addr string, settings ...http2.Setting) *rawConn {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.start(settings...)
	return rc
}

func (rc *rawConn) start(settings ...http2.Setting) {
	rc.t.Helper()
	rc.batch(func() {
		rc.w.Write([]byte(clientPreface))
		rc.fr.WriteSettings(settings...)
	})
	gotServer := false
	for !gotServer || !rc.settingsAcked {
		f := rc.next()
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			gotServer = true
		}
		rc.handle(f)
	}
}

// batch runs fn with writes held, then sends them in one write.
func (rc *rawConn) batch(fn func()) {
	rc.t.Helper()
	rc.w.hold = true
	fn()
	rc.w.hold = false
	if rc.w.buf.Len() > 0 {
		_, err := rc.w.Write(rc.w.buf.Bytes())
		rc.w.buf.Reset()
		if err != nil {
			rc.t.Fatalf("write: %v", err)
		}
	}
}

// encode HPACK-encodes name/value pairs, in order.
func (rc *rawConn) encode(kv ...string) []byte {
	rc.t.Helper()
	if len(kv)%2 != 0 {
		rc.t.Fatalf("odd number of header strings: %q", kv)
	}
	rc.encBuf.Reset()
	for i := 0; i < len(kv); i += 2 {
		if err := rc.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			rc.t.Fatal(err)
		}
	}
	return bytes.Clone(rc.encBuf.Bytes())
}

func (rc *rawConn) check(err error) {
	rc.t.Helper()
	if err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// headers sends one HEADERS frame with END_HEADERS.
func (rc *rawConn) headers(id uint32, endStream bool, kv ...string) {
	rc.t.Helper()
	if _, ok := rc.sendWin[id]; !ok {
		rc.sendWin[id] = rc.peerInitWin
	}
	rc.check(rc.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: rc.encode(kv...), EndStream: endStream, EndHeaders: true,
	}))
}

// get sends a GET for path on stream id with END_STREAM.
func (rc *rawConn) get(id uint32, path string, extra ...string) {
	rc.t.Helper()
	rc.headers(id, true, append(reqFields("GET", path), extra...)...)
}

func reqFields(method, path string) []string {
	return []string{":method", method, ":scheme", "http", ":path", path, ":authority", "example.com"}
}

func (rc *rawConn) data(id uint32, endStream bool, p []byte) {
	rc.t.Helper()
	rc.check(rc.fr.WriteData(id, endStream, p))
	rc.connSendWin -= int64(len(p))
	rc.sendWin[id] -= int64(len(p))
}

// sendBody sends body on stream id in frames that respect the server's
// flow-control windows and frame size, reading WINDOW_UPDATEs as needed.
func (rc *rawConn) sendBody(id uint32, body []byte, endStream bool) {
	rc.t.Helper()
	if len(body) == 0 {
		rc.data(id, endStream, nil)
		return
	}
	for len(body) > 0 {
		maxFrame := int64(16384)
		if v, ok := rc.settings[http2.SettingMaxFrameSize]; ok {
			maxFrame = int64(v)
		}
		n := min(int64(len(body)), maxFrame, rc.connSendWin, rc.sendWin[id])
		if n <= 0 {
			f := rc.next()
			if f.Header().StreamID == id {
				if _, ok := f.(*http2.WindowUpdateFrame); !ok {
					rc.t.Fatalf("stream %d: unexpected %v while sending the request body", id, describe(f))
				}
			}
			rc.handle(f)
			continue
		}
		rc.data(id, endStream && n == int64(len(body)), body[:n])
		body = body[n:]
	}
}

// readFrame reads one frame with a deadline.
func (rc *rawConn) readFrame() (http2.Frame, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(ioTimeout))
	return rc.fr.ReadFrame()
}

// next reads one frame and fails the test on any error.
func (rc *rawConn) next() http2.Frame {
	rc.t.Helper()
	f, err := rc.readFrame()
	if err != nil {
		rc.t.Fatalf("reading frame: %v (GOAWAY seen: %+v)", err, rc.goAway)
	}
	return f
}

// handle does the connection-level bookkeeping for a frame read and
// records stream frames into rc.resp.
func (rc *rawConn) handle(f http2.Frame) {
	if id := f.Header().StreamID; id != 0 {
		rc.record(id, f)
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			rc.settingsAcked = true
			return
		}
		f.ForeachSetting(func(s http2.Setting) error {
			if s.ID == http2.SettingInitialWindowSize {
				delta := int64(s.Val) - rc.peerInitWin
				for id := range rc.sendWin {
					rc.sendWin[id] += delta
				}
				rc.peerInitWin = int64(s.Val)
			}
			rc.settings[s.ID] = s.Val
			return nil
		})
		rc.fr.WriteSettingsAck()
	case *http2.WindowUpdateFrame:
		if id := f.StreamID; id == 0 {
			rc.connSendWin += int64(f.Increment)
		} else if _, ok := rc.sendWin[id]; ok {
			rc.sendWin[id] += int64(f.Increment)
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			rc.fr.WritePing(true, f.Data)
		}
	case *http2.GoAwayFrame:
		rc.goAway = &goAwayInfo{f.LastStreamID, f.ErrCode, string(f.DebugData())}
	case *http2.DataFrame:
		if n := f.Header().Length; rc.autoWindow && n > 0 {
			rc.fr.WriteWindowUpdate(0, n)
			if !f.StreamEnded() {
				rc.fr.WriteWindowUpdate(f.StreamID, n)
			}
		}
	}
}

// until reads and handles frames until match returns true for one.
func (rc *rawConn) until(what string, match func(http2.Frame) bool) http2.Frame {
	rc.t.Helper()
	for {
		f, err := rc.readFrame()
		if err != nil {
			rc.t.Fatalf("waiting for %s: %v (GOAWAY seen: %+v)", what, err, rc.goAway)
		}
		rc.handle(f)
		if match(f) {
			return f
		}
	}
}

func (rc *rawConn) waitGoAway() *goAwayInfo {
	rc.t.Helper()
	if rc.goAway != nil {
		return rc.goAway
	}
	rc.until("GOAWAY", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	return rc.goAway
}

// ping sends a PING and waits for its ACK.
func (rc *rawConn) ping(data [8]byte) {
	rc.t.Helper()
	rc.check(rc.fr.WritePing(false, data))
	rc.until("PING ACK", func(f http2.Frame) bool {
		p, ok := f.(*http2.PingFrame)
		return ok && p.IsAck() && p.Data == data
	})
}

// expectClosed reads until the server ends the connection. It fails the
// test if the connection is still open after the read deadline. It
// returns the GOAWAY read on the way, if any.
func (rc *rawConn) expectClosed() *goAwayInfo {
	rc.t.Helper()
	for {
		f, err := rc.readFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				rc.t.Fatalf("connection still open after %v (GOAWAY seen: %+v)", ioTimeout, rc.goAway)
			}
			return rc.goAway
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			g := f.(*http2.GoAwayFrame)
			rc.goAway = &goAwayInfo{g.LastStreamID, g.ErrCode, string(g.DebugData())}
		}
	}
}

type rawResponse struct {
	informational []string            // :status of 1xx responses, in order
	fields        []hpack.HeaderField // final response header block
	status        string
	header        http.Header
	body          []byte
	trailer       http.Header
	reset         bool
	rstCode       http2.ErrCode
	endOnHeaders  bool // END_STREAM on the final HEADERS
	done          bool
}

func (r *rawResponse) String() string {
	if r == nil {
		return "nothing"
	}
	if r.reset {
		return fmt.Sprintf("RST_STREAM %v after status %q body %q", r.rstCode, r.status, r.body)
	}
	return fmt.Sprintf("status %q header %v body %q", r.status, r.header, r.body)
}

func toHeader(fields []hpack.HeaderField) http.Header {
	h := http.Header{}
	for _, f := range fields {
		if !strings.HasPrefix(f.Name, ":") {
			h.Add(f.Name, f.Value)
		}
	}
	return h
}

// record adds a frame to the response of its stream.
func (rc *rawConn) record(id uint32, f http2.Frame) {
	res := rc.resp[id]
	if res == nil {
		res = &rawResponse{}
		rc.resp[id] = res
	}
	if res.done {
		return
	}
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		st := f.PseudoValue("status")
		switch {
		case res.status == "" && strings.HasPrefix(st, "1"):
			res.informational = append(res.informational, st)
		case res.status == "":
			res.status = st
			res.fields = f.Fields
			res.header = toHeader(f.Fields)
			res.endOnHeaders = f.StreamEnded()
		default:
			res.trailer = toHeader(f.Fields)
		}
		res.done = f.StreamEnded()
	case *http2.DataFrame:
		res.body = append(res.body, f.Data()...)
		res.done = f.StreamEnded()
	case *http2.RSTStreamFrame:
		res.reset, res.rstCode, res.done = true, f.ErrCode, true
	}
}

// readResponse returns the response on stream id, reading frames until
// it ended with END_STREAM or RST_STREAM.
func (rc *rawConn) readResponse(id uint32) *rawResponse {
	rc.t.Helper()
	for {
		if res := rc.resp[id]; res != nil && res.done {
			delete(rc.resp, id)
			return res
		}
		f, err := rc.readFrame()
		if err != nil {
			rc.t.Fatalf("stream %d: reading response: %v (so far: %v; GOAWAY seen: %+v)", id, err, rc.resp[id], rc.goAway)
		}
		rc.handle(f)
	}
}

func (rc *rawConn) expectStatus(id uint32, status, body string) *rawResponse {
	rc.t.Helper()
	res := rc.readResponse(id)
	if res.reset || res.status != status || (body != "" && string(res.body) != body) {
		rc.t.Fatalf("stream %d: got %v, want status %s body %q", id, res, status, body)
	}
	return res
}

func (rc *rawConn) expectReset(id uint32, code http2.ErrCode) *rawResponse {
	rc.t.Helper()
	res := rc.readResponse(id)
	if !res.reset || res.rstCode != code {
		rc.t.Fatalf("stream %d: got %v, want RST_STREAM %v", id, res, code)
	}
	return res
}

func describe(f http2.Frame) string {
	switch f := f.(type) {
	case *http2.RSTStreamFrame:
		return fmt.Sprintf("RST_STREAM stream=%d %v", f.StreamID, f.ErrCode)
	case *http2.GoAwayFrame:
		return fmt.Sprintf("GOAWAY last=%d %v", f.LastStreamID, f.ErrCode)
	}
	return fmt.Sprintf("%v", f.Header())
}

// ---------------------------------------------------------------------
// Handlers and helpers shared by the raw tests.

// okHandler answers "ok".
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "ok")
})

// counting wraps h and counts the requests it sees.
type counting struct {
	n atomic.Int32
	h http.Handler
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.h.ServeHTTP(w, r)
}

// ---------------------------------------------------------------------
// Tests.

func TestServerSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		srv        *Server
		maxStreams uint32
		initWin    uint32
	}{
		{"defaults", &Server{}, DefaultMaxConcurrentStreams, DefaultStreamWindow},
		{"configured", &Server{MaxConcurrentStreams: 7, StreamWindow: 200000}, 7, 200000},
		{"window clamped", &Server{StreamWindow: 100}, DefaultMaxConcurrentStreams, 65535},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.srv.Handler = okHandler
			ts := startServer(t, tt.srv)
			rc := connectRaw(t, ts.addr)
			if got := rc.settings[http2.SettingMaxConcurrentStreams]; got != tt.maxStreams {
				t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want %d", got, tt.maxStreams)
			}
			got, ok := rc.settings[http2.SettingInitialWindowSize]
			if !ok {
				got = 65535
			}
			if got != tt.initWin {
				t.Errorf("SETTINGS_INITIAL_WINDOW_SIZE = %d, want %d", got, tt.initWin)
			}
			rc.get(1, "/")
			rc.expectStatus(1, "200", "ok")
		})
	}
}

func TestRequestFieldsRaw(t *testing.T) {
	t.Parallel()
	type snap struct {
		method, proto, host, uri, path, query, remote, cookie, local string
		major, minor                                                 int
		multi                                                        []string
		cl                                                           int64
		noBody                                                       bool
	}
	got := make(chan snap, 1)
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := snap{
			method: r.Method, proto: r.Proto, major: r.ProtoMajor, minor: r.ProtoMinor,
			host: r.Host, uri: r.RequestURI, path: r.URL.Path, query: r.URL.RawQuery,
			remote: r.RemoteAddr, cookie: r.Header.Get("Cookie"), multi: r.Header.Values("X-Multi"),
			cl: r.ContentLength, noBody: r.Body == http.NoBody,
		}
		if len(r.Header["Cookie"]) != 1 {
			s.cookie = fmt.Sprintf("%q", r.Header["Cookie"])
		}
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			s.local = a.String()
		}
		got <- s
		io.WriteString(w, "ok")
	})})
	rc := connectRaw(t, ts.addr)
	rc.headers(1, true,
		":method", "GET", ":scheme", "http", ":path", "/p/a%20b?q=1&r=2", ":authority", "example.com:8080",
		"cookie", "a=1", "x-multi", "1", "cookie", "b=2", "x-multi", "2")
	rc.expectStatus(1, "200", "ok")
	s := <-got
	want := snap{
		method: "GET", proto: "HTTP/2.0", major: 2, minor: 0,
		host: "example.com:8080", uri: "/p/a%20b?q=1&r=2", path: "/p/a b", query: "q=1&r=2",
		remote: rc.c.LocalAddr().String(), cookie: "a=1; b=2", multi: []string{"1", "2"},
		cl: 0, noBody: true, local: ts.addr,
	}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Fatalf("request seen by handler:\n got %+v\nwant %+v", s, want)
	}
}

func TestRequestContentLength(t *testing.T) {
	t.Parallel()
	type result struct {
		cl     int64
		noBody bool
		body   string
		err    error
	}
	got := make(chan result, 1)
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := result{cl: r.ContentLength, noBody: r.Body == http.NoBody}
		b, err := io.ReadAll(r.Body)
		res.body, res.err = string(b), err
		got <- res
		io.WriteString(w, "ok")
	})})
	tests := []struct {
		name   string
		fields []string
		end    bool     // END_STREAM on HEADERS
		data   []string // DATA frames; the last ends the stream
		want   result
	}{
		{"no body", reqFields("GET", "/"), true, nil, result{cl: 0, noBody: true}},
		{"content-length", append(reqFields("POST", "/"), "content-length", "5"), false, []string{"hello"}, result{cl: 5, body: "hello"}},
		{"no content-length", reqFields("POST", "/"), false, []string{"hel", "lo"}, result{cl: -1, body: "hello"}},
		{"empty DATA ends stream", reqFields("POST", "/"), false, []string{""}, result{cl: -1}},
	}
	rc := connectRaw(t, ts.addr)
	id := uint32(1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc.t = t
			rc.headers(id, tt.end, tt.fields...)
			for i, d := range tt.data {
				rc.data(id, i == len(tt.data)-1, []byte(d))
			}
			rc.expectStatus(id, "200", "ok")
			if r := <-got; r != tt.want {
				t.Fatalf("handler saw %+v, want %+v", r, tt.want)
			}
			id += 2
		})
	}
}

func TestRequestTrailersRaw(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %v %q", b, err, r.Trailer.Get("X-T"))
	})})
	rc := connectRaw(t, ts.addr)
	rc.headers(1, false, append(reqFields("POST", "/"), "trailer", "x-t")...)
	rc.data(1, false, []byte("abc"))
	rc.headers(1, true, "x-t", "v")
	rc.expectStatus(1, "200", `abc <nil> "v"`)
}

func TestRequestContextCanceled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		abort func(rc *rawConn)
	}{
		{"RST_STREAM", func(rc *rawConn) { rc.check(rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)) }},
		{"connection closed", func(rc *rawConn) { rc.c.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			entered, canceled := make(chan struct{}), make(chan struct{})
			ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				select {
				case <-r.Context().Done():
					close(canceled)
				case <-time.After(2 * ioTimeout):
				}
			})})
			rc := connectRaw(t, ts.addr)
			rc.get(1, "/")
			recv(t, entered, "handler start")
			tt.abort(rc)
			recv(t, canceled, "request context canceled")
		})
	}
}

func TestResponseConnectionHeadersDropped(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "close")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Transfer-Encoding", "chunked")
		h.Set("Upgrade", "foo")
		h.Set("Proxy-Connection", "keep-alive")
		h["connection"] = []string{"upgrade"} // set past Set's canonicalisation
		h.Set("X-Keep", "1")
		io.WriteString(w, "ok")
	})})
	rc := connectRaw(t, ts.addr)
	rc.get(1, "/")
	res := rc.expectStatus(1, "200", "ok")
	for _, f := range res.fields {
		switch f.Name {
		case "connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection":
			t.Errorf("response carries connection-specific field %q: %q", f.Name, f.Value)
		}
		if f.Name != strings.ToLower(f.Name) {
			t.Errorf("response field name %q is not lowercase", f.Name)
		}
	}
	if res.header.Get("X-Keep") != "1" {
		t.Errorf("x-keep missing from %v", res.header)
	}
}

func TestHEADHasNoBody(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", "1")
		io.WriteString(w, "hello")
	})})
	rc := connectRaw(t, ts.addr)
	rc.headers(1, true, reqFields("HEAD", "/")...)
	res := rc.expectStatus(1, "200", "")
	if len(res.body) != 0 || res.header.Get("X-A") != "1" {
		t.Fatalf("HEAD response: %v; want no body and x-a", res)
	}
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/noread" {
			io.WriteString(w, "no")
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})})
	t.Run("handler reads body", func(t *testing.T) {
		t.Parallel()
		rc := connectRaw(t, ts.addr)
		rc.headers(1, false, append(reqFields("POST", "/read"), "expect", "100-continue", "content-length", "5")...)
		// The 100 must come before any body is sent.
		f := rc.until("100 Continue", func(f http2.Frame) bool { return f.Header().StreamID == 1 })
		mh, ok := f.(*http2.MetaHeadersFrame)
		if !ok || mh.PseudoValue("status") != "100" || mh.StreamEnded() {
			t.Fatalf("first frame on stream 1 is %v, want HEADERS :status 100", describe(f))
		}
		rc.data(1, true, []byte("hello"))
		rc.expectStatus(1, "200", "hello")
	})
	t.Run("handler ignores body", func(t *testing.T) {
		t.Parallel()
		rc := connectRaw(t, ts.addr)
		rc.headers(1, false, append(reqFields("POST", "/noread"), "expect", "100-continue", "content-length", "5")...)
		res := rc.expectStatus(1, "200", "no")
		if len(res.informational) != 0 {
			t.Fatalf("got informational responses %q; a handler that never reads the body sends no 100", res.informational)
		}
	})
}

// captureHandler records slog records at or above Warn.
type captureHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *captureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }
func (h *captureHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		h      http.HandlerFunc
		code   http2.ErrCode // 0xffff: any code
		status string        // response status seen before the reset
		logged bool
	}{
		{"ErrAbortHandler before headers", func(w http.ResponseWriter, r *http.Request) {
			panic(http.ErrAbortHandler)
		}, http2.ErrCodeInternal, "", false},
		{"ErrAbortHandler after flush", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, http2.ErrCodeInternal, "200", false},
		{"other panic", func(w http.ResponseWriter, r *http.Request) {
			panic("boom")
		}, 0xffff, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &captureHandler{}
			h := tt.h
			ts := startServer(t, &Server{ErrorLog: slog.New(logs), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/ok" {
					io.WriteString(w, "ok")
					return
				}
				h(w, r)
			})})
			rc := connectRaw(t, ts.addr)
			rc.get(1, "/panic")
			res := rc.readResponse(1)
			if !res.reset || (tt.code != 0xffff && res.rstCode != tt.code) || res.status != tt.status {
				t.Fatalf("got %v, want status %q then RST_STREAM %v", res, tt.status, tt.code)
			}
			// The connection survives.
			rc.get(3, "/ok")
			rc.expectStatus(3, "200", "ok")
			if n := logs.count(); (n > 0) != tt.logged {
				t.Errorf("%d warnings/errors logged (%q), want logged=%v", n, logs.msgs, tt.logged)
			}
		})
	}
}

func TestMaxConcurrentStreamsRefused(t *testing.T) {
	t.Parallel()
	entered := make(chan string, 10)
	var release *gate
	ts := startServer(t, &Server{MaxConcurrentStreams: 2, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- r.URL.Path
		if r.URL.Path != "/fast" {
			release.wait(r.Context())
		}
		io.WriteString(w, "ok")
	})})
	release = newGate(t)
	rc := connectRaw(t, ts.addr)
	if got := rc.settings[http2.SettingMaxConcurrentStreams]; got != 2 {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want 2", got)
	}
	rc.get(1, "/1")
	rc.get(3, "/3")
	recv(t, entered, "handler 1")
	recv(t, entered, "handler 2")
	rc.get(5, "/5") // the client ignores the limit
	rc.expectReset(5, http2.ErrCodeRefusedStream)
	release.open()
	rc.expectStatus(1, "200", "ok")
	rc.expectStatus(3, "200", "ok")
	rc.get(7, "/fast")
	rc.expectStatus(7, "200", "ok")
	recv(t, entered, "handler 7")
	select {
	case p := <-entered:
		t.Fatalf("handler ran for refused stream (%s)", p)
	default:
	}
}

func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	h := &counting{h: okHandler}
	ts := startServer(t, &Server{Handler: h})
	base := reqFields("GET", "/")
	with := func(kv ...string) []string { return append(append([]string{}, base...), kv...) }
	tests := []struct {
		name   string
		fields []string
		ok     bool // a well-formed control case
	}{
		{"te trailers allowed", with("te", "trailers"), true},
		{"connection", with("connection", "keep-alive"), false},
		{"keep-alive", with("keep-alive", "timeout=5"), false},
		{"proxy-connection", with("proxy-connection", "keep-alive"), false},
		{"transfer-encoding", with("transfer-encoding", "chunked"), false},
		{"upgrade", with("upgrade", "websocket"), false},
		{"te gzip", with("te", "gzip"), false},
		{"te trailers and gzip", with("te", "trailers, gzip"), false},
		{"uppercase name", with("X-Foo", "1"), false},
		{"mixed case name", with("x-Foo", "1"), false},
		{"missing :method", []string{":scheme", "http", ":path", "/", ":authority", "a"}, false},
		{"missing :scheme", []string{":method", "GET", ":path", "/", ":authority", "a"}, false},
		{"missing :path", []string{":method", "GET", ":scheme", "http", ":authority", "a"}, false},
		{"empty :path", []string{":method", "GET", ":scheme", "http", ":path", "", ":authority", "a"}, false},
		{"duplicate :path", with(":path", "/x"), false},
		{"unknown pseudo-header", with(":foo", "bar"), false},
		{"response pseudo-header", with(":status", "200"), false},
		{"pseudo-header after regular", []string{":method", "GET", ":scheme", "http", "x-a", "1", ":path", "/", ":authority", "a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := connectRaw(t, ts.addr)
			rc.headers(1, true, tt.fields...)
			if tt.ok {
				rc.expectStatus(1, "200", "ok")
				return
			}
			rc.expectReset(1, http2.ErrCodeProtocol)
			// A stream error: the connection still serves requests.
			rc.get(3, "/")
			rc.expectStatus(3, "200", "ok")
		})
	}
	t.Cleanup(func() {
		// Only the control case and the follow-up requests ran.
		if got, want := h.n.Load(), int32(len(tests)); got != want {
			t.Errorf("handler ran %d times, want %d (malformed requests must not reach it)", got, want)
		}
	})
}

func TestContentLengthMismatch(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		w.Write(b)
	})})
	post := func(cl string) []string { return append(reqFields("POST", "/"), "content-length", cl) }
	tests := []struct {
		name   string
		fields []string
		end    bool
		data   []string
		ok     bool
	}{
		{"matching in two frames", post("5"), false, []string{"he", "llo"}, true},
		{"DATA shorter", post("10"), false, []string{"hello"}, false},
		{"DATA longer", post("2"), false, []string{"hello"}, false},
		{"DATA longer over frames", post("4"), false, []string{"hel", "lo"}, false},
		{"END_STREAM on HEADERS with content-length 5", post("5"), true, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := connectRaw(t, ts.addr)
			rc.batch(func() {
				rc.headers(1, tt.end, tt.fields...)
				for i, d := range tt.data {
					rc.data(1, i == len(tt.data)-1, []byte(d))
				}
			})
			if tt.ok {
				rc.expectStatus(1, "200", "hello")
				return
			}
			rc.expectReset(1, http2.ErrCodeProtocol)
			rc.get(3, "/")
			rc.expectStatus(3, "200", "")
		})
	}
}

func TestHeaderListTooLarge431(t *testing.T) {
	t.Parallel()
	h := &counting{h: okHandler}
	ts := startServer(t, &Server{Handler: h, MaxHeaderBytes: 4096})
	rc := connectRaw(t, ts.addr)
	// 200 copies of one field: tiny on the wire (HPACK indexes it),
	// 200*(5+1+32) = 7600 bytes decoded.
	fields := reqFields("GET", "/big")
	for range 200 {
		fields = append(fields, "x-rep", "v")
	}
	rc.headers(1, true, fields...)
	rc.expectStatus(1, "431", "")
	if n := h.n.Load(); n != 0 {
		t.Fatalf("handler ran %d times for a header list over MaxHeaderBytes", n)
	}
	// The HPACK state stayed in sync: the next request (using the
	// dynamic table) works.
	rc.get(3, "/", "x-rep", "v")
	rc.expectStatus(3, "200", "ok")
	// Just under the limit is fine.
	fields = reqFields("GET", "/under")
	for range 50 {
		fields = append(fields, "x-rep", "v")
	}
	rc.headers(5, true, fields...)
	rc.expectStatus(5, "200", "ok")
}

// hpackFields encodes never-indexed fields until the block is at least n
// bytes; the result is valid HPACK regardless of the decoder's table.
func hpackFields(n int) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
	enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: "http"})
	enc.WriteField(hpack.HeaderField{Name: ":path", Value: "/"})
	for i := 0; buf.Len() < n; i++ {
		enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-h%d", i), Value: strings.Repeat("0123456789", 20), Sensitive: true})
	}
	return buf.Bytes()
}

func TestHeaderBlockWireLimit(t *testing.T) {
	t.Parallel()
	t.Run("just over the limit", func(t *testing.T) {
		t.Parallel()
		h := &counting{h: okHandler}
		ts := startServer(t, &Server{Handler: h, MaxHeaderBytes: 4096})
		rc := connectRaw(t, ts.addr)
		block := hpackFields(5000)
		// HEADERS + CONTINUATIONs, never END_HEADERS: only the wire size
		// can end this.
		rc.batch(func() {
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1000], EndStream: true})
			for p := block[1000:]; len(p) > 0; {
				n := min(len(p), 1000)
				rc.fr.WriteContinuation(1, false, p[:n])
				p = p[n:]
			}
		})
		g := rc.expectClosed()
		if g == nil {
			t.Errorf("connection closed without GOAWAY")
		}
		if n := h.n.Load(); n != 0 {
			t.Errorf("handler ran %d times", n)
		}
	})
	t.Run("CONTINUATION flood", func(t *testing.T) {
		t.Parallel()
		h := &counting{h: okHandler}
		ts := startServer(t, &Server{Handler: h})
		rc := connectRaw(t, ts.addr)
		one := hpackFields(0) // pseudo-headers only, for the HEADERS frame
		// Whole never-indexed fields: valid HPACK in any number of copies.
		var fb bytes.Buffer
		enc := hpack.NewEncoder(&fb)
		for fb.Len() < 15000 {
			enc.WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("abcdefghij", 50), Sensitive: true})
		}
		frag := fb.Bytes()
		// A separate writer framer: the flood is written while the
		// test reads.
		wfr := http2.NewFramer(rc.c, nil)
		rc.c.SetWriteDeadline(time.Now().Add(2 * ioTimeout))
		var wg sync.WaitGroup
		var written atomic.Int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			if wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: one, EndStream: true}) != nil {
				return
			}
			for range 2000 { // 30 MB: far over any sane limit
				if wfr.WriteContinuation(1, false, frag) != nil {
					return
				}
				written.Add(int64(len(frag)))
			}
		}()
		// Read until the server ends the connection.
		var goAway bool
		for {
			f, err := rc.readFrame()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("connection still open after %d bytes of CONTINUATION", written.Load())
				}
				break
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				goAway = true
			}
		}
		rc.c.Close()
		wg.Wait()
		// written counts what the kernel took, socket buffers included,
		// so it says little about what the server read.
		t.Logf("%d bytes of CONTINUATION written before the close", written.Load())
		if !goAway {
			t.Logf("no GOAWAY read before the close (it may have been lost to a TCP reset)")
		}
		if n := h.n.Load(); n != 0 {
			t.Errorf("handler ran %d times", n)
		}
	})
}

func TestRapidReset(t *testing.T) {
	t.Parallel()
	blocking := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(ioTimeout):
		}
	}
	t.Run("paced", func(t *testing.T) {
		t.Parallel()
		h := &counting{h: http.HandlerFunc(blocking)}
		ts := startServer(t, &Server{Handler: h})
		rc := connectRaw(t, ts.addr)
		var opened int
		for i := range 300 {
			id := uint32(2*i + 1)
			var pd [8]byte
			pd[0], pd[1] = byte(i>>8), byte(i)
			// HEADERS, RST_STREAM and a PING in one write; the PING ACK
			// paces the client to the server, so the GOAWAY is read
			// before the server closes with unread input.
			rc.batch(func() {
				rc.get(id, "/")
				rc.fr.WriteRSTStream(id, http2.ErrCodeCancel)
				rc.fr.WritePing(false, pd)
			})
			opened++
			rc.until("PING ACK or GOAWAY", func(f http2.Frame) bool {
				p, ok := f.(*http2.PingFrame)
				_, isGoAway := f.(*http2.GoAwayFrame)
				return isGoAway || ok && p.IsAck() && p.Data == pd
			})
			if rc.goAway != nil {
				break
			}
		}
		if rc.goAway == nil {
			t.Fatalf("no GOAWAY after %d streams opened and reset", opened)
		}
		if rc.goAway.code != http2.ErrCodeEnhanceYourCalm {
			t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", rc.goAway.code)
		}
		if opened < 100 || opened > 101 {
			t.Errorf("GOAWAY after %d streams; want it at the 100th (>= 100 opened, > half reset)", opened)
		}
		rc.expectClosed()
		t.Logf("GOAWAY after %d streams; handlers ran for %d of them", opened, h.n.Load())
	})
	t.Run("burst", func(t *testing.T) {
		t.Parallel()
		h := &counting{h: http.HandlerFunc(blocking)}
		ts := startServer(t, &Server{Handler: h})
		rc := connectRaw(t, ts.addr)
		const streams = 1000
		rc.w.hold = true
		for i := range streams {
			id := uint32(2*i + 1)
			rc.get(id, "/")
			rc.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
		attack := bytes.Clone(rc.w.buf.Bytes())
		rc.w.buf.Reset()
		rc.w.hold = false
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc.c.SetWriteDeadline(time.Now().Add(2 * ioTimeout))
			for p := attack; len(p) > 0; {
				n := min(len(p), 4096)
				if _, err := rc.c.Write(p[:n]); err != nil {
					return
				}
				p = p[n:]
			}
		}()
		var goAway *goAwayInfo
		for {
			f, err := rc.readFrame()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("connection still open after %d streams opened and reset", streams)
				}
				break
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				goAway = &goAwayInfo{g.LastStreamID, g.ErrCode, ""}
			}
		}
		rc.c.Close()
		wg.Wait()
		if goAway != nil && goAway.code != http2.ErrCodeEnhanceYourCalm {
			t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", goAway.code)
		}
		t.Logf("GOAWAY %+v; handlers ran %d times for %d streams sent", goAway, h.n.Load(), streams)
		if n := h.n.Load(); n > 150 {
			t.Errorf("handlers ran for %d of %d reset streams; the connection should end at about 100", n, streams)
		}
	})
}

func TestMostlyCompletedStreamsNoGoAway(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: okHandler})
	rc := connectRaw(t, ts.addr)
	// 150 streams, one in three reset: a browser navigating away, not
	// an attack.
	for i := range 150 {
		id := uint32(2*i + 1)
		if i%3 == 0 {
			rc.batch(func() {
				rc.get(id, "/")
				rc.fr.WriteRSTStream(id, http2.ErrCodeCancel)
			})
			continue
		}
		rc.get(id, "/")
		if res := rc.readResponse(id); res.reset || res.status != "200" {
			t.Fatalf("stream %d: %v", id, res)
		}
	}
	rc.ping([8]byte{1})
	if rc.goAway != nil {
		t.Fatalf("GOAWAY %+v for a client that completed two thirds of its streams", rc.goAway)
	}
}

func TestWindowUpdateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		streamID uint32
		incr     uint32
		code     http2.ErrCode
	}{
		{"conn overflow", 0, 1<<31 - 1, http2.ErrCodeFlowControl},
		{"conn zero increment", 0, 0, http2.ErrCodeProtocol},
		{"stream overflow", 1, 1<<31 - 1, http2.ErrCodeFlowControl},
		{"stream zero increment", 1, 0, http2.ErrCodeProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts, entered, _ := startBlockingServer(t) // the gate opens at cleanup
			rc := connectRaw(t, ts.addr)
			if tt.streamID != 0 {
				rc.get(tt.streamID, "/block")
				recv(t, entered, "handler start")
			}
			rc.check(rc.fr.WriteWindowUpdate(tt.streamID, tt.incr))
			if tt.streamID == 0 {
				g := rc.expectClosed()
				if g == nil || g.code != tt.code {
					t.Fatalf("connection closed with GOAWAY %+v, want %v", g, tt.code)
				}
				return
			}
			rc.expectReset(tt.streamID, tt.code)
			rc.get(3, "/")
			rc.expectStatus(3, "200", "ok")
		})
	}
}

func TestDataBeyondStreamWindow(t *testing.T) {
	t.Parallel()
	var release *gate
	ts := startServer(t, &Server{StreamWindow: 65535, ConnWindow: 1 << 20, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release.wait(r.Context()) // never reads the body
	})})
	release = newGate(t)
	rc := connectRaw(t, ts.addr)
	rc.headers(1, false, reqFields("POST", "/")...)
	win := rc.sendWin[1]
	if win != 65535 {
		t.Fatalf("stream send window %d, want 65535", win)
	}
	chunk := make([]byte, 16384)
	rc.batch(func() {
		for sent := int64(0); sent <= win; sent += int64(len(chunk)) {
			rc.fr.WriteData(1, false, chunk)
		}
	})
	for {
		f := rc.next()
		rc.handle(f)
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 && f.ErrCode == http2.ErrCodeFlowControl {
				return
			}
			t.Fatalf("got %v, want FLOW_CONTROL_ERROR", describe(f))
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeFlowControl {
				t.Fatalf("got %v, want FLOW_CONTROL_ERROR", describe(f))
			}
			return
		case *http2.WindowUpdateFrame:
			if f.StreamID == 1 {
				t.Fatalf("server opened the window of a stream whose handler reads nothing (+%d)", f.Increment)
			}
		}
	}
}

func TestUploadRespectingWindows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		srv  *Server
		size int
	}{
		{"minimal windows", &Server{StreamWindow: 65535, ConnWindow: 65535}, 600 << 10},
		{"defaults", &Server{}, 5 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.srv.Handler = http.HandlerFunc(sumHandler)
			ts := startServer(t, tt.srv)
			rc := connectRaw(t, ts.addr)
			body := pattern(tt.size)
			rc.headers(1, false, reqFields("POST", "/")...)
			rc.sendBody(1, body, true)
			rc.expectStatus(1, "200", sumOf(body))
		})
	}
}

func TestDownloadSmallClientWindow(t *testing.T) {
	t.Parallel()
	const size = 300 << 10
	ts := startServer(t, &Server{Handler: http.HandlerFunc(patternHandler)})
	const streamWin = 1000
	rc := connectRaw(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWin})
	rc.autoWindow = false
	rc.get(1, fmt.Sprintf("/?n=%d", size))
	var (
		body             []byte
		streamAvail      = int64(streamWin)
		connAvail        = int64(65535)
		frames, maxFrame int
	)
	for done := false; !done; {
		f := rc.next()
		rc.handle(f)
		switch f := f.(type) {
		case *http2.DataFrame:
			if f.StreamID != 1 {
				continue
			}
			n := int64(f.Header().Length)
			streamAvail -= n
			connAvail -= n
			if streamAvail < 0 || connAvail < 0 {
				t.Fatalf("server overran the flow-control window: stream %d conn %d after %d bytes", streamAvail, connAvail, len(body))
			}
			frames++
			maxFrame = max(maxFrame, int(n))
			body = append(body, f.Data()...)
			done = f.StreamEnded()
			if done {
				break
			}
			// Hand back the stream credit at once; the conn credit
			// only when half of it is used.
			if n > 0 {
				rc.fr.WriteWindowUpdate(1, uint32(n))
				streamAvail += n
			}
			if connAvail < 32768 {
				rc.fr.WriteWindowUpdate(0, uint32(65535-connAvail))
				connAvail = 65535
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				t.Fatalf("stream reset: %v", f.ErrCode)
			}
		}
	}
	if !bytes.Equal(body, pattern(size)) {
		t.Fatalf("body: %d bytes, want %d of the pattern", len(body), size)
	}
	if maxFrame > streamWin {
		t.Fatalf("largest DATA frame %d > window %d", maxFrame, streamWin)
	}
}

func TestSettingsRepeatedParameterLastWins(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(patternHandler)})
	rc := connectRaw(t, ts.addr,
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
	// No WINDOW_UPDATEs: 60000 bytes fit the 65535 window, not a 1-byte one.
	rc.autoWindow = false
	rc.get(1, "/?n=60000")
	res := rc.expectStatus(1, "200", "")
	if !bytes.Equal(res.body, pattern(60000)) {
		t.Fatalf("got %d body bytes, want 60000", len(res.body))
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: okHandler})
	rc := connectRaw(t, ts.addr)
	data := [8]byte{'k', 'e', 'e', 'l', 0, 1, 2, 0xff}
	rc.check(rc.fr.WritePing(false, data))
	f := rc.until("PING", func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok })
	if p := f.(*http2.PingFrame); !p.IsAck() || p.Data != data {
		t.Fatalf("got PING ack=%v data=%q, want ACK with %q", p.IsAck(), p.Data, data)
	}
}

func TestUnknownFramesIgnored(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})})
	rc := connectRaw(t, ts.addr)
	rc.batch(func() {
		rc.fr.WriteRawFrame(0xfa, 0xff, 0, []byte("connection-level"))
		rc.headers(1, false, reqFields("POST", "/")...)
		rc.fr.WriteRawFrame(0xfb, 0x01, 1, []byte("stream-level"))
		rc.data(1, false, []byte("a"))
		rc.fr.WriteRawFrame(0x20, 0, 1, nil)
		rc.data(1, true, []byte("b"))
	})
	rc.expectStatus(1, "200", "ab")
	rc.ping([8]byte{9})
	if rc.goAway != nil {
		t.Fatalf("GOAWAY %+v", rc.goAway)
	}
}

func TestClientGoAwayLetsStreamsFinish(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	var release chan struct{}
	var mu sync.Mutex
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ch := release
		mu.Unlock()
		entered <- struct{}{}
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "done")
	})})
	// The GOAWAY and the end of the response race on the server; a few
	// rounds make a lost response likely to show.
	for i := range 30 {
		mu.Lock()
		release = make(chan struct{})
		ch := release
		mu.Unlock()
		rc := connectRaw(t, ts.addr)
		rc.get(1, "/")
		recv(t, entered, "handler start")
		rc.check(rc.fr.WriteGoAway(0, http2.ErrCodeNo, nil))
		close(ch)
		if res := rc.readResponse(1); res.reset || res.status != "200" || string(res.body) != "done" {
			t.Fatalf("round %d: got %v, want 200 %q", i, res, "done")
		}
		rc.c.Close()
	}
}

func TestShutdownGraceful(t *testing.T) {
	t.Parallel()
	entered := make(chan string, 4)
	var release *gate
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- r.URL.Path
		release.wait(r.Context())
		io.WriteString(w, "done")
	})})
	release = newGate(t)
	rc := connectRaw(t, ts.addr)
	rc.get(1, "/1")
	recv(t, entered, "handler start")
	ts.srv.Shutdown()
	g := rc.waitGoAway()
	if g.code != http2.ErrCodeNo || g.lastStreamID != 1 {
		t.Fatalf("GOAWAY %+v, want NO_ERROR with last stream 1", g)
	}
	// A stream after the GOAWAY is not processed.
	rc.get(3, "/3")
	release.open()
	rc.expectStatus(1, "200", "done")
	rc.expectClosed()
	select {
	case p := <-entered:
		t.Fatalf("handler ran for %s after GOAWAY", p)
	default:
	}
}

func TestShutdownRefusesNewConns(t *testing.T) {
	t.Parallel()
	h := &counting{h: okHandler}
	ts := startServer(t, &Server{Handler: h})
	ts.srv.Shutdown()
	rc := dialRaw(t, ts.addr)
	rc.batch(func() {
		rc.w.Write([]byte(clientPreface))
		rc.fr.WriteSettings()
		rc.get(1, "/")
	})
	if g := rc.expectClosed(); g == nil {
		t.Errorf("connection closed without GOAWAY")
	}
	if n := h.n.Load(); n != 0 {
		t.Errorf("handler ran %d times after Shutdown", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 150 * time.Millisecond
	ts := startServer(t, &Server{IdleTimeout: idle, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			// Longer than the idle timeout, but the stream is open.
			time.Sleep(3 * idle)
		}
		io.WriteString(w, "ok")
	})})
	t.Run("closes idle conn", func(t *testing.T) {
		t.Parallel()
		rc := connectRaw(t, ts.addr)
		rc.get(1, "/")
		rc.expectStatus(1, "200", "ok")
		start := time.Now()
		if g := rc.expectClosed(); g == nil {
			t.Errorf("idle connection closed without GOAWAY")
		}
		if d := time.Since(start); d < idle/2 {
			t.Errorf("closed after %v, idle timeout is %v", d, idle)
		}
	})
	t.Run("not while a stream is open", func(t *testing.T) {
		t.Parallel()
		rc := connectRaw(t, ts.addr)
		rc.get(1, "/slow")
		rc.expectStatus(1, "200", "ok")
	})
}

func TestPrefaceErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &Server{PrefaceTimeout: 100 * time.Millisecond, Handler: okHandler})
	tests := []struct {
		name string
		send string
	}{
		{"timeout", ""},
		{"partial preface", clientPreface[:10]},
		{"HTTP/1.1", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"preface then no SETTINGS", clientPreface},
		{"preface then PING", clientPreface + "\x00\x00\x08\x06\x00\x00\x00\x00\x00" + "12345678"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.DialTimeout("tcp", ts.addr, ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, c)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("connection still open after %v", ioTimeout)
			}
		})
	}
}

func TestSlowClientTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings []http2.Setting
		connWin  uint32 // WINDOW_UPDATE on stream 0
	}{
		// Windows wide open; the client stops reading, TCP backs up.
		{"client does not read", []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}}, 1<<31 - 1 - 65535},
		// The client never grants window.
		{"client grants no window", []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			writeErr := make(chan error, 1)
			ts := startServer(t, &Server{SlowClientTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				chunk := make([]byte, 32<<10)
				for range 8192 { // 256 MiB
					if _, err := w.Write(chunk); err != nil {
						writeErr <- err
						return
					}
				}
				writeErr <- nil
			})})
			rc := connectRaw(t, ts.addr, tt.settings...)
			if tt.connWin > 0 {
				rc.check(rc.fr.WriteWindowUpdate(0, tt.connWin))
			}
			rc.get(1, "/")
			// The client reads nothing more.
			select {
			case err := <-writeErr:
				if err == nil {
					t.Fatal("handler's 256 MiB of writes all succeeded, to a client that reads nothing")
				}
			case <-time.After(3 * ioTimeout):
				t.Fatal("handler write still blocked on a client that reads nothing")
			}
		})
	}
}

func TestShortSlowClientTimeoutHealthyConn(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	ts := startServer(t, &Server{SlowClientTimeout: timeout, Handler: okHandler})
	rc := connectRaw(t, ts.addr)
	rc.get(1, "/")
	rc.expectStatus(1, "200", "ok")
	// A client that reads promptly but pauses between requests for
	// longer than the timeout.
	time.Sleep(3 * timeout)
	rc.get(3, "/")
	rc.expectStatus(3, "200", "ok")
}
