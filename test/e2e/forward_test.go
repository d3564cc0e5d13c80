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

// TestForwardFraming sends several requests on one client connection
// whose responses have unusual framing (HEAD, 204, 304, chunked, close
// delimited) and checks each is framed right and the connection stays in
// sync.
func TestForwardFraming(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "framing", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "1234")
			if r.Method != http.MethodHead {
				w.Write(make([]byte, 1234))
			}
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/chunked":
			for i := range 3 {
				fmt.Fprintf(w, "chunk-%d;", i)
				w.(http.Flusher).Flush()
			}
		default:
			http.NotFound(w, r)
		}
	})
	eof := newRawServer(t, func(c net.Conn) {
		if _, err := readRequestHead(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited body")
	})
	p := startProxy(t, fmt.Sprintf(`routes:
  - {id: eof, path: /eof, pool: eof}
  - {id: postonly, path: /postonly, methods: [POST], pool: framing}
  - {id: rest, path_regex: '^/(head|204|304|chunked)$', pool: framing}
pools:
  - {id: eof, endpoints: [{address: %s}]}
  - {id: framing, endpoints: [{address: %s}]}
%s`, eof.addr, up.addr, fastShutdown))

	conn, err := net.Dial("tcp", p.data)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	tests := []struct {
		method, path string
		wantStatus   int
		wantLen      int64 // Content-Length header, -1 for none
		wantBody     string
		wantBodyLen  int
	}{
		{http.MethodHead, "/head", 200, 1234, "", 0},
		{http.MethodHead, "/postonly", 405, -1, "", 0}, // a proxy error without a body
		{http.MethodGet, "/204", 204, -1, "", 0},
		{http.MethodGet, "/304", 304, -1, "", 0},
		{http.MethodGet, "/chunked", 200, -1, "chunk-0;chunk-1;chunk-2;", 24},
		{http.MethodGet, "/head", 200, 1234, "", 1234},
		{http.MethodGet, "/eof", 200, -1, "close-delimited body", 20},
	}
	t.Run("HTTP/1.0 client gets no chunked encoding", func(t *testing.T) {
		res := rawRoundTrip(t, p.data, "GET /chunked HTTP/1.0\r\n\r\n")
		if res.resp.StatusCode != http.StatusOK || string(res.body) != "chunk-0;chunk-1;chunk-2;" || res.bodyEr != nil {
			t.Errorf("HTTP/1.0 GET /chunked = %d %q (%v), want 200 %q", res.resp.StatusCode, res.body, res.bodyEr, "chunk-0;chunk-1;chunk-2;")
		}
		if te := res.resp.TransferEncoding; len(te) > 0 {
			t.Errorf("HTTP/1.0 response has Transfer-Encoding %v, want none (HTTP/1.0 has no chunked coding)", te)
		}
		if !res.closed && res.resp.ContentLength < 0 {
			t.Errorf("HTTP/1.0 response without Content-Length left the connection open, want it closed to end the body")
		}
	})
	for i, tc := range tests {
		req, _ := http.NewRequest(tc.method, "http://framing.test"+tc.path, nil)
		if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: framing.test\r\n\r\n", tc.method, tc.path); err != nil {
			t.Fatalf("request %d (%s %s): write: %v", i, tc.method, tc.path, err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("request %d (%s %s) on the same connection: %v", i, tc.method, tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d (%s %s): body: %v", i, tc.method, tc.path, err)
		}
		if resp.StatusCode != tc.wantStatus {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.wantStatus)
		}
		if tc.wantLen >= 0 && resp.ContentLength != tc.wantLen {
			t.Errorf("%s %s Content-Length = %d, want %d", tc.method, tc.path, resp.ContentLength, tc.wantLen)
		}
		if len(body) != tc.wantBodyLen || (tc.wantBody != "" && string(body) != tc.wantBody) {
			t.Errorf("%s %s body = %d bytes %.40q, want %d bytes %q", tc.method, tc.path, len(body), body, tc.wantBodyLen, tc.wantBody)
		}
	}
}

