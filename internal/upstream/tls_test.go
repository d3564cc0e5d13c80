package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/testpki"
)

// testPKI is the certificates of the TLS tests: a server certificate for
// 127.0.0.1 and backend.test from ca, a client certificate from clientCA,
// another CA that signed neither, and their files.
type testPKI struct {
	ca, otherCA, clientCA *testpki.CA
	server                tls.Certificate
	// Files: PEM CA bundles, and the client pair.
	caFile, otherCAFile, clientCert, clientKey string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{ca: testpki.New(t, "upstream CA"), otherCA: testpki.New(t, "other CA"), clientCA: testpki.New(t, "client CA")}
	p.server = p.ca.Issue(t, "backend", testpki.DNS("backend.test")).TLS
	client := p.clientCA.Issue(t, "keel-proxy", testpki.Client())
	dir := t.TempDir()
	p.caFile = writeFile(t, dir, "ca.pem", p.ca.PEM)
	p.otherCAFile = writeFile(t, dir, "other-ca.pem", p.otherCA.PEM)
	p.clientCert = writeFile(t, dir, "client.pem", client.CertPEM)
	p.clientKey = writeFile(t, dir, "client-key.pem", client.KeyPEM)
	return p
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newWatchedTLSServer is newWatchedServer over TLS with cert: HTTP/1.1
// (ALPN http/1.1), or only HTTP/2 (ALPN h2) when proto is HTTP2. cfg, when
// not nil, is the base of the server's tls.Config.
func newWatchedTLSServer(t testing.TB, proto Protocol, cert tls.Certificate, cfg *tls.Config, h http.Handler) (*httptest.Server, *connWatch) {
	t.Helper()
	w := &connWatch{states: make(map[net.Conn]http.ConnState)}
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = w.hook
	// Handshakes fail on purpose here.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if cfg == nil {
		cfg = &tls.Config{}
	}
	ts.TLS = cfg.Clone()
	ts.TLS.Certificates = []tls.Certificate{cert}
	if ts.TLS.NextProtos == nil {
		ts.TLS.NextProtos = []string{"http/1.1"}
		if proto == HTTP2 {
			ts.EnableHTTP2 = true
			ts.TLS.NextProtos = []string{"h2"}
		}
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts, w
}

// tlsInfo answers with what the upstream saw of the request's connection.
func tlsInfo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "plaintext", http.StatusBadRequest)
			return
		}
		client := ""
		if len(r.TLS.PeerCertificates) > 0 {
			client = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "%s sni=%s alpn=%s client=%s resumed=%t", r.Proto, r.TLS.ServerName, r.TLS.NegotiatedProtocol, client, r.TLS.DidResume)
	})
}

// TestTLSVerify: server verification with the pool's settings: the CA, the
// server name (SNI and the name verified), and insecure_skip_verify.
// patientDial gives handshakes in these tests time to finish on a machine
// busy with the race detector and parallel packages; timeouts are not
// what they test.
var patientDial = TransportConfig{DialTimeout: 10 * time.Second}

