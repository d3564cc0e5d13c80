package h3

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"

	"github.com/keelproxy/keel/internal/testpki"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// certSource is the proxy's TLS wiring in small: a listener config that
// holds nothing but GetConfigForClient, which returns the current
// per-client config. The per-client config offers the TCP listener's
// ALPN protocols, as the proxy's does, so every test also checks that
// "h3" is negotiated anyway.
type certSource struct {
	cur   atomic.Pointer[tls.Config]
	calls atomic.Int64 // handshakes that asked for a config
}

func (cs *certSource) set(cert tls.Certificate, auth tls.ClientAuthType, cas *x509.CertPool) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
		ClientAuth:   auth,
		ClientCAs:    cas,
	}
	cs.cur.Store(c)
	return c
}

func (cs *certSource) listenerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cs.calls.Add(1)
			return cs.cur.Load(), nil
		},
	}
}

// testServer is a Server serving on a loopback UDP socket.
type testServer struct {
	*Server
	url     string
	serveCh chan error // Serve's result
}

// startServer serves s and registers a cleanup that closes it and checks
// that Serve returned ErrServerClosed.
func startServer(t *testing.T, s *Server) *testServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, url: "https://" + pc.LocalAddr().String(), serveCh: make(chan error, 1)}
	go func() { ts.serveCh <- s.Serve(pc) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		if err := ts.serveResult(t); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want %v", err, ErrServerClosed)
		}
	})
	return ts
}

// serveResult waits for Serve to return; Serve's result is read once.
func (ts *testServer) serveResult(t *testing.T) error {
	t.Helper()
	select {
	case err := <-ts.serveCh:
		ts.serveCh <- err // for a later caller, such as the cleanup
		return err
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// testClient is an HTTP/3 client with its own UDP socket per connection,
// so that tests know the address the server sees.
type testClient struct {
	*http.Client
	tr *http3.Transport

	mu    sync.Mutex
	socks []*net.UDPConn
}

func newClient(t *testing.T, roots *x509.CertPool, cert *tls.Certificate) *testClient {
	t.Helper()
	tc := &testClient{}
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if cert != nil {
		tlsConf.Certificates = []tls.Certificate{*cert}
	}
	tc.tr = &http3.Transport{
		TLSClientConfig: tlsConf,
		Dial: func(ctx context.Context, addr string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			raddr, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				return nil, err
			}
			sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return nil, err
			}
			tc.mu.Lock()
			tc.socks = append(tc.socks, sock)
			tc.mu.Unlock()
			return quic.Dial(ctx, sock, raddr, tlsCfg, cfg)
		},
	}
	tc.Client = &http.Client{Transport: tc.tr, Timeout: 2 * time.Second}
	t.Cleanup(func() {
		tc.tr.Close()
		tc.mu.Lock()
		defer tc.mu.Unlock()
		for _, s := range tc.socks {
			s.Close()
		}
	})
	return tc
}

// localAddr returns the address of the client's latest connection.
func (tc *testClient) localAddr() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.socks) == 0 {
		return ""
	}
	return tc.socks[len(tc.socks)-1].LocalAddr().String()
}

// fixture is a server with one certificate for localhost.
type fixture struct {
	pki   *testpki.CA
	certs *certSource
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{pki: testpki.New(t, "test CA"), certs: &certSource{}}
	f.certs.set(f.pki.Issue(t, "server", testpki.DNS("localhost")).TLS, tls.NoClientCert, nil)
	return f
}

