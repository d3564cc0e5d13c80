package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/testpki"
)

// tlsClient returns an HTTP client for the proxy's TLS listener: HTTP/2
// when h2, HTTP/1.1 otherwise.
func tlsClient(t testing.TB, cfg *tls.Config, h2 bool) *http.Client {
	t.Helper()
	// http.Transport adds "h2" to the NextProtos of the config it is
	// given: each client gets its own copy.
	tr := &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: h2, DisableCompression: true}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// startTLSProxy starts the proxy on cfg with a TLS listener and returns it
// with the listener's address.
func startTLSProxy(t testing.TB, env []string, cfg string, extra ...string) (*proxyServer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	writeFileAtomic(t, path, cfg)
	tlsAddr := freeAddr(t)
	p := startProxyEnv(t, env, path, append([]string{"-tls-addr", tlsAddr}, extra...)...)
	return p, tlsAddr
}

func TestTLSSNIAndProtocols(t *testing.T) {
	ca := testpki.New(t, "keel test CA")
	aCert, aKey := ca.Issue(t, "a", testpki.DNS("a.test")).Files()
	wCert, wKey := ca.Issue(t, "wild", testpki.DNS("*.wild.test")).Files()
	dCert, dKey := ca.Issue(t, "default", testpki.DNS("default.test")).Files()
	up := newEcho(t, "up")
	cfg := fmt.Sprintf(`
routes:
  - {id: r, path_prefix: /, pool: p}
  - {id: plain-refused, path_prefix: /secure, pool: p, policy: tls-only}
policies:
  - {id: tls-only, require_tls: true}
pools:
  - {id: p, endpoints: [{address: %s}]}
tls:
  certificates:
    - {cert_file: %s, key_file: %s}
    - {cert_file: %s, key_file: %s}
`, up.addr, aCert, aKey, wCert, wKey)
	p, tlsAddr := startTLSProxy(t, []string{"PROXY_TLS_CERT=" + dCert, "PROXY_TLS_KEY=" + dKey}, cfg)

	for _, tc := range []struct{ sni, want string }{
		{"a.test", "a"},
		{"A.Test", "a"},
		{"x.wild.test", "wild"},
		{"deep.x.wild.test", "default"}, // a wildcard covers one label only
		{"wild.test", "default"},
		{"unknown.test", "default"},
		{"", "default"}, // no SNI
	} {
		got, err := peerCN(t, tlsAddr, tc.sni, ca.Pool)
		if tc.want == "default" && err != nil {
			// The default certificate does not name the SNI: verification
			// must fail for the right reason, the certificate served.
			var he x509.HostnameError
			if !asHostnameError(err, &he) {
				t.Fatalf("SNI %q: %v", tc.sni, err)
			}
			got = he.Certificate.Subject.CommonName
		} else if err != nil {
			t.Fatalf("SNI %q: %v", tc.sni, err)
		}
		if got != tc.want {
			t.Errorf("SNI %q: certificate %q, want %q", tc.sni, got, tc.want)
		}
	}

	for _, h2 := range []bool{false, true} {
		c := tlsClient(t, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool}, h2)
		resp, body := do(t, c, "GET", "https://"+tlsAddr+"/secure/x", "a.test", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("h2=%v: status %d: %s", h2, resp.StatusCode, body)
		}
		if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
			t.Errorf("h2=%v: response over HTTP/%d, want %d", h2, resp.ProtoMajor, want)
		}
		rep := decodeEcho(t, body)
		if got := rep.Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("h2=%v: upstream saw X-Forwarded-Proto %q, want https", h2, got)
		}
		if resp.Header.Get("Alt-Svc") != "" {
			t.Errorf("Alt-Svc %q without an HTTP/3 listener", resp.Header.Get("Alt-Svc"))
		}
	}
	// require_tls: the same route over plaintext is refused.
	resp, body := do(t, newClient(t, 5*time.Second), "GET", p.url("/secure/x"), "a.test", nil, nil)
	checkProxyError(t, resp, body, 403, "tls_required")

	// Protocol versions below the minimum never complete a handshake.
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, MinVersion: v, MaxVersion: v})
		if err == nil {
			c.Close()
			t.Errorf("a TLS %x handshake succeeded", v)
		}
	}
	// A TLS 1.2 handshake negotiates a forward-secret AEAD suite.
	c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	if name := tls.CipherSuiteName(c.ConnectionState().CipherSuite); !strings.HasPrefix(name, "TLS_ECDHE_") ||
		(!strings.Contains(name, "GCM") && !strings.Contains(name, "CHACHA20")) {
		t.Errorf("TLS 1.2 suite %s", name)
	}
	c.Close()

	// min_version 1.3 refuses TLS 1.2.
	p.writeConfig(t, cfg+"  min_version: \"1.3\"\n")
	eventually(t, 10*time.Second, func() error {
		c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, MaxVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
			return fmt.Errorf("TLS 1.2 still accepted")
		}
		return nil
	})
}

