package acme_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/keelproxy/keel/internal/acme"
)

// pebble is a throwaway ACME CA (Let's Encrypt's test server, Debian
// package pebble) on free loopback ports, killed when the test ends. Its
// validation authority resolves every name to 127.0.0.1 through a DNS
// server of the test, and connects for tls-alpn-01 to TLSPort, where the
// test's TLS listener runs the Manager under test.
type pebble struct {
	t         testing.TB
	Directory string         // ACME directory URL
	Roots     *x509.CertPool // trusts pebble's own HTTPS certificate
	mgmt      string         // management interface, https://host:port

	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *bytes.Buffer // written by the process; read only after done fired
	done chan error
}

// startPebble starts pebble validating tls-alpn-01 on tlsPort. A missing
// pebble fails the test: ACME must not go untested because a machine
// lacks it.
func startPebble(t testing.TB, tlsPort int) *pebble {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		t.Fatalf("pebble not found (%v): run scripts/test-deps.sh (Debian package pebble)", err)
	}
	dir := t.TempDir()
	roots := writeServerCert(t, dir)
	dnsAddr := startDNS(t)
	var lastErr error
	for range 3 { // another process may take a free port first
		p := &pebble{t: t, Roots: roots}
		cfgPath := filepath.Join(dir, "pebble-config.json")
		listen, mgmt := freeAddr(t), freeAddr(t)
		writeJSON(t, cfgPath, map[string]any{"pebble": map[string]any{
			"listenAddress":           listen,
			"managementListenAddress": mgmt,
			"certificate":             filepath.Join(dir, "cert.pem"),
			"privateKey":              filepath.Join(dir, "key.pem"),
			// Nothing listens there: the Manager under test leaves
			// http-01 off, so pebble must validate tls-alpn-01.
			"httpPort":                       mustPort(t, freeAddr(t)),
			"tlsPort":                        tlsPort,
			"ocspResponderURL":               "",
			"externalAccountBindingRequired": false,
		}})
		p.Directory, p.mgmt = "https://"+listen+"/dir", "https://"+mgmt
		if lastErr = p.start(bin, cfgPath, dnsAddr); lastErr == nil {
			t.Cleanup(p.Stop)
			return p
		}
	}
	t.Fatal(lastErr)
	return nil
}

func (p *pebble) start(bin, cfgPath, dnsAddr string) error {
	cmd := exec.Command(bin, "-config", cfgPath, "-dnsserver", dnsAddr)
	// No artificial validation delays, no rejected nonces: fast and
	// deterministic.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	log := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = log, log
	// If the test binary dies (a -timeout panic), pebble dies too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p.mu.Lock()
	p.cmd, p.log, p.done = cmd, log, done
	p.mu.Unlock()
	client := p.client()
	defer client.CloseIdleConnections()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-done:
			p.mu.Lock()
			p.cmd = nil
			p.mu.Unlock()
			return fmt.Errorf("pebble exited early: %v\n%s", err, log)
		default:
		}
		if resp, err := client.Get(p.Directory); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Stop()
	return fmt.Errorf("pebble not ready in 10s\n%s", log)
}

// Stop kills pebble and waits for it; later calls do nothing.
func (p *pebble) Stop() {
	p.mu.Lock()
	cmd, done, log := p.cmd, p.done, p.log
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
	if p.t.Failed() {
		p.t.Logf("pebble log:\n%s", log)
	}
}

func (p *pebble) client() *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}},
	}
}

// IssuerRoots returns a pool with the root pebble issues under; pebble
// makes a new one at every start.
func (p *pebble) IssuerRoots() *x509.CertPool {
	p.t.Helper()
	client := p.client()
	defer client.CloseIdleConnections()
	resp, err := client.Get(p.mgmt + "/roots/0")
	if err != nil {
		p.t.Fatalf("fetch pebble root: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		p.t.Fatalf("fetch pebble root: status %d, %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		p.t.Fatalf("pebble root: no certificate in %q", body)
	}
	return pool
}

// writeServerCert writes cert.pem and key.pem for pebble's HTTPS
// listeners into dir (Debian's package ships no test certificates) and
// returns a pool trusting them.
func writeServerCert(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pebble test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	writeFile(t, filepath.Join(dir, "cert.pem"), certPEM)
	writeFile(t, filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

// startDNS serves A 127.0.0.1 for every name (and no other records) on a
// loopback UDP port, for pebble's -dnsserver, until the test ends.
func startDNS(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(q)
			m.Authoritative = true
			for _, qq := range q.Question {
				if qq.Qtype == dns.TypeA {
					m.Answer = append(m.Answer, &dns.A{
						Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
						A:   net.IPv4(127, 0, 0, 1),
					})
				}
			}
			_ = w.WriteMsg(m)
		})}
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-served
	})
	return pc.LocalAddr().String()
}

// tlsServer is the proxy's TLS listener in miniature: certificates come
// from the current Manager, ALPNProto is offered for tls-alpn-01, and a
// connection ends after its handshake.
type tlsServer struct {
	Addr       string
	Port       int
	manager    atomic.Pointer[acme.Manager]
	challenges atomic.Int32 // tls-alpn-01 validation handshakes seen
}

func startTLSServer(t testing.TB) *tlsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port}
	cfg := &tls.Config{
		NextProtos: []string{"http/1.1", acme.ALPNProto},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			m := s.manager.Load()
			if m == nil {
				return nil, acme.ErrNotRunning
			}
			if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
				s.challenges.Add(1)
			}
			return m.GetCertificate(hello)
		},
	}
	tln := tls.NewListener(ln, cfg)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			})
		}
	})
	t.Cleanup(func() {
		tln.Close()
		wg.Wait()
	})
	return s
}

// leaf handshakes with the server as name, trusting roots, and returns
// the server's certificate.
func (s *tlsServer) leaf(name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"http/1.1"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// logBuffer collects a Manager's logs, shown when the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t testing.TB) *slog.Logger {
	b := new(logBuffer)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", b)
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func mustPort(t testing.TB, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b)
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
