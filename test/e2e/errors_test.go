package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// chunkedReader hides its length so net/http sends the body chunked.
type chunkedReader struct{ r io.Reader }

func (c chunkedReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestErrors(t *testing.T) {
	t.Parallel()
	dead := freeAddr(t) // nothing listens there any more
	closer := newRawServer(t, func(c net.Conn) {
		// Accept, read the request, close without answering.
		readRequestHead(bufio.NewReader(c))
	})
	slow := newUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(1500 * time.Millisecond):
			io.WriteString(w, "too late")
		case <-r.Context().Done():
		}
	})
	counting := newEcho(t, "counting")
	garbage := newRawServer(t, func(c net.Conn) {
		readRequestHead(bufio.NewReader(c))
		io.WriteString(c, "this is not HTTP\r\n\r\n")
	})
	twoLengths := newRawServer(t, func(c net.Conn) {
		readRequestHead(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk")
	})
	slowBody := newUpstream(t, "slowbody", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "head;")
		w.(http.Flusher).Flush()
		select {
		case <-time.After(600 * time.Millisecond):
			io.WriteString(w, "tail")
		case <-r.Context().Done():
		}
	})
	cfg := fmt.Sprintf(`routes:
  - {id: connect, path: /connect, pool: dead}
  - {id: reset, path: /reset, pool: closer}
  - {id: slowhdr, path: /slowheader, pool: slow-hdr}
  - {id: reqtimeout, path: /policytimeout, pool: slow, policy: short}
  - {id: limited, path: /limited, pool: counting, policy: small}
  - {id: tls, path: /tls, pool: counting, policy: tls}
  - {id: garbage, path: /garbage, pool: garbage}
  - {id: twolengths, path: /twolengths, pool: twolengths}
  - {id: slowbody, path: /slowbody, pool: slowbody}
policies:
  - {id: short, timeout: 300ms}
  - {id: small, body_size_limit: 1KB}
  - {id: tls, require_tls: true}
pools:
  - id: dead
    endpoints: [{address: %s}]
    transport: {dial_timeout: 500ms}
  - id: closer
    endpoints: [{address: %s}]
  - id: slow-hdr
    endpoints: [{address: %s}]
    transport: {response_header_timeout: 200ms}
  - id: slow
    endpoints: [{address: %s}]
  - id: counting
    endpoints: [{address: %s}]
  - id: garbage
    endpoints: [{address: %s}]
  - id: twolengths
    endpoints: [{address: %s}]
  - id: slowbody
    endpoints: [{address: %s}]
    transport: {response_header_timeout: 200ms}
%s`, dead, closer.addr, slow.addr, slow.addr, counting.addr, garbage.addr, twoLengths.addr, slowBody.addr, fastShutdown)
	p := startProxy(t, cfg)
	c := newClient(t, 10*time.Second)

	tests := []struct {
		name         string
		method       string
		target       string
		body         io.Reader
		bodyLen      int64 // -1: chunked
		wantStatus   int
		wantCategory string
		noUpstream   bool // the counting upstream must not be contacted
		maxDuration  time.Duration
		wantBody     string // for successes; "" means an echo reply
	}{
		{name: "connect failure", target: "/connect", wantStatus: 502, wantCategory: "upstream_connect_failed"},
		{name: "closed before response", target: "/reset", wantStatus: 502, wantCategory: "upstream_reset"},
		{name: "response header timeout", target: "/slowheader", wantStatus: 504, wantCategory: "upstream_timeout",
			maxDuration: time.Second},
		{name: "policy timeout", target: "/policytimeout", wantStatus: 504, wantCategory: "request_timeout",
			maxDuration: time.Second},
		{name: "body over limit with Content-Length", method: http.MethodPost, target: "/limited",
			body: strings.NewReader(strings.Repeat("x", 2048)), bodyLen: 2048,
			wantStatus: 413, wantCategory: "request_too_large", noUpstream: true},
		{name: "chunked body over limit", method: http.MethodPost, target: "/limited",
			body: chunkedReader{strings.NewReader(strings.Repeat("y", 4096))}, bodyLen: -1,
			wantStatus: 413, wantCategory: "request_too_large"},
		{name: "body under limit", method: http.MethodPost, target: "/limited",
			body: strings.NewReader(strings.Repeat("z", 512)), bodyLen: 512, wantStatus: 200},
		{name: "chunked body under limit", method: http.MethodPost, target: "/limited",
			body: chunkedReader{strings.NewReader(strings.Repeat("z", 1000))}, bodyLen: -1, wantStatus: 200},
		{name: "require_tls on plaintext", target: "/tls", wantStatus: 403, wantCategory: "tls_required", noUpstream: true},
		{name: "malformed response", target: "/garbage", wantStatus: 502, wantCategory: "upstream_reset"},
		{name: "response with two Content-Lengths", target: "/twolengths", wantStatus: 502, wantCategory: "upstream_reset"},
		{name: "slow body after headers is no header timeout", target: "/slowbody", wantStatus: 200, wantBody: "head;tail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, p.url(tc.target), tc.body)
			if err != nil {
				t.Fatal(err)
			}
			id := "err-" + strings.ReplaceAll(tc.name, " ", "-")
			req.Header.Set("X-Request-Id", id)
			req.ContentLength = tc.bodyLen
			if tc.bodyLen < 0 {
				req.TransferEncoding = []string{"chunked"}
			}
			before := counting.hits.Load()
			start := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, tc.target, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			if tc.wantCategory == "" {
				if resp.StatusCode != tc.wantStatus {
					t.Fatalf("%s %s = %d, want %d (body %q)", method, tc.target, resp.StatusCode, tc.wantStatus, b)
				}
				if tc.wantBody != "" {
					if string(b) != tc.wantBody {
						t.Errorf("body = %q, want %q", b, tc.wantBody)
					}
					return
				}
				if rep := decodeEcho(t, b); rep.BodyLen <= 0 {
					t.Errorf("upstream body length = %d, want the whole body", rep.BodyLen)
				}
				return
			}
			checkProxyError(t, resp, b, tc.wantStatus, tc.wantCategory)
			if got := resp.Header.Get("X-Request-Id"); got != id {
				t.Errorf("X-Request-Id = %q, want the client's %q", got, id)
			}
			recs := p.accessByID(t, id)
			if len(recs) != 1 {
				t.Fatalf("access-log lines for %s = %d, want 1", id, len(recs))
			}
			if recs[0]["error"] != tc.wantCategory || recs[0]["status"] != float64(tc.wantStatus) {
				t.Errorf("access log error = %v status = %v, want %q %d", recs[0]["error"], recs[0]["status"], tc.wantCategory, tc.wantStatus)
			}
			if tc.noUpstream {
				if got := counting.hits.Load() - before; got != 0 {
					t.Errorf("upstream contacted %d times, want 0", got)
				}
			}
			if tc.maxDuration > 0 && took > tc.maxDuration {
				t.Errorf("%s %s took %v, want under %v", method, tc.target, took, tc.maxDuration)
			}
		})
	}
}

