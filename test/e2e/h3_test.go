package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/keelproxy/keel/internal/testpki"
)

// freeUDPAddr returns a loopback UDP address that was free a moment ago.
func freeUDPAddr(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// h3Client is an HTTP/3 client (quic-go) with its own connections.
func h3Client(t testing.TB, cfg *tls.Config) *http.Client {
	t.Helper()
	tr := &http3.Transport{TLSClientConfig: cfg.Clone()}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestHTTP3 serves the same routes and certificates over QUIC, announces
// the listener with Alt-Svc on TLS responses, and applies mTLS per route
// on HTTP/3 too.
func TestHTTP3(t *testing.T) {
	ca := testpki.New(t, "keel test CA")
	sc, sk := ca.Issue(t, "server", testpki.DNS("h3.test")).Files()
	client := ca.Issue(t, "carol", testpki.Client()).TLS
	up := newEcho(t, "up")
	cfg := fmt.Sprintf(`
routes:
  - {id: open, path_prefix: /, pool: p}
  - {id: locked, path_prefix: /locked, pool: p, require_mtls: true}
pools: [{id: p, endpoints: [{address: %s}]}]
tls:
  certificates: [{cert_file: %s, key_file: %s}]
  mtls: {enabled: true, ca_file: %s}
`, up.addr, sc, sk, ca.File)
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	writeFileAtomic(t, path, cfg)
	tlsAddr, h3Addr := freeAddr(t), freeUDPAddr(t)
	p := startProxyEnv(t, nil, path, "-tls-addr", tlsAddr, "-h3-addr", h3Addr)
	_, h3Port, _ := net.SplitHostPort(h3Addr)
	base := &tls.Config{ServerName: "h3.test", RootCAs: ca.Pool}

	// HTTP/1.1 and HTTP/2 over TLS announce HTTP/3; plaintext does not.
	want := fmt.Sprintf(`h3=":%s"; ma=86400`, h3Port)
	for _, h2 := range []bool{false, true} {
		resp, _ := do(t, tlsClient(t, base, h2), "GET", "https://"+tlsAddr+"/x", "", nil, nil)
		if got := resp.Header.Get("Alt-Svc"); resp.StatusCode != 200 || got != want {
			t.Errorf("h2=%v: status %d, Alt-Svc %q, want %q", h2, resp.StatusCode, got, want)
		}
	}
	// A proxy error over TLS announces it too.
	resp, _ := do(t, tlsClient(t, base, true), "GET", "https://"+tlsAddr+"/locked", "", nil, nil)
	if resp.StatusCode != 403 || resp.Header.Get("Alt-Svc") != want {
		t.Errorf("403 over TLS: Alt-Svc %q", resp.Header.Get("Alt-Svc"))
	}
	resp, _ = do(t, newClient(t, 5*time.Second), "GET", p.url("/x"), "h3.test", nil, nil)
	if got := resp.Header.Get("Alt-Svc"); got != "" {
		t.Errorf("plaintext response announces %q", got)
	}

	c := h3Client(t, base)
	resp, body := do(t, c, "POST", "https://"+h3Addr+"/echo", "", nil, strings.NewReader("over quic"))
	if resp.StatusCode != 200 || resp.ProtoMajor != 3 {
		t.Fatalf("HTTP/3 POST: %d %s: %s", resp.StatusCode, resp.Proto, body)
	}
	rep := decodeEcho(t, body)
	if rep.Body != "over quic" || rep.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("upstream saw body %q, X-Forwarded-Proto %q", rep.Body, rep.Header.Get("X-Forwarded-Proto"))
	}
	if got := resp.Header.Get("Alt-Svc"); got != "" {
		t.Errorf("HTTP/3 response announces itself: %q", got)
	}
	resp, body = do(t, c, "GET", "https://"+h3Addr+"/locked", "", nil, nil)
	checkProxyError(t, resp, body, 403, "mtls_required")

	withCert := base.Clone()
	withCert.Certificates = []tls.Certificate{client}
	resp, body = do(t, h3Client(t, withCert), "GET", "https://"+h3Addr+"/locked", "", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP/3 with a client certificate: %d %s", resp.StatusCode, body)
	}
	if xfcc := decodeEcho(t, body).Header.Get("X-Forwarded-Client-Cert"); !strings.Contains(xfcc, "CN=carol") {
		t.Errorf("X-Forwarded-Client-Cert %q", xfcc)
	}
}
