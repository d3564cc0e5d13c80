package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// oneRoute is a config with one catch-all route to one endpoint, plus
// extra top-level YAML (fastShutdown unless extra has its own shutdown).
func oneRoute(addr, extra string) string {
	if !strings.Contains(extra, "shutdown:") {
		extra += fastShutdown
	}
	return fmt.Sprintf(`routes:
  - id: all
    pool: main
pools:
  - id: main
    endpoints:
      - address: %s
%s`, addr, extra)
}

func TestForwardGetPost(t *testing.T) {
	t.Parallel()
	up := newEcho(t, "fwd")
	p := startProxy(t, oneRoute(up.addr, ""))
	c := newClient(t, 10*time.Second)

	tests := []struct {
		name   string
		method string
		target string
		host   string
		body   string
	}{
		{"get root", http.MethodGet, "/", "example.test", ""},
		{"get with query", http.MethodGet, "/echo/a?x=1&y=two%20words&x=2&empty=", "example.test", ""},
		{"get host with port", http.MethodGet, "/p/q", "api.example.test:8443", ""},
		{"post form", http.MethodPost, "/submit?v=%2F", "example.test", "name=keel&n=1"},
		{"put json", http.MethodPut, "/items/7", "example.test", `{"a":[1,2,3]}`},
		{"delete", http.MethodDelete, "/items/7", "example.test", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp, b := do(t, c, tc.method, p.url(tc.target), tc.host, nil, body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s = %d, want 200 (body %q)", tc.method, tc.target, resp.StatusCode, b)
			}
			if got := resp.Header.Get("X-Upstream"); got != "fwd" {
				t.Errorf("X-Upstream = %q, want %q (upstream response headers must reach the client)", got, "fwd")
			}
			rep := decodeEcho(t, b)
			checks := []struct{ what, got, want string }{
				{"method", rep.Method, tc.method},
				{"request URI", rep.URI, tc.target},
				{"Host", rep.Host, tc.host},
				{"body", rep.Body, tc.body},
				{"X-Forwarded-For", strings.Join(rep.Header["X-Forwarded-For"], ","), "127.0.0.1"},
				{"X-Forwarded-Proto", rep.Header.Get("X-Forwarded-Proto"), "http"},
				{"X-Forwarded-Host", rep.Header.Get("X-Forwarded-Host"), tc.host},
				{"Via", rep.Header.Get("Via"), "1.1 keel"},
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("upstream saw %s = %q, want %q", ch.what, ch.got, ch.want)
				}
			}
		})
	}
}

func TestForwardLargePostEcho(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})
	p := startProxy(t, oneRoute(up.addr, ""))
	c := newClient(t, 30*time.Second)

	const size = 10 << 20
	wantN, wantSum := patternSum(size)
	req, err := http.NewRequest(http.MethodPost, p.url("/upload"), newPattern(size))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST 10MB: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST 10MB = %d, want 200", resp.StatusCode)
	}
	n, sum, err := sumReader(resp.Body)
	if err != nil {
		t.Fatalf("reading echoed body after %d bytes: %v", n, err)
	}
	if n != wantN || sum != wantSum {
		t.Errorf("echoed body = %d bytes crc %08x, want %d bytes crc %08x", n, sum, wantN, wantSum)
	}
}

// TestForwardHopByHopRequest sends hop-by-hop headers over raw TCP and
// checks none of them reaches the upstream.
func TestForwardHopByHopRequest(t *testing.T) {
	t.Parallel()
	up := newEcho(t, "hop")
	p := startProxy(t, oneRoute(up.addr, ""))

	res := rawRoundTrip(t, p.data, "GET /hop HTTP/1.1\r\n"+
		"Host: hop.test\r\n"+
		"Connection: keep-alive, X-Client-Hop\r\n"+
		"X-Client-Hop: must-not-pass\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"TE: gzip\r\n"+
		"Trailer: X-Never\r\n"+
		"Upgrade: foo/1\r\n"+
		"Proxy-Authorization: Basic c2VjcmV0\r\n"+
		"X-End-To-End: kept\r\n"+
		"\r\n")
	if res.resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /hop = %d, want 200 (body %q)", res.resp.StatusCode, res.body)
	}
	rep := decodeEcho(t, res.body)
	for _, h := range []string{"X-Client-Hop", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Proxy-Authorization"} {
		if v, ok := rep.Header[h]; ok {
			t.Errorf("upstream got hop-by-hop header %s: %q, want it removed", h, v)
		}
	}
	if v := strings.ToLower(strings.Join(rep.Header["Connection"], ",")); strings.Contains(v, "x-client-hop") {
		t.Errorf("upstream got Connection %q, want no client Connection tokens", v)
	}
	if got := rep.Header.Get("X-End-To-End"); got != "kept" {
		t.Errorf("upstream X-End-To-End = %q, want %q", got, "kept")
	}
}

