package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	})
	p := startProxy(t, oneRoute(up.addr, ""))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws://"+p.data+"/ws", &websocket.DialOptions{HTTPClient: newClient(t, 0),
		HTTPHeader: http.Header{"X-Request-Id": {"e2e-ws"}}})
	if err != nil {
		t.Fatalf("websocket.Dial through the proxy: %v", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("handshake status = %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Upstream"); got != "ws" {
		t.Errorf("handshake X-Upstream = %q, want %q", got, "ws")
	}

	msgs := []struct {
		typ  websocket.MessageType
		data []byte
	}{
		{websocket.MessageText, []byte("hello")},
		{websocket.MessageText, []byte("second message")},
		{websocket.MessageBinary, []byte{0, 1, 2, 3, 255}},
		{websocket.MessageBinary, bytes.Repeat([]byte("0123456789abcdef"), 8192)}, // 128 KiB
		{websocket.MessageText, []byte("last")},
	}
	for i, m := range msgs {
		if err := conn.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("write message %d: %v", i, err)
		}
		typ, got, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read echo of message %d: %v", i, err)
		}
		if typ != m.typ || !bytes.Equal(got, m.data) {
			t.Errorf("echo %d = (%v, %d bytes), want (%v, %d bytes)", i, typ, len(got), m.typ, len(m.data))
		}
	}
	// Several messages in flight at once.
	for i := range 10 {
		if err := conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "burst-%d", i)); err != nil {
			t.Fatalf("write burst %d: %v", i, err)
		}
	}
	for i := range 10 {
		_, got, err := conn.Read(ctx)
		if want := fmt.Sprintf("burst-%d", i); err != nil || string(got) != want {
			t.Fatalf("burst echo %d = %q, %v; want %q", i, got, err, want)
		}
	}
	if err := conn.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Errorf("close handshake: %v", err)
	}
	recs := p.accessByID(t, "e2e-ws")
	if len(recs) != 1 || recs[0]["status"] != 101.0 || recs[0]["route"] != "all" {
		t.Errorf("access log for the WebSocket = %v, want one line with status 101 and route \"all\"", recs)
	}
}

// TestStreamingFlush checks responses without Content-Length (SSE and
// plain chunked) are flushed as bytes arrive, not when the upstream ends.
func TestStreamingFlush(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, contentType, first, second string
	}{
		{"server-sent events", "/sse", "text/event-stream", "data: first\n\n", "data: second\n\n"},
		{"chunked without length", "/chunked", "text/plain", "tick 1\n", "tick 2\n"},
	}
	up := newUpstream(t, "stream", func(w http.ResponseWriter, r *http.Request) {
		for _, tc := range tests {
			if r.URL.Path != tc.path {
				continue
			}
			w.Header().Set("Content-Type", tc.contentType)
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, tc.first)
			w.(http.Flusher).Flush()
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, tc.second)
			return
		}
		http.NotFound(w, r)
	})
	p := startProxy(t, oneRoute(up.addr, ""))
	c := newClient(t, 10*time.Second)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, err := c.Get(p.url(tc.path))
			if err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200", tc.path, resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			first := make([]byte, len(tc.first))
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatalf("reading first event: %v", err)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("first event arrived after %v, want within 1s (the upstream flushed it at once)", took)
			}
			if string(first) != tc.first {
				t.Errorf("first event = %q, want %q", first, tc.first)
			}
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != tc.second {
				t.Errorf("rest = %q, %v; want %q", rest, err, tc.second)
			}
			if took := time.Since(start); took < 1900*time.Millisecond {
				t.Errorf("stream ended after %v, want >= 2s (upstream sleeps 2s)", took)
			}
		})
	}
}

