package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// h2cServer starts a test server that speaks only HTTP/2 with prior
// knowledge on plain TCP.
func h2cServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// endpointFor builds a one-endpoint pool for addr and returns its endpoint.
func endpointFor(t testing.TB, s *State, addr string, proto Protocol, tc TransportConfig) *Endpoint {
	t.Helper()
	return mustBuild(t, s, PoolConfig{ID: "p", Protocol: proto, Transport: tc, Endpoints: []EndpointConfig{{Address: addr}}}).Endpoints()[0]
}

func TestDialError(t *testing.T) {
	t.Parallel()
	// A port that was just free: connecting is refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, proto := range []Protocol{HTTP1, H2C} {
		s := newTestState(t, nil)
		e := endpointFor(t, s, addr, proto, TransportConfig{})
		_, err := get(t, e, "/")
		var de *DialError
		if !errors.As(err, &de) {
			t.Errorf("%v: RoundTrip to a closed port error = %v (%T), want *DialError", proto, err, err)
			continue
		}
		if de.Address != addr || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%v: DialError = {%q, %v}, want {%q, connection refused}", proto, de.Address, de.Err, addr)
		}
		if !strings.Contains(de.Error(), "dial "+addr) {
			t.Errorf("%v: DialError.Error() = %q, want it to name the address", proto, de.Error())
		}
	}
}

func TestH2CRoundTrip(t *testing.T) {
	t.Parallel()
	ts := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = io.WriteString(w, r.Proto)
		w.Header().Set("Grpc-Status", "0")
	}))
	s := newTestState(t, nil)
	e := endpointFor(t, s, ts.Listener.Addr().String(), H2C, TransportConfig{})
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, "http://"+e.Address()+"/svc/Method", strings.NewReader("payload"))
		resp, err := e.Transport().RoundTrip(req)
		if err != nil {
			t.Fatalf("h2c RoundTrip %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.ProtoMajor != 2 || string(body) != "HTTP/2.0" {
			t.Errorf("h2c RoundTrip %d = proto %s body %q err %v; want HTTP/2.0 both ways", i, resp.Proto, body, err)
		}
		if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
			t.Errorf("h2c trailer Grpc-Status = %q, want 0", got)
		}
	}
	if n := e.rt.openConns(); n != 1 {
		t.Errorf("h2c endpoint holds %d connections after 3 sequential requests, want 1 (multiplexed)", n)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	h1 := httptest.NewServer(slow)
	t.Cleanup(h1.Close)
	h2 := h2cServer(t, slow)
	for _, tt := range []struct {
		proto Protocol
		addr  string
	}{{HTTP1, h1.Listener.Addr().String()}, {H2C, h2.Listener.Addr().String()}} {
		s := newTestState(t, nil)
		e := endpointFor(t, s, tt.addr, tt.proto, TransportConfig{ResponseHeaderTimeout: 50 * time.Millisecond})
		start := time.Now()
		_, err := get(t, e, "/")
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%v: RoundTrip to a slow upstream error = %v, want a net.Error timeout", tt.proto, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%v: RoundTrip took %v, want about 50ms", tt.proto, d)
		}
	}
}

