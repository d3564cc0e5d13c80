package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/testpebble"
)

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
	ca := testpebble.Start(t, tlsPort)
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
%s`, up.addr, ca.Directory, name, storage, fastShutdown)
	cfgPath := filepath.Join(t.TempDir(), "proxy.yaml")
	writeFileAtomic(t, cfgPath, cfg)
	// The proxy's ACME client trusts pebble's directory through the
	// system roots.
	env := []string{"SSL_CERT_FILE=" + ca.CertFile}
	p := startProxyEnv(t, env, cfgPath, "-tls-addr", tlsAddr)
	roots := ca.IssuerRoots()

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
	ca.Stop()
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
