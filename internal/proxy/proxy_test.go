package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/compile"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/upstream"
)

// newProxy compiles cfgYAML (with @UP@ replaced by upstreamAddr) and serves
// it through a Handler on an httptest server. It returns the proxy's URL.
func newProxy(t testing.TB, cfgYAML, upstreamAddr string) string {
	t.Helper()
	cfg, err := config.Parse([]byte(strings.ReplaceAll(cfgYAML, "@UP@", upstreamAddr)), config.FormatYAML)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	st := upstream.NewState(nil)
	t.Cleanup(st.Close)
	snap, err := compile.Snapshot(cfg, compile.Deps{State: st})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	var h snapshot.Holder
	h.Swap(snap)
	front := httptest.NewServer(proxy.NewHandler(&h, proxy.Options{}))
	t.Cleanup(front.Close)
	return front.URL
}

const basicConfig = `
routes:
  - {id: api, path_prefix: /api, methods: [GET, POST], pool: p, policy: pol}
  - {id: rw, path_prefix: /old, pool: p, rewrite: {path_prefix: /new}}
  - {id: slow, path: /slow, pool: p, policy: short}
  - {id: tls, path: /secure, pool: p, policy: tls}
policies:
  - {id: pol, body_size_limit: 16}
  - {id: short, timeout: 50ms}
  - {id: tls, require_tls: true}
pools:
  - id: p
    endpoints: [{address: "@UP@"}]
`

func upstreamServer(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

func TestProxyErrors(t *testing.T) {
	var hits int
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	})
	url := newProxy(t, basicConfig, up)
	tests := []struct {
		desc     string
		method   string
		path     string
		body     io.Reader
		chunked  bool
		status   int
		category string
		allow    string
	}{
		{desc: "no route", method: "GET", path: "/nothing", status: 404, category: "no_route"},
		{desc: "method not allowed", method: "DELETE", path: "/api/x", status: 405, category: "method_not_allowed", allow: "GET, POST"},
		{desc: "body too large by length", method: "POST", path: "/api/x", body: strings.NewReader(strings.Repeat("a", 17)), status: 413, category: "request_too_large"},
		{desc: "body too large chunked", method: "POST", path: "/api/x", body: strings.NewReader(strings.Repeat("a", 100)), chunked: true, status: 413, category: "request_too_large"},
		{desc: "body within limit", method: "POST", path: "/api/x", body: strings.NewReader("small"), status: 200},
		{desc: "route timeout", method: "GET", path: "/slow", status: 504, category: "request_timeout"},
		{desc: "require tls", method: "GET", path: "/secure", status: 403, category: "tls_required"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, url+tt.path, tt.body)
			if tt.chunked {
				req.ContentLength = -1
				req.Body = io.NopCloser(tt.body)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.status, b)
			}
			if got := resp.Header.Get("X-Proxy-Error"); got != tt.category {
				t.Errorf("X-Proxy-Error = %q, want %q", got, tt.category)
			}
			if tt.allow != "" && resp.Header.Get("Allow") != tt.allow {
				t.Errorf("Allow = %q, want %q", resp.Header.Get("Allow"), tt.allow)
			}
			if tt.category != "" {
				var body struct{ Error, Message, RequestID string }
				if err := json.Unmarshal(b, &body); err != nil || body.Error != tt.category {
					t.Errorf("body = %s (%v), want error %q", b, err, tt.category)
				}
				if resp.Header.Get("X-Request-Id") == "" {
					t.Errorf("no X-Request-Id on an error response")
				}
			}
		})
	}
}

func TestProxyConnectFailed(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	url := newProxy(t, basicConfig, addr)
	resp, err := http.Get(url + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 || resp.Header.Get("X-Proxy-Error") != "upstream_connect_failed" {
		t.Errorf("got %d %q, want 502 upstream_connect_failed", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
}

func TestProxyUpstreamReset(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	}()
	url := newProxy(t, basicConfig, ln.Addr().String())
	resp, err := http.Get(url + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 || resp.Header.Get("X-Proxy-Error") != "upstream_reset" {
		t.Errorf("got %d %q, want 502 upstream_reset", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
}

func TestProxyForwardsCleanly(t *testing.T) {
	var got *http.Request
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Trailer", "X-Checksum")
		w.Write([]byte("hello"))
		w.Header().Set("X-Checksum", "abc")
	})
	url := newProxy(t, basicConfig, up)
	req, _ := http.NewRequest("GET", url+"/old/path?q=1&r=%20", nil)
	req.Header.Set("Connection", "X-Client-Hop")
	req.Header.Set("X-Client-Hop", "secret")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Host = "example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Errorf("body = %q", body)
	}
	if resp.Header.Get("X-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers leaked: %v", resp.Header)
	}
	if resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("trailer = %v, want X-Checksum: abc", resp.Trailer)
	}
	if got.URL.Path != "/new/path" || got.URL.RawQuery != "q=1&r=%20" {
		t.Errorf("upstream URL = %s?%s, want /new/path?q=1&r=%%20", got.URL.Path, got.URL.RawQuery)
	}
	if got.Host != "example.com" {
		t.Errorf("upstream Host = %q, want example.com", got.Host)
	}
	if got.Header.Get("X-Client-Hop") != "" {
		t.Errorf("Connection-named request header leaked upstream")
	}
	if xff := got.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want 127.0.0.1 (untrusted peer replaces)", xff)
	}
	if got.Header.Get("Via") != "1.1 keel" || got.Header.Get("X-Forwarded-Host") != "example.com" {
		t.Errorf("Via/X-Forwarded-Host = %q/%q", got.Header.Get("Via"), got.Header.Get("X-Forwarded-Host"))
	}
}

func TestProxyStreamsEventStream(t *testing.T) {
	release := make(chan struct{})
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: one\n\n"))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte("data: two\n\n"))
	})
	defer close(release)
	url := newProxy(t, basicConfig, up)
	resp, err := http.Get(url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event = %q, %v; want it before the upstream finishes", line, err)
	}
}

func TestProxyWebSocketUpgrade(t *testing.T) {
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "no upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo:" + line)
		brw.Flush()
	})
	url := newProxy(t, basicConfig, up)
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /api/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nping\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "echo:ping\n" {
		t.Errorf("tunnel read = %q, %v; want echo:ping", line, err)
	}
}

func TestProxyRewriteForms(t *testing.T) {
	var got string
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { got = r.URL.RequestURI() })
	url := newProxy(t, `
routes:
  - {id: exact, path: /login, pool: p, rewrite: {path_prefix: /auth/login}}
  - {id: prefix, path_prefix: /api/, pool: p, rewrite: {path_prefix: /v2}}
  - {id: all, pool: p, rewrite: {path_prefix: /site/}}
pools:
  - {id: p, endpoints: [{address: "@UP@"}]}
`, up)
	tests := []struct{ in, want string }{
		{"/login?x=1", "/auth/login?x=1"},
		{"/api/users", "/v2/users"},
		{"/api", "/v2"},
		{"/index.html", "/site/index.html"},
		{"/", "/site/"},
	}
	for _, tt := range tests {
		resp, err := http.Get(url + tt.in)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got != tt.want {
			t.Errorf("GET %s reached upstream as %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestProxyTimeoutMidBodyAborts(t *testing.T) {
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	url := newProxy(t, basicConfig, up)
	resp, err := http.Get(url + "/slow")
	if err != nil {
		// The status line was still in the server's buffer when the
		// stream was aborted: the client sees the connection close, which
		// is as honest as a cut body.
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d, want the upstream's 200 (headers went out before the timeout)", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("body read %q completed without error, want the stream aborted at the timeout", b)
	}
}