func TestTLSVerify(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	ts, _ := newWatchedTLSServer(t, HTTP1, pki.server, nil, tlsInfo())
	addr := ts.Listener.Addr().String()
	tests := []struct {
		name    string
		address string // default "https://" + addr
		tls     *TLSConfig
		want    string // response body; "" means a *DialError is wanted
		wantErr string // in the DialError's text
	}{
		{name: "custom CA, IP host: no SNI, verified against the IP", tls: &TLSConfig{CAFile: pki.caFile},
			want: "HTTP/1.1 sni= alpn=http/1.1 client= resumed=false"},
		{name: "TLS block makes a bare address TLS", address: addr, tls: &TLSConfig{CAFile: pki.caFile},
			want: "HTTP/1.1 sni= alpn=http/1.1 client= resumed=false"},
		{name: "https without TLS block: system roots", wantErr: "tls handshake: tls: failed to verify certificate"},
		{name: "wrong CA", tls: &TLSConfig{CAFile: pki.otherCAFile}, wantErr: "certificate signed by unknown authority"},
		{name: "server_name in the certificate", tls: &TLSConfig{CAFile: pki.caFile, ServerName: "backend.test"},
			want: "HTTP/1.1 sni=backend.test alpn=http/1.1 client= resumed=false"},
		{name: "server_name mismatch", tls: &TLSConfig{CAFile: pki.caFile, ServerName: "other.test"},
			wantErr: "certificate is valid for backend.test, not other.test"},
		{name: "server_name mismatch, insecure_skip_verify", tls: &TLSConfig{ServerName: "other.test", InsecureSkipVerify: true},
			want: "HTTP/1.1 sni=other.test alpn=http/1.1 client= resumed=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			address := tt.address
			if address == "" {
				address = "https://" + addr
			}
			s := newTestState(t, nil)
			e := mustBuild(t, s, PoolConfig{Transport: patientDial, ID: "p", TLS: tt.tls, Endpoints: []EndpointConfig{{Address: address}}}).Endpoints()[0]
			if e.Scheme() != "https" {
				t.Errorf("Scheme() = %q, want https", e.Scheme())
			}
			body, err := get(t, e, "/")
			if tt.want != "" {
				if err != nil || body != tt.want {
					t.Errorf("GET = %q, %v; want %q", body, err, tt.want)
				}
				return
			}
			var de *DialError
			if !errors.As(err, &de) || de.Address != addr {
				t.Fatalf("GET error = %v (%T), want a *DialError for %s", err, err, addr)
			}
			var ve *tls.CertificateVerificationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("GET error = %q, want a certificate verification error containing %q", err, tt.wantErr)
			}
			if n := e.rt.openConns(); n != 0 {
				t.Errorf("after a failed handshake open connections = %d, want 0", n)
			}
		})
	}
}

// TestTLSClientCert: an upstream that requires a client certificate takes
// the pool's cert_file and key_file, and refuses the proxy without them.
// With TLS 1.2 the refusal fails the handshake (a *DialError); TLS 1.3
// clients finish their side of the handshake before the server checks the
// certificate, so there the refusal arrives as the first read's error.
func TestTLSClientCert(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		pool := x509.NewCertPool()
		pool.AddCert(pki.clientCA.Cert)
		ts, _ := newWatchedTLSServer(t, HTTP1, pki.server,
			&tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MaxVersion: version}, tlsInfo())
		address := "https://" + ts.Listener.Addr().String()
		s := newTestState(t, nil)
		e := mustBuild(t, s, PoolConfig{Transport: patientDial, ID: "mtls", Endpoints: []EndpointConfig{{Address: address}},
			TLS: &TLSConfig{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}}).Endpoints()[0]
		if body, err := get(t, e, "/"); err != nil || !strings.HasSuffix(body, "client=keel-proxy resumed=false") {
			t.Errorf("TLS %x: GET with a client certificate = %q, %v; want the upstream to see keel-proxy", version, body, err)
		}
		e = mustBuild(t, s, PoolConfig{Transport: patientDial, ID: "plain", Endpoints: []EndpointConfig{{Address: address}},
			TLS: &TLSConfig{CAFile: pki.caFile}}).Endpoints()[0]
		_, err := get(t, e, "/")
		if err == nil {
			t.Fatalf("TLS %x: GET without a client certificate succeeded, want an error", version)
		}
		var de *DialError
		if version == tls.VersionTLS12 && !errors.As(err, &de) {
			t.Errorf("TLS 1.2: GET without a client certificate error = %v (%T), want a *DialError", err, err)
		}
	}
}