func asHostnameError(err error, he *x509.HostnameError) bool {
	var tv *tls.CertificateVerificationError
	if e, ok := err.(*tls.CertificateVerificationError); ok {
		tv = e
	}
	if tv == nil {
		return false
	}
	h, ok := tv.Err.(x509.HostnameError)
	if ok {
		*he = h
	}
	return ok
}

// TestTLSHotSwapUnderLoad swaps the certificate of a name back and forth
// by applies while clients keep opening new connections: no handshake or
// request may fail, new connections get the new certificate, and a
// connection opened before the swaps keeps working. A config naming a
// broken certificate file is rejected and changes nothing.
func TestTLSHotSwapUnderLoad(t *testing.T) {
	ca := testpki.New(t, "keel test CA")
	c1, k1 := ca.Issue(t, "one", testpki.DNS("swap.test")).Files()
	c2, k2 := ca.Issue(t, "two", testpki.DNS("swap.test")).Files()
	up := newEcho(t, "up")
	cfgFor := func(cert, key string) string {
		return fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p}]
pools: [{id: p, endpoints: [{address: %s}]}]
tls:
  certificates: [{cert_file: %s, key_file: %s, sni: swap.test}]
`, up.addr, cert, key)
	}
	p, tlsAddr := startTLSProxy(t, nil, cfgFor(c1, k1), "-admin-token", testToken)
	clientCfg := &tls.Config{ServerName: "swap.test", RootCAs: ca.Pool}

	// A keep-alive connection opened before the swaps.
	old := tlsClient(t, clientCfg, true)
	if resp, body := do(t, old, "GET", "https://"+tlsAddr+"/", "", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	// A client that keeps session tickets, to resume after the swaps.
	resumeCfg := clientCfg.Clone()
	resumeCfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	resumer := tlsClient(t, resumeCfg, false)
	resumer.Transport.(*http.Transport).DisableKeepAlives = true
	if resp, _ := do(t, resumer, "GET", "https://"+tlsAddr+"/", "", nil, nil); resp.TLS.DidResume {
		t.Fatalf("first handshake resumed")
	}

	var stop atomic.Bool
	var ok, failed atomic.Int64
	var seen sync.Map
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				tr := &http.Transport{TLSClientConfig: clientCfg.Clone(), DisableKeepAlives: true}
				resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + tlsAddr + "/")
				if err != nil {
					failed.Add(1)
					t.Errorf("request during swaps: %v", err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					t.Errorf("status %d during swaps", resp.StatusCode)
					continue
				}
				seen.Store(resp.TLS.PeerCertificates[0].Subject.CommonName, true)
				ok.Add(1)
			}
		}()
	}
	for i := 0; i < 20; i++ {
		cert, key := c2, k2
		if i%2 == 1 {
			cert, key = c1, k1
		}
		doc := map[string]any{
			"routes": []map[string]any{route("r", "/", "p")},
			"pools":  []map[string]any{pool("p", up.addr)},
			"tls":    map[string]any{"certificates": []map[string]any{{"cert_file": cert, "key_file": key, "sni": "swap.test"}}},
		}
		if resp, out := adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": doc}); resp.StatusCode != 200 {
			t.Fatalf("apply %d: %d %v", i, resp.StatusCode, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() > 0 || ok.Load() < 20 {
		t.Fatalf("%d requests ok, %d failed", ok.Load(), failed.Load())
	}
	for _, cn := range []string{"one", "two"} {
		if _, ok := seen.Load(cn); !ok {
			t.Errorf("certificate %q never served during the swaps", cn)
		}
	}
	// The last apply installed "one"; a new connection gets it.
	if cn, err := peerCN(t, tlsAddr, "swap.test", ca.Pool); err != nil || cn != "one" {
		t.Errorf("after the swaps: %q, %v; want one", cn, err)
	}
	// The connection from before the swaps still serves.
	if resp, body := do(t, old, "GET", "https://"+tlsAddr+"/", "", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("old connection: status %d: %s", resp.StatusCode, body)
	}
	// A session ticket from before the swaps still resumes: every
	// snapshot's TLS config shares the listener's ticket keys.
	if resp, _ := do(t, resumer, "GET", "https://"+tlsAddr+"/", "", nil, nil); !resp.TLS.DidResume {
		t.Errorf("a session from before the certificate swaps did not resume")
	}

	// A broken certificate rejects the whole config.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	writeFileAtomic(t, bad, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
	doc := map[string]any{
		"routes": []map[string]any{route("r", "/", "p")},
		"pools":  []map[string]any{pool("p", up.addr)},
		"tls":    map[string]any{"certificates": []map[string]any{{"cert_file": bad, "key_file": k2, "sni": "swap.test"}}},
	}
	resp, out := adminCall(t, p, "POST", "/api/v2/config/apply", testToken, map[string]any{"config": doc})
	if resp.StatusCode != 422 || !strings.Contains(fmt.Sprint(out), "tls.certificates[0]") {
		t.Errorf("apply with a broken certificate: %d %v; want 422 naming tls.certificates[0]", resp.StatusCode, out)
	}
	if cn, err := peerCN(t, tlsAddr, "swap.test", ca.Pool); err != nil || cn != "one" {
		t.Errorf("after the rejected apply: %q, %v; want one", cn, err)
	}
}

// TestMTLSRoutes checks client-certificate verification per route and
// the identity handed upstream and to the access log.
func TestMTLSRoutes(t *testing.T) {
	ca := testpki.New(t, "keel test CA")
	clientCA := testpki.New(t, "client CA")
	rogueCA := testpki.New(t, "rogue CA")
	sc, sk := ca.Issue(t, "server", testpki.DNS("m.test")).Files()
	good := clientCA.Issue(t, "alice", testpki.Client()).TLS
	rogue := rogueCA.Issue(t, "mallory", testpki.Client()).TLS
	up := newEcho(t, "up")
	cfg := fmt.Sprintf(`