// TestErrorMidBody has the upstream send headers and part of the body
// (more than any write buffer, so the response has surely started), then
// reset: the client must see the stream cut, never a second status line.
func TestErrorMidBody(t *testing.T) {
	t.Parallel()
	const declared, sent = 1 << 20, 256 << 10
	up := newRawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRequestHead(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", declared)
		c.Write(bytes.Repeat([]byte("a"), sent))
		time.Sleep(100 * time.Millisecond)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST
		}
	})
	p := startProxy(t, oneRoute(up.addr, ""))

	conn, err := net.Dial("tcp", p.data)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /midbody HTTP/1.1\r\nHost: mid.test\r\n\r\n")
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(conn, &raw))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response: %v (got %q)", err, raw.Bytes())
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200 (headers were already sent by the upstream)", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	var ne net.Error
	switch {
	case err == nil:
		t.Errorf("body read completed with %d bytes, want the stream cut before %d", len(body), declared)
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("body read timed out after %d bytes, want the connection closed by the proxy", len(body))
	}
	if len(body) >= declared {
		t.Errorf("body = %d bytes, want fewer than %d", len(body), declared)
	}
	// Drain whatever else the proxy sends before closing.
	io.Copy(io.Discard, br)
	if n := bytes.Count(raw.Bytes(), []byte("HTTP/1.")); n != 1 {
		t.Errorf("client saw %d status lines, want exactly 1; raw tail %q", n, tail(raw.String(), 3))
	}
}