// TestTLSHTTP2: protocol http2 speaks HTTP/2 over TLS by ALPN, multiplexes
// sequential requests over one connection, and passes gRPC-style trailers.
func TestTLSHTTP2(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	ts, conns := newWatchedTLSServer(t, HTTP2, pki.server, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.TLS == nil || r.TLS.NegotiatedProtocol != "h2" {
			http.Error(w, "want HTTP/2 over TLS, got "+r.Proto, http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "Grpc-Status")
		fmt.Fprintf(w, "%s %s %s", r.Proto, r.Host, body)
		w.Header().Set("Grpc-Status", "0")
	}))
	s := newTestState(t, nil)
	e := mustBuild(t, s, PoolConfig{Transport: patientDial, ID: "p", Protocol: HTTP2, TLS: &TLSConfig{CAFile: pki.caFile},
		Endpoints: []EndpointConfig{{Address: ts.Listener.Addr().String()}}}).Endpoints()[0]
	// The last URL is plaintext and names another host: the endpoint
	// decides scheme and address.
	for i, target := range []string{e.Scheme() + "://" + e.Address(), e.Scheme() + "://" + e.Address(), "http://unrelated.invalid"} {
		req, _ := http.NewRequest(http.MethodPost, target+"/svc/Method", strings.NewReader("payload"))
		resp, err := e.Transport().RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantHost := strings.TrimPrefix(target, "https://")
		wantHost = strings.TrimPrefix(wantHost, "http://")
		if want := "HTTP/2.0 " + wantHost + " payload"; err != nil || resp.ProtoMajor != 2 || string(body) != want {
			t.Errorf("RoundTrip %d = %s %q, %v; want HTTP/2.0 %q", i, resp.Proto, body, err, want)
		}
		if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
			t.Errorf("RoundTrip %d: trailer Grpc-Status = %q, want 0", i, got)
		}
	}
	if _, opened := conns.count(http.StateActive); opened != 1 || e.rt.openConns() != 1 {
		t.Errorf("3 sequential requests opened %d connections (%d open), want 1", opened, e.rt.openConns())
	}
}

// TestTLSHTTP2NotNegotiated: an http2 endpoint that does not select h2
// fails as a connect failure rather than falling back to HTTP/1.1.
func TestTLSHTTP2NotNegotiated(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tests := []struct {
		name    string
		alpn    []string
		wantErr error // nil: any DialError
	}{
		{name: "server without ALPN", alpn: []string{}, wantErr: errNoHTTP2},
		{name: "HTTP/1.1-only server", alpn: []string{"http/1.1"}},
	}
	for _, tt := range tests {
		ts, _ := newWatchedTLSServer(t, HTTP1, pki.server, &tls.Config{NextProtos: tt.alpn}, tlsInfo())
		s := newTestState(t, nil)
		e := mustBuild(t, s, PoolConfig{Transport: patientDial, ID: "p", Protocol: HTTP2, TLS: &TLSConfig{CAFile: pki.caFile},
			Endpoints: []EndpointConfig{{Address: ts.Listener.Addr().String()}}}).Endpoints()[0]
		_, err := get(t, e, "/")
		var de *DialError
		if !errors.As(err, &de) {
			t.Errorf("%s: GET error = %v (%T), want a *DialError", tt.name, err, err)
			continue
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: GET error = %v, want %v", tt.name, err, tt.wantErr)
		}
		if n := e.rt.openConns(); n != 0 {
			t.Errorf("%s: open connections = %d, want 0", tt.name, n)
		}
	}
}