routes:
  - {id: open, path_prefix: /open, pool: p}
  - {id: locked, path_prefix: /locked, pool: p, require_mtls: true}
pools: [{id: p, endpoints: [{address: %s}]}]
tls:
  certificates: [{cert_file: %s, key_file: %s}]
  mtls: {enabled: true, ca_file: %s, require_client_cert: false}
`, up.addr, sc, sk, clientCA.File)
	_, tlsAddr := startTLSProxy(t, nil, cfg)
	base := &tls.Config{ServerName: "m.test", RootCAs: ca.Pool}
	withCert := base.Clone()
	withCert.Certificates = []tls.Certificate{good}

	for _, h2 := range []bool{false, true} {
		anon := tlsClient(t, base, h2)
		resp, body := do(t, anon, "GET", "https://"+tlsAddr+"/open", "", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("h2=%v open route without a certificate: %d %s", h2, resp.StatusCode, body)
		}
		resp, body = do(t, anon, "GET", "https://"+tlsAddr+"/locked", "", nil, nil)
		checkProxyError(t, resp, body, 403, "mtls_required")

		authed := tlsClient(t, withCert, h2)
		hdr := http.Header{"X-Forwarded-Client-Cert": {"Subject=\"CN=forged\""}}
		resp, body = do(t, authed, "GET", "https://"+tlsAddr+"/locked", "", hdr, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("h2=%v locked route with a client certificate: %d %s", h2, resp.StatusCode, body)
		}
		xfcc := decodeEcho(t, body).Header.Values("X-Forwarded-Client-Cert")
		if len(xfcc) != 1 || !strings.Contains(xfcc[0], `Subject="CN=alice,O=client CA"`) || !strings.HasPrefix(xfcc[0], "Hash=") {
			t.Errorf("h2=%v upstream X-Forwarded-Client-Cert %q", h2, xfcc)
		}
		// A forged header from a client without a certificate is dropped.
		resp, body = do(t, anon, "GET", "https://"+tlsAddr+"/open", "", hdr, nil)
		if got := decodeEcho(t, body).Header.Values("X-Forwarded-Client-Cert"); resp.StatusCode != 200 || len(got) != 0 {
			t.Errorf("h2=%v forged X-Forwarded-Client-Cert reached the upstream: %q", h2, got)
		}
	}
	// A certificate from another CA fails the handshake: presented
	// certificates are always verified.
	rogueCfg := base.Clone()
	// GetClientCertificate sends it even though the server's list of
	// acceptable CAs does not name its issuer (Go's client would
	// otherwise send nothing).
	rogueCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogue, nil }
	resp, err := tlsClient(t, rogueCfg, false).Get("https://" + tlsAddr + "/open")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a certificate from an unknown CA was accepted: %d", resp.StatusCode)
	}
}

// TestMTLSRequiredAndAccessLog: with require_client_cert the handshake
// itself needs a certificate, and the access log names the subject.
func TestMTLSRequiredAndAccessLog(t *testing.T) {
	ca := testpki.New(t, "keel test CA")
	sc, sk := ca.Issue(t, "server", testpki.DNS("m.test")).Files()
	good := ca.Issue(t, "bob", testpki.Client()).TLS
	up := newEcho(t, "up")
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p}]
pools: [{id: p, endpoints: [{address: %s}]}]
tls:
  certificates: [{cert_file: %s, key_file: %s}]
  mtls: {enabled: true, ca_file: %s, require_client_cert: true}
`, up.addr, sc, sk, ca.File)
	p, tlsAddr := startTLSProxy(t, nil, cfg)
	base := &tls.Config{ServerName: "m.test", RootCAs: ca.Pool}
	if resp, err := tlsClient(t, base, false).Get("https://" + tlsAddr + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("no client certificate, yet status %d", resp.StatusCode)
	}
	withCert := base.Clone()
	withCert.Certificates = []tls.Certificate{good}
	hdr := http.Header{"X-Request-Id": {"mtls-log-1"}}
	resp, body := do(t, tlsClient(t, withCert, false), "GET", "https://"+tlsAddr+"/", "", hdr, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	eventually(t, 5*time.Second, func() error {
		recs := p.accessByID(t, "mtls-log-1")
		if len(recs) != 1 {
			return fmt.Errorf("%d records", len(recs))
		}
		if got := recs[0]["client_cert_subject"]; got != "CN=bob,O=keel test CA" {
			return fmt.Errorf("client_cert_subject %v", got)
		}
		return nil
	})
}