func (f *fixture) start(t *testing.T, h http.Handler) *testServer {
	t.Helper()
	return startServer(t, &Server{Handler: h, TLSConfig: f.certs.listenerConfig()})
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

func TestServeRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	type seen struct {
		proto, remote, alpn string
		version             uint16
	}
	seenCh := make(chan seen, 1)
	ts := f.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{proto: r.Proto, remote: r.RemoteAddr}
		if r.TLS != nil {
			s.alpn, s.version = r.TLS.NegotiatedProtocol, r.TLS.Version
		}
		seenCh <- s
		if r.Method == http.MethodPost {
			_, _ = io.Copy(w, r.Body)
			return
		}
		_, _ = io.WriteString(w, "hello "+r.URL.Path)
	}))
	client := newClient(t, f.pki.Pool, nil)
	big := strings.Repeat("0123456789abcdef", 16<<10) // 256KB: several flow-control updates

	for _, tc := range []struct {
		desc, method, body, want string
	}{
		{desc: "GET", method: http.MethodGet, want: "hello /get"},
		{desc: "POST echo", method: http.MethodPost, body: "ping", want: "ping"},
		{desc: "POST large echo", method: http.MethodPost, body: big, want: big},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, ts.url+"/get", body)
			if err != nil {
				t.Fatal(err)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.method, err)
			}
			if got := readBody(t, res); got != tc.want {
				t.Errorf("body = %.40q (%d bytes), want %.40q (%d bytes)", got, len(got), tc.want, len(tc.want))
			}
			if res.Proto != "HTTP/3.0" || res.StatusCode != http.StatusOK {
				t.Errorf("response %s %d, want HTTP/3.0 200", res.Proto, res.StatusCode)
			}
			s := <-seenCh
			want := seen{proto: "HTTP/3.0", remote: client.localAddr(), alpn: "h3", version: tls.VersionTLS13}
			if s != want {
				t.Errorf("handler saw %+v, want %+v", s, want)
			}
		})
	}
	// The caller's per-client config still offers what the TCP listener
	// offers: the h3 wiring works on clones.
	if got := f.certs.cur.Load().NextProtos; len(got) != 2 || got[0] != "h2" {
		t.Errorf("caller's NextProtos = %q, want unchanged [h2 http/1.1]", got)
	}
}

func TestCertificateSwap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.certs.set(f.pki.Issue(t, "cert-a", testpki.DNS("localhost")).TLS, tls.NoClientCert, nil)
	ts := f.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	get := func(c *testClient) string {
		t.Helper()
		res, err := c.Get(ts.url)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		readBody(t, res)
		return res.TLS.PeerCertificates[0].Subject.CommonName
	}

	old := newClient(t, f.pki.Pool, nil)
	if got := get(old); got != "cert-a" {
		t.Fatalf("first connection got %q, want cert-a", got)
	}
	f.certs.set(f.pki.Issue(t, "cert-b", testpki.DNS("localhost")).TLS, tls.NoClientCert, nil)
	if got := get(newClient(t, f.pki.Pool, nil)); got != "cert-b" {
		t.Errorf("new connection after swap got %q, want cert-b", got)
	}
	// Same connection (it still shows the certificate it negotiated).
	if got := get(old); got != "cert-a" {
		t.Errorf("existing connection after swap got %q, want cert-a", got)
	}
	if got := f.certs.calls.Load(); got != 2 {
		t.Errorf("GetConfigForClient called %d times, want 2 (one per handshake)", got)
	}
}

func TestClientCertificates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	serverCert := f.pki.Issue(t, "server", testpki.DNS("localhost")).TLS
	clientCert := f.pki.Issue(t, "client-1", testpki.Client()).TLS
	ts := f.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := "-"
		if len(r.TLS.VerifiedChains) > 0 {
			cn = r.TLS.VerifiedChains[0][0].Subject.CommonName
		}
		fmt.Fprintf(w, "chains=%d peer=%d cn=%s", len(r.TLS.VerifiedChains), len(r.TLS.PeerCertificates), cn)
	}))

	for _, tc := range []struct {
		desc    string
		auth    tls.ClientAuthType
		cert    *tls.Certificate
		want    string
		wantErr bool
	}{
		{desc: "if given, with cert", auth: tls.VerifyClientCertIfGiven, cert: &clientCert, want: "chains=1 peer=1 cn=client-1"},
		{desc: "if given, without cert", auth: tls.VerifyClientCertIfGiven, want: "chains=0 peer=0 cn=-"},
		{desc: "required, without cert", auth: tls.RequireAndVerifyClientCert, wantErr: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			// Sequential subtests: each sets the policy its handshake sees.
			f.certs.set(serverCert, tc.auth, f.pki.Pool)
			res, err := newClient(t, f.pki.Pool, tc.cert).Get(ts.url)
			if tc.wantErr {
				if err == nil {
					readBody(t, res)
					t.Fatal("GET without a required client certificate succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			if got := readBody(t, res); got != tc.want {
				t.Errorf("handler saw %q, want %q", got, tc.want)
			}
		})
	}
}

func TestShutdownWaitsForInFlightRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	started, release := make(chan struct{}), make(chan struct{})
	ts := f.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "finished")
	}))
	client := newClient(t, f.pki.Pool, nil)

	type result struct {
		body string
		err  error
	}
	resCh := make(chan result, 1)
	go func() {
		res, err := client.Get(ts.url)
		if err != nil {
			resCh <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		resCh <- result{string(b), err}
	}()
	<-started

	shutCh := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		shutCh <- ts.Shutdown(ctx)
	}()
	select {
	case err := <-shutCh:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)

	if r := <-resCh; r.err != nil || r.body != "finished" {
		t.Errorf("in-flight request = %q, %v; want %q, nil", r.body, r.err, "finished")
	}
	if err := <-shutCh; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := ts.serveResult(t); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want %v", err, ErrServerClosed)
	}
	// Nothing answers on the closed socket: give up early.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url, nil)
	if res, err := newClient(t, f.pki.Pool, nil).Do(req); err == nil {
		readBody(t, res)
		t.Error("GET after Shutdown succeeded")
	}
}

// dialRaw opens a QUIC connection that negotiates h3, waits until the
// server serves it, and then does nothing: no control stream, no
// requests, and it ignores GOAWAY.
func dialRaw(t *testing.T, f *fixture, ts *testServer) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, strings.TrimPrefix(ts.url, "https://"),
		&tls.Config{RootCAs: f.pki.Pool, ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = qc.CloseWithError(0, "") })
	// The client's handshake ends before the server's; the server's
	// control stream shows that it has accepted the connection.
	str, err := qc.AcceptUniStream(ctx)
	if err != nil {
		t.Fatalf("waiting for the server's control stream: %v", err)
	}
	if _, err := str.Read(make([]byte, 1)); err != nil {
		t.Fatalf("reading the server's control stream: %v", err)
	}
	return qc
}

// closedByServer reports whether qc was closed by the server with
// H3_NO_ERROR.
func closedByServer(qc *quic.Conn) error {
	var appErr *quic.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &appErr) || !appErr.Remote ||
		appErr.ErrorCode != quic.ApplicationErrorCode(http3.ErrCodeNoError) {
		return fmt.Errorf("connection closed by %v, want the server's H3_NO_ERROR", err)
	}
	return nil
}

func TestShutdownClosesIdleConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}),
		TLSConfig:   f.certs.listenerConfig(),
		goAwayGrace: 100 * time.Millisecond,
	}
	ts := startServer(t, s)
	// A well-behaved client, idle after one request: it closes the
	// connection itself when GOAWAY arrives.
	res, err := newClient(t, f.pki.Pool, nil).Get(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, res)
	// A client that ignores GOAWAY: the server must close it.
	raw := dialRaw(t, f, ts)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v, want nil (took %v)", err, time.Since(start))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Shutdown took %v, want about the 100ms grace", took)
	}
	select {
	case <-raw.Context().Done():
		if err := closedByServer(raw); err != nil {
			t.Error(err)
		}
	case <-time.After(time.Second):
		t.Error("idle raw connection still open after Shutdown")
	}
}

func TestShutdownDeadlineClosesConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	started := make(chan struct{})
	ts := f.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // a handler that only stops when told
	}))
	errCh := make(chan error, 1)
	go func() {
		_, err := newClient(t, f.pki.Pool, nil).Get(ts.url)
		errCh <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want %v", err, context.DeadlineExceeded)
	}
	if err := <-errCh; err == nil {
		t.Error("request cut by the Shutdown deadline succeeded")
	}
}