// TestForwardNoH2CUpgrade checks an "Upgrade: h2c" request is never
// forwarded as an upgrade (SPEC section 5) but answered as plain HTTP/1.1.
func TestForwardNoH2CUpgrade(t *testing.T) {
	t.Parallel()
	up := newEcho(t, "h2c-smuggle")
	p := startProxy(t, oneRoute(up.addr, ""))
	res := rawRoundTrip(t, p.data, "GET /internal HTTP/1.1\r\nHost: smuggle.test\r\n"+
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if res.resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200 (a plain HTTP/1.1 answer, never 101)", res.resp.StatusCode)
	}
	rep := decodeEcho(t, res.body)
	for _, h := range []string{"Upgrade", "Http2-Settings"} {
		if v, ok := rep.Header[h]; ok {
			t.Errorf("upstream got %s: %q, want it removed", h, v)
		}
	}
	if v := strings.ToLower(strings.Join(rep.Header["Connection"], ",")); strings.Contains(v, "upgrade") {
		t.Errorf("upstream got Connection %q, want no upgrade", v)
	}
}

// TestForwardUpstreamClosesAfterResponse has an upstream that closes every
// connection after one response without saying so: the proxy must not
// reuse a dead pooled connection for the next request, POSTs included.
func TestForwardUpstreamClosesAfterResponse(t *testing.T) {
	t.Parallel()
	up := newRawServer(t, func(c net.Conn) {
		req, err := readRequestHead(bufio.NewReader(c))
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(req.Method), req.Method)
	})
	p := startProxy(t, oneRoute(up.addr, ""))
	c := newClient(t, 10*time.Second)
	for i := range 10 {
		method := http.MethodGet
		if i%2 == 1 {
			method = http.MethodPost
		}
		resp, b := do(t, c, method, p.url("/once"), "", nil, strings.NewReader("x"))
		if resp.StatusCode != http.StatusOK || string(b) != method {
			t.Errorf("request %d (%s) = %d %q (X-Proxy-Error %q), want 200 %q", i, method, resp.StatusCode, b,
				resp.Header.Get("X-Proxy-Error"), method)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestForwardPipelining writes three requests at once on one connection
// and expects three responses in order.
func TestForwardPipelining(t *testing.T) {
	t.Parallel()
	up := newEcho(t, "pipe")
	p := startProxy(t, oneRoute(up.addr, ""))
	conn, err := net.Dial("tcp", p.data)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	paths := []string{"/one", "/two?x=2", "/three"}
	var reqs strings.Builder
	for i, path := range paths {
		fmt.Fprintf(&reqs, "POST %s HTTP/1.1\r\nHost: pipe.test\r\nContent-Length: 1\r\n\r\n%d", path, i)
	}
	if _, err := io.WriteString(conn, reqs.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i, path := range paths {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("response %d = %d, want 200", i, resp.StatusCode)
		}
		rep := decodeEcho(t, b)
		if rep.URI != path || rep.Body != fmt.Sprint(i) {
			t.Errorf("response %d answers %s body %q, want %s body %q", i, rep.URI, rep.Body, path, fmt.Sprint(i))
		}
	}
}

// TestClientCancelPropagates checks a client that goes away cancels the
// upstream request, both while waiting for the response and mid-upload.
func TestClientCancelPropagates(t *testing.T) {
	t.Parallel()
	type event struct {
		path string
		err  error
	}
	events := make(chan event, 4)
	started := make(chan string, 4)
	up := newUpstream(t, "cancel", func(w http.ResponseWriter, r *http.Request) {
		started <- r.URL.Path
		switch r.URL.Path {
		case "/wait":
			select {
			case <-r.Context().Done():
				events <- event{r.URL.Path, r.Context().Err()}
			case <-time.After(10 * time.Second):
				events <- event{r.URL.Path, nil}
			}
		case "/upload":
			_, err := io.Copy(io.Discard, r.Body)
			events <- event{r.URL.Path, err}
		}
	})
	p := startProxy(t, oneRoute(up.addr, ""))
	tests := []struct {
		path, req string
	}{
		{"/wait", "GET /wait HTTP/1.1\r\nHost: c.test\r\n\r\n"},
		{"/upload", "POST /upload HTTP/1.1\r\nHost: c.test\r\nContent-Length: 1048576\r\n\r\n" + strings.Repeat("u", 10000)},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			conn, err := net.Dial("tcp", p.data)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, tc.req)
			select {
			case got := <-started:
				if got != tc.path {
					t.Fatalf("upstream started %s, want %s", got, tc.path)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("upstream never got the request")
			}
			time.Sleep(100 * time.Millisecond)
			conn.Close()
			select {
			case ev := <-events:
				if ev.err == nil {
					t.Errorf("upstream %s finished normally, want it cancelled", ev.path)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("upstream %s still running 2s after the client went away, want it cancelled", tc.path)
			}
		})
	}
}