// TestTransportHygiene checks what reaches the upstream: no Accept-Encoding
// or User-Agent added, no environment proxy, and always the endpoint's own
// address; and the settings each protocol's transport gets.
func TestTransportHygiene(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host+" ae="+r.Header.Get("Accept-Encoding")+" ua="+r.Header.Get("User-Agent"))
	})
	h1 := httptest.NewServer(h)
	t.Cleanup(h1.Close)
	h2 := h2cServer(t, h)
	for _, tt := range []struct {
		proto Protocol
		addr  string
	}{{HTTP1, h1.Listener.Addr().String()}, {H2C, h2.Listener.Addr().String()}} {
		s := newTestState(t, nil)
		e := endpointFor(t, s, tt.addr, tt.proto, TransportConfig{})
		req, _ := http.NewRequest(http.MethodGet, "http://unrelated.invalid/", nil)
		resp, err := e.Transport().RoundTrip(req)
		if err != nil {
			t.Fatalf("%v: RoundTrip with an unrelated URL host: %v", tt.proto, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "unrelated.invalid ae= ua="
		if tt.proto == H2C {
			// net/http's HTTP/2 client adds its own User-Agent.
			want += "Go-http-client/2.0"
		}
		if got := string(body); got != want {
			t.Errorf("%v: upstream saw %q, want %q", tt.proto, got, want)
		}
		if e.rt.dialer.Timeout != DefaultDialTimeout || e.rt.dialer.KeepAlive != 30*time.Second {
			t.Errorf("%v: dialer = %+v, want 1s timeout and 30s keep-alive", tt.proto, e.rt.dialer)
		}
		if tt.proto == HTTP1 {
			c := e.rt.h1
			if e.rt.h2 != nil || c.Address != tt.addr || c.MaxIdle != DefaultMaxIdlePerEndpoint ||
				c.IdleTimeout != DefaultIdleTimeout || c.ResponseHeaderTimeout != 0 || c.ExpectContinueTimeout != time.Second ||
				c.ReadBufferSize != 8<<10 || c.WriteBufferSize != 4<<10 {
				t.Errorf("h1client.Transport settings = %+v, want the documented ones", c)
			}
			continue
		}
		base := e.rt.h2.base
		if e.rt.h1 != nil || base.Proxy != nil || !base.DisableCompression || base.MaxIdleConnsPerHost != DefaultMaxIdlePerEndpoint ||
			base.MaxIdleConns != 0 || base.IdleConnTimeout != DefaultIdleTimeout || base.ForceAttemptHTTP2 ||
			base.ReadBufferSize != 32<<10 || base.WriteBufferSize != 32<<10 || base.ExpectContinueTimeout != time.Second {
			t.Errorf("http.Transport settings = %+v, want the documented ones", base)
		}
	}
}

// TestUpgradeBody: a 101 response body stays an io.ReadWriteCloser through
// the endpoint transport, for WebSocket proxying, and its connection stays
// open (and out of the pool) until closed.
func TestUpgradeBody(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo " + line)
		_ = brw.Flush()
	}))
	t.Cleanup(ts.Close)
	s := newTestState(t, nil)
	e := endpointFor(t, s, ts.Listener.Addr().String(), HTTP1, TransportConfig{})
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.Address()+"/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := e.Transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		t.Fatalf("upgrade response = %d with body %T, want 101 with an io.ReadWriteCloser", resp.StatusCode, resp.Body)
	}
	if n, idle := e.rt.openConns(), e.rt.h1.IdleConns(); n != 1 || idle != 0 {
		t.Errorf("upgraded connection: open %d idle %d, want 1 and 0 until closed", n, idle)
	}
	if _, err := io.WriteString(rwc, "hi\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(rwc).ReadString('\n')
	if err != nil || got != "echo hi\n" {
		t.Errorf("upgraded echo = %q, %v; want %q", got, err, "echo hi\n")
	}
	rwc.Close()
	if n := e.rt.openConns(); n != 0 {
		t.Errorf("after Close open connections = %d, want 0", n)
	}
}

// TestRoundTripEnd: a round trip ends, for pooling (HTTP/1.1) or the
// in-flight count that drives draining (h2c), on body close, on EOF, on
// RoundTrip errors, and for bodiless responses.
func TestRoundTripEnd(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/empty" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = io.WriteString(w, "body")
	})
	h1 := httptest.NewServer(h)
	t.Cleanup(h1.Close)
	h2 := h2cServer(t, h)
	tests := []struct {
		name   string
		path   string
		use    func(*http.Response)
		h1Only bool
	}{
		{name: "closed unread", path: "/", use: func(r *http.Response) { r.Body.Close() }},
		{name: "read to EOF, not closed", path: "/", use: func(r *http.Response) { _, _ = io.ReadAll(r.Body) }},
		{name: "read to EOF, then closed twice", path: "/", use: func(r *http.Response) {
			_, _ = io.ReadAll(r.Body)
			r.Body.Close()
			r.Body.Close()
		}},
		{name: "no body, closed", path: "/empty", use: func(r *http.Response) { r.Body.Close() }},
		// net/http's HTTP/2 client returns an empty body of its own, not
		// http.NoBody, so only HTTP/1.1 can end this round trip unclosed.
		{name: "no body, not closed", path: "/empty", use: func(*http.Response) {}, h1Only: true},
	}
	for _, srv := range []struct {
		proto Protocol
		addr  string
	}{{HTTP1, h1.Listener.Addr().String()}, {H2C, h2.Listener.Addr().String()}} {
		s := newTestState(t, nil)
		e := endpointFor(t, s, srv.addr, srv.proto, TransportConfig{})
		// ended reports whether no round trip is in progress.
		ended := func() bool {
			if srv.proto == HTTP1 {
				return e.rt.h1.IdleConns() == 1 && e.rt.openConns() == 1
			}
			return e.rt.h2.active.Load() == 0
		}
		for _, tt := range tests {
			if tt.h1Only && srv.proto != HTTP1 {
				continue
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+e.Address()+tt.path, nil)
			resp, err := e.Transport().RoundTrip(req)
			if err != nil {
				t.Fatalf("%v %s: %v", srv.proto, tt.name, err)
			}
			tt.use(resp)
			if !ended() {
				t.Errorf("%v %s: round trip still in progress", srv.proto, tt.name)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.Address()+"/", nil)
		req.Header.Set("Bad\nHeader", "x") // rejected by the transport before sending
		if _, err := e.Transport().RoundTrip(req); err == nil {
			t.Fatalf("%v: RoundTrip with an invalid header succeeded, want an error", srv.proto)
		}
		if srv.proto == H2C && e.rt.h2.active.Load() != 0 {
			t.Errorf("h2c: after a failed RoundTrip active = %d, want 0", e.rt.h2.active.Load())
		}
	}
}