// TestTLSKeepAlive: one handshake serves many sequential requests, and a
// new connection to the endpoint resumes the session.
func TestTLSKeepAlive(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	for _, proto := range []Protocol{HTTP1, HTTP2} {
		ts, conns := newWatchedTLSServer(t, proto, pki.server, nil, tlsInfo())
		s := newTestState(t, nil)
		e := mustBuild(t, s, PoolConfig{Transport: patientDial, ID: "p", Protocol: proto, TLS: &TLSConfig{CAFile: pki.caFile},
			Endpoints: []EndpointConfig{{Address: ts.Listener.Addr().String()}}}).Endpoints()[0]
		for i := range 20 {
			body, err := get(t, e, "/")
			if err != nil || !strings.HasSuffix(body, "resumed=false") {
				t.Fatalf("%v: GET %d = %q, %v; want a response on the first session", proto, i, body, err)
			}
		}
		if _, opened := conns.count(http.StateNew); opened != 1 {
			t.Errorf("%v: 20 sequential requests made %d handshakes, want 1", proto, opened)
		}
		if proto == HTTP1 {
			e.rt.h1.CloseIdleConnections()
		} else {
			e.rt.h2.base.CloseIdleConnections()
		}
		if body, err := get(t, e, "/"); err != nil || !strings.HasSuffix(body, "resumed=true") {
			t.Errorf("%v: GET on a new connection = %q, %v; want a resumed session", proto, body, err)
		}
	}
}

// TestTLSHandshakeTimeout: dial_timeout bounds the TLS handshake, and its
// expiry is a connect failure.
func TestTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	// Accepts connections and never answers a ClientHello.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range accepted {
			c.Close()
		}
	})
	for _, proto := range []Protocol{HTTP1, HTTP2} {
		s := newTestState(t, nil)
		e := mustBuild(t, s, PoolConfig{ID: "p", Protocol: proto, TLS: &TLSConfig{InsecureSkipVerify: true},
			Transport: TransportConfig{DialTimeout: 100 * time.Millisecond},
			Endpoints: []EndpointConfig{{Address: l.Addr().String()}}}).Endpoints()[0]
		start := time.Now()
		_, err := get(t, e, "/")
		var de *DialError
		if !errors.As(err, &de) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v: GET to a silent TLS server error = %v (%T), want a *DialError wrapping context.DeadlineExceeded", proto, err, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%v: GET took %v, want about the 100ms dial timeout", proto, d)
		}
	}
}

// TestTLSDrain: releasing a TLS endpoint drains its connections as for
// plaintext ones (see testDrainInFlight).
func TestTLSDrain(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	for _, proto := range []Protocol{HTTP1, HTTP2} {
		t.Run(proto.String(), func(t *testing.T) {
			t.Parallel()
			testDrainInFlight(t, proto, pki)
		})
	}
}