func TestTrailers(t *testing.T) {
	t.Parallel()
	respUp := newUpstream(t, "trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum, X-Count")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "part-1;")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part-2")
		w.Header().Set("X-Checksum", "abc123")
		w.Header().Set("X-Count", "2")
	})
	reqUp := newEcho(t, "reqtrailers")
	p := startProxy(t, fmt.Sprintf(`routes:
  - {id: resp, path: /resp-trailers, pool: resp}
  - {id: req, path: /req-trailers, pool: req}
pools:
  - {id: resp, endpoints: [{address: %s}]}
  - {id: req, endpoints: [{address: %s}]}
%s`, respUp.addr, reqUp.addr, fastShutdown))
	c := newClient(t, 10*time.Second)

	t.Run("response trailers reach the client", func(t *testing.T) {
		resp, err := c.Get(p.url("/resp-trailers"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "part-1;part-2" {
			t.Fatalf("body = %q, %v; want %q", b, err, "part-1;part-2")
		}
		for k, want := range map[string]string{"X-Checksum": "abc123", "X-Count": "2"} {
			if got := resp.Trailer.Get(k); got != want {
				t.Errorf("trailer %s = %q, want %q (trailers %v)", k, got, want, resp.Trailer)
			}
		}
	})
	t.Run("request trailers reach the upstream", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, p.url("/req-trailers"), chunkedReader{strings.NewReader("payload")})
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		req.Trailer = http.Header{"X-Req-Trailer": {"t-value"}}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST = %d, want 200 (%q)", resp.StatusCode, b)
		}
		rep := decodeEcho(t, b)
		if rep.Body != "payload" {
			t.Errorf("upstream body = %q, want %q", rep.Body, "payload")
		}
		if got := rep.Trailer.Get("X-Req-Trailer"); got != "t-value" {
			t.Errorf("upstream trailer X-Req-Trailer = %q, want %q (trailers %v)", got, "t-value", rep.Trailer)
		}
	})
}

// TestExpectContinue checks a client sending Expect: 100-continue gets
// exactly one 100 Continue and then the final response.
func TestExpectContinue(t *testing.T) {
	t.Parallel()
	up := newEcho(t, "continue")
	p := startProxy(t, fmt.Sprintf(`routes:
  - {id: limited, path: /limited, pool: main, policy: small}
  - {id: all, pool: main}
policies:
  - {id: small, body_size_limit: 1KB}
pools:
  - {id: main, endpoints: [{address: %s}]}
%s`, up.addr, fastShutdown))

	t.Run("body over the limit is refused without waiting for it", func(t *testing.T) {
		before := up.hits.Load()
		conn, err := net.Dial("tcp", p.data)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "POST /limited HTTP/1.1\r\nHost: c.test\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err == nil && resp.StatusCode == http.StatusContinue {
			resp, err = http.ReadResponse(br, nil) // a 100 first is allowed, the body is never sent
		}
		if err != nil {
			t.Fatalf("no final response without sending the body: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		checkProxyError(t, resp, b, http.StatusRequestEntityTooLarge, "request_too_large")
		if got := up.hits.Load() - before; got != 0 {
			t.Errorf("upstream contacted %d times, want 0", got)
		}
	})

	conn, err := net.Dial("tcp", p.data)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "POST /continue HTTP/1.1\r\nHost: c.test\r\nContent-Type: text/plain\r\n"+
		"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(conn, &raw))
	interim, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("waiting for 100 Continue: %v (got %q)", err, raw.Bytes())
	}
	if interim.StatusCode != http.StatusContinue {
		t.Fatalf("first response = %d, want 100 Continue", interim.StatusCode)
	}
	io.WriteString(conn, "hello")
	final, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading final response: %v (got %q)", err, raw.Bytes())
	}
	body, err := io.ReadAll(final.Body)
	if err != nil {
		t.Fatalf("reading final body: %v", err)
	}
	if final.StatusCode != http.StatusOK {
		t.Fatalf("final response = %d, want 200 (a second interim response is not allowed); raw %q", final.StatusCode, raw.Bytes())
	}
	if rep := decodeEcho(t, body); rep.Body != "hello" {
		t.Errorf("upstream body = %q, want %q", rep.Body, "hello")
	}
	if n := strings.Count(raw.String(), "100 Continue"); n != 1 {
		t.Errorf("client saw %d \"100 Continue\" lines, want exactly 1", n)
	}
}
