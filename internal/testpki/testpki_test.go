package testpki_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/keelproxy/keel/internal/testpki"
)

func TestIssue(t *testing.T) {
	ca := testpki.New(t, "test CA")
	if b, err := os.ReadFile(ca.File); err != nil || string(b) != string(ca.PEM) {
		t.Fatalf("CA file %s: %v", ca.File, err)
	}
	srv := ca.Issue(t, "server", testpki.DNS("a.test"))
	for _, name := range []string{"a.test", "127.0.0.1"} {
		if _, err := srv.Cert.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if got := srv.Cert.Subject.String(); got != "CN=server,O=test CA" {
		t.Errorf("subject %q", got)
	}
	pair, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile)
	if err != nil || string(pair.Certificate[0]) != string(srv.TLS.Certificate[0]) {
		t.Errorf("files: %v", err)
	}

	cli := ca.Issue(t, "alice", testpki.Client(), testpki.Org())
	if _, err := cli.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if len(cli.Cert.IPAddresses) != 0 || cli.Cert.Subject.String() != "CN=alice" {
		t.Errorf("client certificate: IPs %v, subject %q", cli.Cert.IPAddresses, cli.Cert.Subject)
	}
	if cli.Cert.SerialNumber.Cmp(srv.Cert.SerialNumber) == 0 {
		t.Errorf("two leaves with serial %v", cli.Cert.SerialNumber)
	}
	bare := ca.Issue(t, "bare", testpki.IPs())
	if len(bare.Cert.IPAddresses) != 0 || len(bare.Cert.DNSNames) != 0 {
		t.Errorf("IPs(): SANs %v %v", bare.Cert.IPAddresses, bare.Cert.DNSNames)
	}
}
