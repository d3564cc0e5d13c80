package e2e

import (
	"bufio"
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
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// acmeCA is a pebble (Let's Encrypt's ACME test server, Debian package
// pebble) on loopback, validating tls-alpn-01 on a port the test chooses
// and resolving every name to 127.0.0.1 through the test's DNS server.
type acmeCA struct {
	dir      string // ACME directory URL
	certFile string // PEM of pebble's own HTTPS certificate (self-signed)
	roots    *x509.CertPool
	mgmt     string // https://host:port of the management interface
	cmd      *exec.Cmd
	log      *syncBuffer
	done     chan struct{}
}

// startACMECA starts pebble with tls-alpn-01 validation on tlsPort; it is
// killed when the test ends (or earlier by stop). A missing pebble fails
// the test: ACME must not go untested on a machine that lacks it.
func startACMECA(t *testing.T, tlsPort int) *acmeCA {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		t.Fatalf("pebble not found (%v): install the Debian package pebble (scripts/test-deps.sh)", err)
	}
	dir := t.TempDir()
	certFile, keyFile, roots := writeACMEServerCert(t, dir)
	dnsAddr := startLoopbackDNS(t)
	var last error
	for range 3 { // a free port may be taken before pebble binds it
		listen, mgmt := freeAddr(t), freeAddr(t)
		_, httpPort, _ := net.SplitHostPort(freeAddr(t)) // nothing listens there: http-01 is off
		hp, _ := strconv.Atoi(httpPort)
		cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
			"listenAddress":                  listen,
			"managementListenAddress":        mgmt,
			"certificate":                    certFile,
			"privateKey":                     keyFile,
			"httpPort":                       hp,
			"tlsPort":                        tlsPort,
			"ocspResponderURL":               "",
			"externalAccountBindingRequired": false,
		}})
		cfgPath := filepath.Join(dir, "pebble.json")
		writeFileAtomic(t, cfgPath, string(cfg))
		ca := &acmeCA{dir: "https://" + listen + "/dir", certFile: certFile, roots: roots,
			mgmt: "https://" + mgmt, log: new(syncBuffer), done: make(chan struct{})}
		ca.cmd = exec.Command(bin, "-config", cfgPath, "-dnsserver", dnsAddr)
		// No artificial validation delays and no rejected nonces: fast and
		// deterministic.
		ca.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
		ca.cmd.Stdout, ca.cmd.Stderr = ca.log, ca.log
		// Pebble dies with the test binary (a -timeout panic, say).
		ca.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := ca.cmd.Start(); err != nil {
			t.Fatalf("start pebble: %v", err)
		}
		go func() {
			defer close(ca.done)
			ca.cmd.Wait()
		}()
		if last = ca.waitReady(10 * time.Second); last == nil {
			t.Cleanup(func() {
				ca.stop()
				if t.Failed() {
					t.Logf("pebble log (tail):\n%s", tail(ca.log.String(), 40))
				}
			})
			return ca
		}
		ca.stop()
	}
	t.Fatalf("pebble: %v", last)
	return nil
}

func (ca *acmeCA) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.roots}}}
}

func (ca *acmeCA) waitReady(timeout time.Duration) error {
	c := ca.client()
	defer c.CloseIdleConnections()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-ca.done:
			return fmt.Errorf("exited early: %v\n%s", ca.cmd.ProcessState, ca.log)
		default:
		}
		resp, err := c.Get(ca.dir)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("not ready in %v\n%s", timeout, ca.log)
}

// stop kills pebble and waits for it; later calls do nothing.
func (ca *acmeCA) stop() {
	select {
	case <-ca.done:
	default:
		ca.cmd.Process.Kill()
		<-ca.done
	}
}

// issuerRoots returns a pool with the root pebble issues under (a new one
// at every start of pebble).
func (ca *acmeCA) issuerRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	c := ca.client()
	defer c.CloseIdleConnections()
	resp, err := c.Get(ca.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: status %d, %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: no certificate in %q", b)
	}
	return pool
}

// writeACMEServerCert writes a self-signed certificate for pebble's HTTPS
// listeners (127.0.0.1, localhost) into dir: Debian's package ships none.
func writeACMEServerCert(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
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
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// startLoopbackDNS answers A 127.0.0.1 for every name (no other records)
// on a loopback UDP port until the test ends, for pebble's -dnsserver.
func startLoopbackDNS(t *testing.T) string {
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
			w.WriteMsg(m)
		})}
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		<-served
	})
	return pc.LocalAddr().String()
}

// acmeHandshake opens a TLS connection to addr as serverName (ALPN
// http/1.1), verifying against roots, or accepting anything when roots is
// nil.
func acmeHandshake(addr, serverName string, roots *x509.CertPool) (*tls.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		ServerName: serverName, RootCAs: roots, InsecureSkipVerify: roots == nil,
		NextProtos: []string{"http/1.1"}}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// TestACMEIssuance runs the proxy binary with only tls.acme against a real