// TestTLSBuildReuse: an endpoint's identity covers its TLS settings and the
// contents of their files, and only that: an unchanged apply keeps it.
func TestTLSBuildReuse(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tests := []struct {
		name     string
		change   func(t *testing.T, c *PoolConfig)
		wantSame bool
	}{
		{name: "identical", change: func(*testing.T, *PoolConfig) {}, wantSame: true},
		{name: "https prefix under a TLS block", change: func(_ *testing.T, c *PoolConfig) { c.Endpoints[0].Address = "https://127.0.0.1:9001" }, wantSame: true},
		{name: "files rewritten, same contents", change: func(t *testing.T, c *PoolConfig) {
			writeFile(t, filepath.Dir(c.TLS.CAFile), "ca.pem", pki.ca.PEM)
		}, wantSame: true},
		{name: "CA rotated under the same path", change: func(t *testing.T, c *PoolConfig) {
			writeFile(t, filepath.Dir(c.TLS.CAFile), "ca.pem", append(pki.ca.PEM, pki.otherCA.PEM...))
		}},
		{name: "client key rotated under the same path", change: func(t *testing.T, c *PoolConfig) {
			client := pki.clientCA.Issue(t, "keel-proxy", testpki.Client())
			writeFile(t, filepath.Dir(c.TLS.CertFile), "client.pem", client.CertPEM)
			writeFile(t, filepath.Dir(c.TLS.KeyFile), "client-key.pem", client.KeyPEM)
		}},
		{name: "same contents, other path", change: func(t *testing.T, c *PoolConfig) {
			c.TLS.CAFile = writeFile(t, t.TempDir(), "ca.pem", pki.ca.PEM)
		}},
		{name: "server name", change: func(_ *testing.T, c *PoolConfig) { c.TLS.ServerName = "backend.test" }},
		{name: "insecure_skip_verify", change: func(_ *testing.T, c *PoolConfig) { c.TLS.InsecureSkipVerify = true }},
		{name: "no client certificate", change: func(_ *testing.T, c *PoolConfig) { c.TLS.CertFile, c.TLS.KeyFile = "", "" }},
		{name: "plaintext", change: func(_ *testing.T, c *PoolConfig) { c.TLS = nil }},
		{name: "protocol http2", change: func(_ *testing.T, c *PoolConfig) { c.Protocol = HTTP2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			certPEM, _ := os.ReadFile(pki.clientCert)
			keyPEM, _ := os.ReadFile(pki.clientKey)
			base := PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "127.0.0.1:9001"}}, TLS: &TLSConfig{
				CAFile:   writeFile(t, dir, "ca.pem", pki.ca.PEM),
				CertFile: writeFile(t, dir, "client.pem", certPEM),
				KeyFile:  writeFile(t, dir, "client-key.pem", keyPEM),
			}}
			s := newTestState(t, nil)
			first := mustBuild(t, s, base)
			cfg := base
			cfg.Endpoints = []EndpointConfig{base.Endpoints[0]}
			tls := *base.TLS
			cfg.TLS = &tls
			tt.change(t, &cfg)
			next := mustBuild(t, s, cfg)
			if same := next.Endpoints()[0] == first.Endpoints()[0]; same != tt.wantSame {
				t.Errorf("rebuilt endpoint reused = %v, want %v", same, tt.wantSame)
			}
		})
	}
	t.Run("https without a block is an empty block", func(t *testing.T) {
		t.Parallel()
		s := newTestState(t, nil)
		first := mustBuild(t, s, PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "https://127.0.0.1:9001"}}})
		next := mustBuild(t, s, PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "127.0.0.1:9001"}}, TLS: &TLSConfig{}})
		plain := mustBuild(t, s, PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "127.0.0.1:9001"}}})
		if first.Endpoints()[0] != next.Endpoints()[0] || first.Endpoints()[0] == plain.Endpoints()[0] {
			t.Errorf("https:// without a TLS block and an empty block: same endpoint = %v, want true; https and plaintext: same = %v, want false",
				first.Endpoints()[0] == next.Endpoints()[0], first.Endpoints()[0] == plain.Endpoints()[0])
		}
	})
}

