package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a throwaway certificate authority for the mTLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by ca, for a server
// (with 127.0.0.1 as its address) or a client.
func (ca *testCA) issue(t testing.TB, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func writeTemp(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAdminMTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, otherCA := newTestCA(t, "keel test CA"), newTestCA(t, "someone else")
	srvCert, srvKey := ca.issue(t, "proxy admin", true)
	cliCert, cliKey := ca.issue(t, "ops-alice", false)
	badCert, badKey := otherCA.issue(t, "mallory", false)
	env := []string{
		"ADMIN_TOKEN=" + testToken,
		"ADMIN_TLS_CERT_FILE=" + writeTemp(t, dir, "srv.pem", srvCert),
		"ADMIN_TLS_KEY_FILE=" + writeTemp(t, dir, "srv.key", srvKey),
		"ADMIN_CLIENT_CA_FILE=" + writeTemp(t, dir, "ca.pem", ca.pem),
	}
	proxySlots <- struct{}{}
	defer func() { <-proxySlots }()
	data, adm := freeAddr(t), freeAddr(t)
	p := startProcEnv(t, env, "-http-addr", data, "-admin-addr", adm)
	defer p.kill()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	client := func(certPEM, keyPEM []byte) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if certPEM != nil {
			c, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	good := client(cliCert, cliKey)
	get := func(c *http.Client, path, token string) (int, error) {
		req, _ := http.NewRequest("GET", "https://"+adm+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	eventually(t, 15*time.Second, func() error {
		if p.exited() {
			t.Fatalf("proxy exited: %s", p.stderr)
		}
		_, err := get(good, "/ready", "")
		return err
	})

	if code, err := get(good, "/api/v2/config/current", testToken); err != nil || code != 200 {
		t.Fatalf("client cert + token = %d, %v; want 200", code, err)
	}
	if code, err := get(good, "/api/v2/config/current", "wrong"); err != nil || code != 401 {
		t.Fatalf("client cert + wrong token = %d, %v; want 401", code, err)
	}
	if _, err := get(client(nil, nil), "/ready", ""); err == nil {
		t.Fatalf("no client certificate: request succeeded, want a failed handshake")
	}
	if _, err := get(client(badCert, badKey), "/ready", ""); err == nil {
		t.Fatalf("client certificate from another CA: request succeeded, want a failed handshake")
	}
	// Plain HTTP to the TLS listener gets nothing useful either.
	if resp, err := http.Get("http://" + adm + "/api/v2/config/current"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP to the admin TLS listener = 200")
		}
	}
}

func TestAdminNonLoopbackRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		env  []string
		want string
	}{
		{"nothing", nil, "admin token"},
		{"token only", []string{"ADMIN_TOKEN=x"}, "admin mTLS"},
	}
	for _, tt := range tests {
		// The check runs before any listener is opened, so nothing binds
		// to a non-loopback address.
		p := startProcEnv(t, tt.env, "-http-addr", "127.0.0.1:0", "-admin-addr", "0.0.0.0:0")
		code, ok := p.wait(15 * time.Second)
		if !ok {
			p.kill()
			t.Fatalf("%s: proxy with a non-loopback admin address kept running", tt.desc)
		}
		if code == 0 || !strings.Contains(p.stderr.String(), "not a loopback address") || !strings.Contains(p.stderr.String(), tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want a refusal naming %q", tt.desc, code, tail(p.stderr.String(), 3), tt.want)
		}
	}
}
