package ctl

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testToken is the admin token the emulator wants.
const testToken = "s3cret-t0ken"

// recorded is one request the emulator received.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Auth   string
	Type   string // Content-Type
	Body   []byte
}

// reply is one canned answer.
type reply struct {
	status int
	body   string
	header map[string]string
	// block, when set, makes the handler wait for the client to give up,
	// for timeout tests.
	block bool
}

// emulator is a fake admin API: the routes and shapes of SPEC section 8,
// bearer-token checks like the real one, and a record of every request.
type emulator struct {
	srv *httptest.Server

	mu      sync.Mutex
	replies map[string]reply // "METHOD /path" -> answer
	reqs    []recorded
}

// defaultReplies answers every endpoint ctl uses with a success.
func defaultReplies() map[string]reply {
	return map[string]reply{
		"POST " + pathValidate: {status: 200, body: `{"valid": true, "version": "v2"}`},
		"POST " + pathApply:    {status: 200, body: `{"version": "v2", "previous_version": "v1", "applied_at": "2026-01-02T03:04:05Z", "unchanged": false}`},
		"POST " + pathDiff: {status: 200, body: `{"from": "v1", "to": "v2", "changes": [
			{"op": "change", "path": "routes[api].timeout", "before": "5s", "after": "10s"},
			{"op": "add", "path": "routes[new]", "after": {"id": "new", "path_prefix": "/new", "pool": "backend"}},
			{"op": "remove", "path": "pools[old]", "before": {"id": "old"}}]}`},
		"GET " + pathCurrent: {status: 200, body: `{"version": "v1", "applied_at": "2026-01-01T00:00:00Z", "source": "file",
			"config": {"routes": [{"id": "api", "pool": "backend"}, {"id": "web", "pool": "web"}], "pools": [{"id": "backend"}, {"id": "web"}]}}`},
		"GET " + pathVersions: {status: 200, body: `{"versions": [
			{"version": "v2", "applied_at": "2026-01-02T03:04:05Z", "source": "admin", "active": true},
			{"version": "v1", "applied_at": "2026-01-01T00:00:00Z", "source": "file", "active": false}]}`},
		"POST " + pathRollback: {status: 200, body: `{"version": "v1", "previous_version": "v2", "applied_at": "2026-01-03T00:00:00Z", "unchanged": false}`},
		"GET " + pathPools:     {status: 200, body: `{"pools": [{"id": "backend", "healthy": 2, "total": 3, "balancer": "round_robin"}, {"id": "web", "healthy": 1, "total": 1, "balancer": "p2c"}]}`},
		"GET " + pathMatch: {status: 200, body: `{"matched": true, "route": "api", "pool": "backend", "policy": "p1", "middleware": "", "status": 200,
			"candidates": [{"route": "api", "result": "match", "reason": ""}, {"route": "admin", "result": "skip", "reason": "header X-Admin missing"}]}`},
		"GET " + pathReady: {status: 200, body: `{"status": "ready", "version": "v1"}`},
	}
}

// newEmulator starts a plain-HTTP emulator with the default replies
// overridden by overrides.
func newEmulator(t *testing.T, overrides map[string]reply) *emulator {
	t.Helper()
	e := newUnstarted(overrides)
	e.srv = httptest.NewServer(e)
	t.Cleanup(e.srv.Close)
	return e
}

func newUnstarted(overrides map[string]reply) *emulator {
	e := &emulator{replies: defaultReplies()}
	for k, v := range overrides {
		e.replies[k] = v
	}
	return e
}

// ServeHTTP implements http.Handler.
func (e *emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.reqs = append(e.reqs, recorded{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
		Auth: r.Header.Get("Authorization"), Type: r.Header.Get("Content-Type"), Body: body,
	})
	rep, ok := e.replies[r.Method+" "+r.URL.Path]
	e.mu.Unlock()

	// Like the real server: probes are open, everything else wants the
	// token, unknown paths included.
	if r.URL.Path != pathReady && r.Header.Get("Authorization") != "Bearer "+testToken {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeTestJSON(w, http.StatusUnauthorized, `{"error": "missing or wrong bearer token"}`)
		return
	}
	if !ok {
		writeTestJSON(w, http.StatusNotFound, `{"error": "no such admin endpoint: `+r.URL.Path+`"}`)
		return
	}
	if rep.block {
		<-r.Context().Done()
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	writeTestJSON(w, rep.status, rep.body)
}

func writeTestJSON(w http.ResponseWriter, status int, body string) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// requests returns a copy of what was received so far.
func (e *emulator) requests() []recorded {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]recorded(nil), e.reqs...)
}

// result is what one command line did.
type result struct {
	code           int
	stdout, stderr string
}

// runCtl runs args against url with env as the environment (ADMIN_TOKEN
// and PROXY_ADMIN_URL included) and stdin as standard input.
func runCtl(t *testing.T, args []string, env map[string]string, stdin string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// writeFile writes content to name in a fresh temp dir and returns the
// path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pki is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type pki struct {
	caFile, certFile, keyFile string // CA, client cert and key
	serverTLS                 *tls.Config
	otherCAFile               string // a CA that signed nothing here
}

// newPKI generates the CA and certificates with crypto/x509; the server
// config requires and verifies a client certificate from that CA.
func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, caPEM := newCA(t, "keel test CA")
	_, _, otherPEM := newCA(t, "unrelated CA")
	serverCert := issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	clientCert := issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "operator"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	p := &pki{
		caFile:      filepath.Join(dir, "ca.pem"),
		certFile:    filepath.Join(dir, "client.pem"),
		keyFile:     filepath.Join(dir, "client-key.pem"),
		otherCAFile: filepath.Join(dir, "other-ca.pem"),
		serverTLS: &tls.Config{
			Certificates: []tls.Certificate{serverCert.tls},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
		},
	}
	for name, b := range map[string][]byte{
		p.caFile: caPEM, p.otherCAFile: otherPEM, p.certFile: clientCert.certPEM, p.keyFile: clientCert.keyPEM,
	} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

type issued struct {
	tls             tls.Certificate
	certPEM, keyPEM []byte
}

func randomSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = randomSerial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return issued{tls: pair, certPEM: certPEM, keyPEM: keyPEM}
}

// newTLSEmulator starts the emulator behind TLS that requires a client
// certificate from p's CA.
func newTLSEmulator(t *testing.T, p *pki) *emulator {
	t.Helper()
	e := newUnstarted(nil)
	e.srv = httptest.NewUnstartedServer(e)
	e.srv.TLS = p.serverTLS
	// The handshake failures the tests provoke are expected; keep them
	// out of the test log.
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}