// TestTLSRotation: an apply that keeps the TLS files keeps the pooled
// connection; one that rotates a file's contents gets a new connection and
// the old one is drained.
func TestTLSRotation(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	ts, conns := newWatchedTLSServer(t, HTTP1, pki.server, nil, tlsInfo())
	caFile := writeFile(t, t.TempDir(), "ca.pem", pki.ca.PEM)
	cfg := PoolConfig{Transport: patientDial, ID: "p", TLS: &TLSConfig{CAFile: caFile}, Endpoints: []EndpointConfig{{Address: ts.Listener.Addr().String()}}}
	s := newTestState(t, nil)
	apply := func() *Endpoint {
		p := mustBuild(t, s, cfg)
		s.Commit([]*Pool{p})
		e := p.Endpoints()[0]
		if _, err := get(t, e, "/"); err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := apply()
	if again := apply(); again != first {
		t.Error("an unchanged apply replaced the endpoint")
	}
	if _, opened := conns.count(http.StateNew); opened != 1 {
		t.Errorf("after an unchanged apply the upstream saw %d connections, want 1 (kept)", opened)
	}
	writeFile(t, filepath.Dir(caFile), "ca.pem", append(pki.ca.PEM, pki.otherCA.PEM...))
	if rotated := apply(); rotated == first {
		t.Error("an apply after the CA file changed kept the endpoint, want a new one")
	}
	eventually(t, "the old connection to close and a new one to open", func() bool {
		closed, opened := conns.count(http.StateClosed)
		return opened == 2 && closed == 1 && first.rt.openConns() == 0
	})
}

// TestTLSBuildErrors: a TLS file that cannot be read or parsed fails the
// build, naming the field and the file, and leaves nothing behind.
func TestTLSBuildErrors(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := writeFile(t, dir, "garbage.pem", []byte("not a certificate\n"))
	damaged := writeFile(t, dir, "damaged.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))
	otherKey := pki.clientCA.Issue(t, "other", testpki.Client()).KeyPEM
	wrongKey := writeFile(t, dir, "wrong-key.pem", otherKey)
	tests := []struct {
		name    string
		tls     TLSConfig
		wantMsg string
	}{
		{name: "missing ca_file", tls: TLSConfig{CAFile: missing}, wantMsg: "tls: ca_file " + missing + ": no such file or directory"},
		{name: "ca_file without certificates", tls: TLSConfig{CAFile: garbage}, wantMsg: "tls: ca_file " + garbage + ": no PEM certificate"},
		{name: "damaged ca_file", tls: TLSConfig{CAFile: damaged}, wantMsg: "tls: ca_file " + damaged + ": certificate 1:"},
		{name: "missing cert_file", tls: TLSConfig{CertFile: missing, KeyFile: pki.clientKey}, wantMsg: "tls: cert_file " + missing},
		{name: "missing key_file", tls: TLSConfig{CertFile: pki.clientCert, KeyFile: missing}, wantMsg: "tls: key_file " + missing},
		{name: "key of another certificate", tls: TLSConfig{CertFile: pki.clientCert, KeyFile: wrongKey},
			wantMsg: "tls: cert_file " + pki.clientCert + ", key_file " + wrongKey + ": tls: private key does not match public key"},
		{name: "garbage cert_file", tls: TLSConfig{CertFile: garbage, KeyFile: pki.clientKey}, wantMsg: "tls: cert_file " + garbage},
		{name: "cert_file alone", tls: TLSConfig{CertFile: pki.clientCert}, wantMsg: "set cert_file and key_file together"},
	}
	for _, tt := range tests {
		s := newTestState(t, nil)
		p, err := s.Build(PoolConfig{ID: "p", TLS: &tt.tls, Endpoints: []EndpointConfig{{Address: "127.0.0.1:9001"}}})
		if err == nil {
			t.Errorf("%s: Build = %v, want an error", tt.name, p)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("%s: Build error = %q, want it to contain %q", tt.name, err, tt.wantMsg)
		}
		if len(s.entries) != 0 || len(s.pools) != 0 {
			t.Errorf("%s: failed Build left %d entries and %d pools, want none", tt.name, len(s.entries), len(s.pools))
		}
	}
}

// TestTLSHealthCheck: active checks of a TLS endpoint go over TLS, through
// the endpoint's transport (HTTP/2 for protocol http2).
func TestTLSHealthCheck(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	for _, proto := range []Protocol{HTTP1, HTTP2} {
		var probes atomic.Int64
		ts, _ := newWatchedTLSServer(t, proto, pki.server, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS != nil && r.URL.Path == "/health" && r.ProtoMajor == map[Protocol]int{HTTP1: 1, HTTP2: 2}[proto] {
				probes.Add(1)
			}
		}))
		s := newTestState(t, nil)
		p := commitPool(t, s, PoolConfig{Protocol: proto, TLS: &TLSConfig{CAFile: pki.caFile},
			Endpoints: []EndpointConfig{{Address: "https://" + ts.Listener.Addr().String()}},
			// A generous timeout and threshold: a probe slowed by a busy
			// machine must not turn the endpoint unhealthy here.
			Transport: TransportConfig{DialTimeout: 10 * time.Second},
			Health:    &HealthCheck{Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, UnhealthyThreshold: 5}})
		eventually(t, "three TLS probes", func() bool { return probes.Load() >= 3 })
		if !p.Endpoints()[0].Healthy() {
			t.Errorf("%v: endpoint unhealthy after good TLS probes", proto)
		}
	}
}