// ACME CA (pebble): the certificate is obtained through tls-alpn-01 on the
// proxy's TLS listener, served for its name (and not for others), stored,
// and served again from storage by a new process while the CA is down.
func TestACMEIssuance(t *testing.T) {
	t.Parallel()
	const name = "acme.keel.test"
	tlsAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(tlsAddr)
	tlsPort, _ := strconv.Atoi(port)
	ca := startACMECA(t, tlsPort)
	up := newEcho(t, "acme-up")
	storage := t.TempDir()
	cfg := fmt.Sprintf(`routes: [{id: r, path_prefix: /, pool: p}]
pools: [{id: p, endpoints: [{address: %s}]}]
tls:
  acme:
    email: ops@keel.test
    directory_url: %s
    domains: [%s]
    storage: %s
%s`, up.addr, ca.dir, name, storage, fastShutdown)
	cfgPath := filepath.Join(t.TempDir(), "proxy.yaml")
	writeFileAtomic(t, cfgPath, cfg)
	// The proxy's ACME client trusts pebble's directory through the
	// system roots.
	env := []string{"SSL_CERT_FILE=" + ca.certFile}
	p := startProxyEnv(t, env, cfgPath, "-tls-addr", tlsAddr)
	roots := ca.issuerRoots(t)

	var leaf *x509.Certificate
	var conn *tls.Conn
	eventually(t, 30*time.Second, func() error {
		if p.exited() {
			t.Fatalf("proxy exited: %d\n%s", p.cmd.ProcessState.ExitCode(), tail(p.stderr.String(), 40))
		}
		c, err := acmeHandshake(tlsAddr, name, roots)
		if err != nil {
			return fmt.Errorf("no ACME certificate for %s yet: %v", name, err)
		}
		conn, leaf = c, c.ConnectionState().PeerCertificates[0]
		return nil
	})
	if !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Errorf("leaf names %q, want [%s]", leaf.DNSNames, name)
	}
	if got := conn.ConnectionState().NegotiatedProtocol; got != "http/1.1" {
		t.Errorf("ALPN %q, want http/1.1", got)
	}

	// A request over that connection reaches the upstream.
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", name)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET over the ACME connection: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	conn.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET over the ACME connection = %d: %s", resp.StatusCode, body)
	}
	rep := decodeEcho(t, body)
	if rep.Upstream != "acme-up" || rep.URI != "/hello" || rep.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("upstream saw %s %s from %s with X-Forwarded-Proto %q", rep.Method, rep.URI, rep.Upstream,
			rep.Header.Get("X-Forwarded-Proto"))
	}

	// Other names get no certificate: ACME is the only source and issues
	// for its domains only.
	for _, sni := range []string{"other.keel.test", ""} {
		if c, err := acmeHandshake(tlsAddr, sni, nil); err == nil {
			st := c.ConnectionState()
			c.Close()
			t.Errorf("handshake with SNI %q succeeded with a certificate for %q, want it to fail", sni,
				st.PeerCertificates[0].DNSNames)
		}
	}

	// The certificate and its key are in the storage directory.
	var stored *x509.Certificate
	var files []string
	filepath.WalkDir(storage, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(storage, path)
		files = append(files, rel)
		if d.Name() == name+".crt" {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if blk, _ := pem.Decode(b); blk != nil {
				stored, _ = x509.ParseCertificate(blk.Bytes)
			}
		}
		return nil
	})
	if !slices.ContainsFunc(files, func(f string) bool { return filepath.Base(f) == name+".key" }) || stored == nil {
		t.Fatalf("storage %s holds %q, want %s.crt and %s.key", storage, files, name, name)
	}
	if stored.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("stored certificate serial %x, served %x", stored.SerialNumber, leaf.SerialNumber)
	}

	// A new process on the same storage serves the stored certificate
	// without the CA.
	ca.stop()
	p.kill()
	p2, tlsAddr2 := startTLSProxy(t, env, cfg)
	var again *x509.Certificate
	eventually(t, 10*time.Second, func() error {
		if p2.exited() {
			t.Fatalf("restarted proxy exited: %d\n%s", p2.cmd.ProcessState.ExitCode(), tail(p2.stderr.String(), 40))
		}
		c, err := acmeHandshake(tlsAddr2, name, roots)
		if err != nil {
			return fmt.Errorf("restarted proxy: no certificate for %s: %v", name, err)
		}
		again = c.ConnectionState().PeerCertificates[0]
		c.Close()
		return nil
	})
	if again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("after restart serial %x, want the stored %x", again.SerialNumber, leaf.SerialNumber)
	}
	c := tlsClient(t, &tls.Config{ServerName: name, RootCAs: roots}, true)
	resp2, body2 := do(t, c, http.MethodGet, "https://"+tlsAddr2+"/again", name, nil, nil)
	if resp2.StatusCode != http.StatusOK || resp2.ProtoMajor != 2 {
		t.Errorf("restarted proxy: GET = %d over HTTP/%d, want 200 over HTTP/2: %s", resp2.StatusCode, resp2.ProtoMajor, body2)
	}
}