func TestCloseStopsServe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	started := make(chan struct{})
	handlerCtxErr := make(chan error, 1)
	ts := f.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		handlerCtxErr <- r.Context().Err()
	}))
	errCh := make(chan error, 1)
	go func() {
		_, err := newClient(t, f.pki.Pool, nil).Get(ts.url)
		errCh <- err
	}()
	<-started
	if err := ts.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := ts.serveResult(t); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want %v", err, ErrServerClosed)
	}
	if err := <-handlerCtxErr; err == nil {
		t.Error("handler context not cancelled by Close")
	}
	if err := <-errCh; err == nil {
		t.Error("request aborted by Close succeeded")
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const idle = 150 * time.Millisecond
	ts := startServer(t, &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(3 * idle):
				_, _ = io.WriteString(w, "slow")
			case <-r.Context().Done():
			}
		}),
		TLSConfig:   f.certs.listenerConfig(),
		IdleTimeout: idle,
	})
	waitClosed := func(t *testing.T, qc *quic.Conn) {
		t.Helper()
		select {
		case <-qc.Context().Done():
			// By the server's idle timer, not QUIC's (which the
			// keep-alive PINGs hold off).
			if err := closedByServer(qc); err != nil {
				t.Error(err)
			}
		case <-time.After(time.Second):
			t.Errorf("connection still open after 1s with IdleTimeout %v", idle)
		}
	}

	t.Run("no requests", func(t *testing.T) {
		t.Parallel()
		waitClosed(t, dialRaw(t, f, ts))
	})
	t.Run("request without headers", func(t *testing.T) {
		t.Parallel()
		qc := dialRaw(t, f, ts)
		str, err := qc.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		// The start of a HEADERS frame (type 0x01, length 16) and
		// nothing more: the server waits for the rest.
		if _, err := str.Write([]byte{0x01, 0x10}); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, qc)
	})
	t.Run("long request on a quiet connection", func(t *testing.T) {
		t.Parallel()
		// Nothing is sent for 3*idle while the handler runs; the
		// server's keep-alive PINGs hold the QUIC connection open.
		res, err := newClient(t, f.pki.Pool, nil).Get(ts.url)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		if got := readBody(t, res); got != "slow" {
			t.Errorf("body = %q, want %q", got, "slow")
		}
	})
}

func TestFlushStreamsResponse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	next := make(chan struct{})
	ts := f.start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first;")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush = %v", err)
		}
		select {
		case <-next: // the client has read "first;"
		case <-r.Context().Done():
			return
		case <-time.After(2 * time.Second):
			t.Error("client never saw the flushed chunk")
			return
		}
		_, _ = io.WriteString(w, "second")
	}))
	res, err := newClient(t, f.pki.Pool, nil).Get(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "first;" {
		t.Fatalf("first chunk = %q, %v; want %q", first, err, "first;")
	}
	close(next)
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != "second" {
		t.Errorf("rest = %q, %v; want %q", rest, err, "second")
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ts := startServer(t, &Server{
		Handler:        http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		TLSConfig:      f.certs.listenerConfig(),
		MaxHeaderBytes: 1 << 10,
	})
	client := newClient(t, f.pki.Pool, nil)
	for _, tc := range []struct {
		desc string
		size int
		want int
	}{
		{desc: "under", size: 100, want: http.StatusOK},
		{desc: "over", size: 4 << 10, want: http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, ts.url, nil)
			// Random bytes do not compress in QPACK, so the HEADERS
			// frame is over the limit too.
			b := make([]byte, tc.size/2)
			_, _ = rand.Read(b)
			req.Header.Set("X-Big", fmt.Sprintf("%x", b))
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, res)
			if res.StatusCode != tc.want {
				t.Errorf("status with a %d-byte field = %d, want %d", tc.size, res.StatusCode, tc.want)
			}
		})
	}
}

func TestServeErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := http.NotFoundHandler()
	closed := &Server{Handler: h, TLSConfig: f.certs.listenerConfig()}
	if err := closed.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Serve = %v", err)
	}
	for _, tc := range []struct {
		desc string
		s    *Server
		want error
	}{
		{desc: "no handler", s: &Server{TLSConfig: f.certs.listenerConfig()}, want: errNoHandler},
		{desc: "no TLS config", s: &Server{Handler: h}, want: errNoTLSConfig},
		{desc: "after Shutdown", s: closed, want: ErrServerClosed},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.s.Serve(pc); !errors.Is(err, tc.want) {
				t.Errorf("Serve = %v, want %v", err, tc.want)
			}
			// Serve owns the socket even when it fails.
			if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
				t.Errorf("socket after Serve: WriteTo = %v, want %v", err, net.ErrClosed)
			}
		})
	}
	if err := (&Server{}).Close(); err != nil {
		t.Errorf("Close before Serve = %v", err)
	}
}

func TestAltSvc(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		port int
		want string
	}{
		{443, `h3=":443"; ma=86400`},
		{8443, `h3=":8443"; ma=86400`},
		{0, ""},
		{65536, ""},
	} {
		if got := AltSvc(tc.port); got != tc.want {
			t.Errorf("AltSvc(%d) = %q, want %q", tc.port, got, tc.want)
		}
	}
}
