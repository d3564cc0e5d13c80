// Package testpebble runs pebble, Let's Encrypt's ACME test server
// (Debian package pebble), as a throwaway CA on free loopback ports for a
// test, with a DNS server that resolves every name to 127.0.0.1.
//
// It is for _test.go files only; no production code imports it.
package testpebble

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/keelproxy/keel/internal/testpki"
)

// Pebble is a running pebble. Its validation authority resolves every
// name to 127.0.0.1 and connects for tls-alpn-01 to the TLS port given to
// Start; http-01 is not served.
type Pebble struct {
	Directory string         // ACME directory URL
	CertFile  string         // PEM of pebble's own HTTPS certificate (self-signed)
	Roots     *x509.CertPool // trusts pebble's own HTTPS certificate

	t    testing.TB
	mgmt string // management interface, https://host:port
	cmd  *exec.Cmd
	log  *bytes.Buffer // written by the process; read only after done
	done chan struct{} // closed when the process has exited
}

// Options adjusts the pebble that StartWith starts. The zero value is
// what Start uses.
type Options struct {
	// CertValidity is the validity period of the certificates pebble
	// issues (pebble's certificateValidityPeriod), in whole seconds.
	// Zero keeps pebble's own default, far longer than any test (as
	// for Start). Renewal tests shorten it so that a certificate
	// reaches its renewal window within the test.
	CertValidity time.Duration
}

// Start starts pebble validating tls-alpn-01 on tlsPort; it is killed
// when the test ends, or earlier by Stop. A missing pebble fails the
// test: ACME must not go untested because a machine lacks it.
func Start(t testing.TB, tlsPort int) *Pebble {
	t.Helper()
	return StartWith(t, tlsPort, Options{})
}

// StartWith is Start with Options.
func StartWith(t testing.TB, tlsPort int, o Options) *Pebble {
	t.Helper()
	if o.CertValidity < 0 || o.CertValidity%time.Second != 0 {
		t.Fatalf("testpebble: CertValidity %v: want zero or a positive number of whole seconds", o.CertValidity)
	}
	bin, err := exec.LookPath("pebble")
	if err != nil {
		t.Fatalf("pebble not found (%v): run scripts/test-deps.sh (Debian package pebble)", err)
	}
	dir := t.TempDir()
	// Pebble's own HTTPS listeners (Debian's package ships no test
	// certificates): a leaf for 127.0.0.1 and localhost from a test CA.
	ca := testpki.New(t, "pebble test CA")
	certFile, keyFile := ca.Issue(t, "pebble", testpki.DNS("localhost")).Files()
	roots := ca.Pool
	dnsAddr := startDNS(t)
	var lastErr error
	for range 3 { // another process may take a free port first
		cfgPath := filepath.Join(dir, "pebble-config.json")
		listen, mgmt := freeAddr(t), freeAddr(t)
		_, httpPort, _ := net.SplitHostPort(freeAddr(t))
		hp, _ := strconv.Atoi(httpPort)
		pc := map[string]any{
			"listenAddress":           listen,
			"managementListenAddress": mgmt,
			"certificate":             certFile,
			"privateKey":              keyFile,
			// Nothing listens there: http-01 is off, so pebble must
			// validate tls-alpn-01.
			"httpPort":                       hp,
			"tlsPort":                        tlsPort,
			"ocspResponderURL":               "",
			"externalAccountBindingRequired": false,
		}
		if o.CertValidity > 0 {
			pc["certificateValidityPeriod"] = uint64(o.CertValidity / time.Second)
		}
		cfg, err := json.Marshal(map[string]any{"pebble": pc})
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, cfgPath, cfg)
		p := &Pebble{Directory: "https://" + listen + "/dir", CertFile: certFile, Roots: roots,
			t: t, mgmt: "https://" + mgmt}
		if lastErr = p.start(bin, cfgPath, dnsAddr); lastErr == nil {
			t.Cleanup(func() {
				p.Stop()
				if t.Failed() {
					t.Logf("pebble log:\n%s", p.log)
				}
			})
			return p
		}
	}
	t.Fatalf("pebble: %v", lastErr)
	return nil
}

func (p *Pebble) start(bin, cfgPath, dnsAddr string) error {
	p.cmd = exec.Command(bin, "-config", cfgPath, "-dnsserver", dnsAddr)
	// No artificial validation delays, no rejected nonces: fast and
	// deterministic.
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	p.log = new(bytes.Buffer)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// If the test binary dies (a -timeout panic), pebble dies too.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		_ = p.cmd.Wait()
	}()
	client := p.client()
	defer client.CloseIdleConnections()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("pebble exited early: %v\n%s", p.cmd.ProcessState, p.log)
		default:
		}
		if resp, err := client.Get(p.Directory); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	p.Stop()
	return fmt.Errorf("pebble not ready in 10s\n%s", p.log)
}

// Stop kills pebble and waits for it; later calls do nothing.
func (p *Pebble) Stop() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *Pebble) client() *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}},
	}
}

// IssuerRoots returns a pool with the root pebble issues under; pebble
// makes a new one at every start.
func (p *Pebble) IssuerRoots() *x509.CertPool {
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

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