// TestForwardHopByHopResponse has the upstream send hop-by-hop headers
// (and one it names in Connection) and checks the client sees none.
func TestForwardHopByHopResponse(t *testing.T) {
	t.Parallel()
	up := newRawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
			"Content-Type: text/plain\r\n"+
			"Content-Length: 2\r\n"+
			"Connection: X-Foo\r\n"+
			"X-Foo: secret\r\n"+
			"Keep-Alive: timeout=5, max=100\r\n"+
			"Proxy-Authenticate: Basic realm=\"up\"\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Upgrade: foo/1\r\n"+
			"X-Kept: yes\r\n"+
			"\r\nok")
		// Keep the connection until the proxy is done with it.
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		br.ReadByte()
	})
	p := startProxy(t, oneRoute(up.addr, ""))

	res := rawRoundTrip(t, p.data, "GET /resp HTTP/1.1\r\nHost: hop.test\r\n\r\n")
	if res.resp.StatusCode != http.StatusOK || string(res.body) != "ok" {
		t.Fatalf("GET /resp = %d %q, want 200 %q", res.resp.StatusCode, res.body, "ok")
	}
	h := res.resp.Header
	for _, name := range []string{"X-Foo", "Proxy-Authenticate", "Proxy-Connection", "Upgrade"} {
		if v, ok := h[name]; ok {
			t.Errorf("client got hop-by-hop header %s: %q, want it removed", name, v)
		}
	}
	if v := h.Get("Keep-Alive"); v == "timeout=5, max=100" {
		t.Errorf("client got the upstream's Keep-Alive %q, want it removed", v)
	}
	if v := strings.ToLower(h.Get("Connection")); strings.Contains(v, "x-foo") {
		t.Errorf("client got Connection %q, want the upstream's tokens removed", v)
	}
	if got := h.Get("X-Kept"); got != "yes" {
		t.Errorf("X-Kept = %q, want %q", got, "yes")
	}
}

func TestForwardXForwardedFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		server       string
		wantXFF      string
		wantClientIP string
	}{
		{"untrusted peer replaces", "", "127.0.0.1", "127.0.0.1"},
		{"trusted peer appends", "server: {trusted_proxies: [127.0.0.1/32]}\n", "203.0.113.7, 127.0.0.1", "203.0.113.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newEcho(t, "xff")
			p := startProxy(t, oneRoute(up.addr, tc.server))
			c := newClient(t, 10*time.Second)
			hdr := http.Header{
				"X-Forwarded-For":   {"203.0.113.7"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host":  {"spoofed.test"},
				"X-Request-Id":      {"xff-" + strings.ReplaceAll(tc.name, " ", "-")},
			}
			resp, b := do(t, c, http.MethodGet, p.url("/xff"), "real.test", hdr, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /xff = %d, want 200", resp.StatusCode)
			}
			rep := decodeEcho(t, b)
			if got := strings.Join(rep.Header["X-Forwarded-For"], ", "); got != tc.wantXFF {
				t.Errorf("upstream X-Forwarded-For = %q, want %q", got, tc.wantXFF)
			}
			if tc.server == "" {
				if got := rep.Header.Get("X-Forwarded-Proto"); got != "http" {
					t.Errorf("upstream X-Forwarded-Proto = %q, want %q (untrusted value replaced)", got, "http")
				}
				if got := rep.Header.Get("X-Forwarded-Host"); got != "real.test" {
					t.Errorf("upstream X-Forwarded-Host = %q, want %q (untrusted value replaced)", got, "real.test")
				}
			}
			recs := p.accessByID(t, hdr.Get("X-Request-Id"))
			if len(recs) != 1 {
				t.Fatalf("access-log lines for the request = %d, want 1", len(recs))
			}
			if got := recs[0]["client_ip"]; got != tc.wantClientIP {
				t.Errorf("access log client_ip = %v, want %q", got, tc.wantClientIP)
			}
		})
	}
}