// TestTLSListenerNeedsCertificate: -tls-addr without any certificate is a
// start-up error, not a listener that fails every handshake.
func TestTLSListenerNeedsCertificate(t *testing.T) {
	up := newEcho(t, "up")
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	writeFileAtomic(t, path, fmt.Sprintf("routes: [{id: r, path_prefix: /, pool: p}]\npools: [{id: p, endpoints: [{address: %s}]}]\n", up.addr))
	_, stderr, code := runCmd(t, 20*time.Second, "-config-file", path, "-http-addr", freeAddr(t),
		"-admin-addr", freeAddr(t), "-tls-addr", freeAddr(t))
	if code == 0 || !strings.Contains(stderr, "needs a certificate") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}

	// Without a config, PROXY_TLS_CERT/KEY serve every handshake.
	ca := testpki.New(t, "keel test CA")
	dc, dk := ca.Issue(t, "default", testpki.DNS("default.test")).Files()
	tlsAddr := freeAddr(t)
	startProxyEnv(t, []string{"PROXY_TLS_CERT=" + dc, "PROXY_TLS_KEY=" + dk}, "", "-tls-addr", tlsAddr)
	resp, body := do(t, tlsClient(t, &tls.Config{ServerName: "default.test", RootCAs: ca.Pool}, true),
		"GET", "https://"+tlsAddr+"/", "", nil, nil)
	checkProxyError(t, resp, body, 404, "no_route")
}

// tlsDial is a raw TLS connection for protocol-level checks.
func tlsDial(t testing.TB, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestH2Spec runs the h2spec conformance suite (a tool dependency in
// go.mod) against the TLS listener, where every one of its 145 cases must
// pass, and against the plaintext listener with h2c, where all but one
// must: a connection without the HTTP/2 preface is HTTP/1.1 there by
// design, so "invalid connection preface" gets a 400, not a bare close.
func TestH2Spec(t *testing.T) {
	ca := testpki.New(t, "keel test CA")
	sc, sk := ca.Issue(t, "server", testpki.DNS("localhost")).Files()
	up := newEcho(t, "up")
	cfg := fmt.Sprintf(`
server: {h2c: true}
routes: [{id: r, path_prefix: /, pool: p}]
pools: [{id: p, endpoints: [{address: %s}]}]
tls:
  certificates: [{cert_file: %s, key_file: %s}]
`, up.addr, sc, sk)
	px, tlsAddr := startTLSProxy(t, nil, cfg)

	out, summary, err := runH2Spec(t, tlsAddr, "-t", "-k")
	if err != nil || !strings.Contains(summary, "0 failed") || !strings.Contains(summary, "0 skipped") {
		t.Fatalf("h2spec over TLS: %v\n%s", err, tail(out, 60))
	}
	t.Logf("h2spec over TLS: %s", summary)

	out, summary, _ = runH2Spec(t, px.data)
	if !strings.Contains(summary, "144 passed") || !strings.Contains(summary, "1 failed") ||
		!strings.Contains(out, "Sends invalid connection preface") {
		t.Fatalf("h2spec over h2c: want 144 passed and only the invalid-preface case failed\n%s", tail(out, 60))
	}
	t.Logf("h2spec over h2c: %s (the by-design preface case failed)", summary)
}

// runH2Spec runs h2spec against addr and returns its output and summary
// line.
func runH2Spec(t *testing.T, addr string, flags ...string) (out, summary string, err error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	args := append([]string{"tool", "h2spec"}, flags...)
	args = append(args, "-h", host, "-p", port, "--timeout", "5", "-j", report)
	b, err := exec.Command("go", args...).CombinedOutput()
	out = string(b)
	if i := strings.LastIndex(out, "tests,"); i >= 0 {
		summary = strings.TrimSpace(out[strings.LastIndexByte(out[:i], '\n')+1:])
	}
	return out, summary, err
}
