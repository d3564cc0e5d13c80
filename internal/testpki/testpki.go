// Package testpki is a throwaway certificate authority for tests: a CA,
// server and client certificates it signs (ECDSA P-256), as values, PEM
// bytes and PEM files under the test's temp dir.
//
// It is for _test.go files only; no production code imports it.
package testpki

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
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a self-signed certificate authority made up for a test.
type CA struct {
	Name string            // the CA's common name, and its leaves' organization
	Cert *x509.Certificate // the CA certificate
	Key  *ecdsa.PrivateKey
	Pool *x509.CertPool // trusts Cert alone
	PEM  []byte         // Cert as PEM
	File string         // PEM file of Cert, ca.pem in the CA's temp dir

	dir    string
	serial atomic.Int64
}

// Leaf is a certificate issued by a CA, with its key.
type Leaf struct {
	Cert              *x509.Certificate
	TLS               tls.Certificate // the pair for a tls.Config, Leaf set
	CertPEM, KeyPEM   []byte          // key as EC PRIVATE KEY
	CertFile, KeyFile string          // <cn>.crt and <cn>.key in the CA's temp dir
}

// New creates a CA named name, valid from an hour ago for a day, and
// writes its certificate to a PEM file under t.TempDir().
func New(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Name: name, Cert: cert, Key: key, Pool: x509.NewCertPool(), dir: t.TempDir()}
	ca.serial.Store(1)
	ca.Pool.AddCert(cert)
	ca.PEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	ca.File = filepath.Join(ca.dir, "ca.pem")
	writeFile(t, ca.File, ca.PEM)
	return ca
}

// Option changes the template of a certificate before it is signed.
type Option func(*x509.Certificate)

// DNS adds DNS names to the certificate.
func DNS(names ...string) Option {
	return func(c *x509.Certificate) { c.DNSNames = append(c.DNSNames, names...) }
}

// IPs replaces the certificate's IP addresses (127.0.0.1 for a server
// certificate); IPs() leaves it without any.
func IPs(ips ...string) Option {
	return func(c *x509.Certificate) {
		c.IPAddresses = nil
		for _, s := range ips {
			c.IPAddresses = append(c.IPAddresses, net.ParseIP(s))
		}
	}
}

// Client makes a client certificate: client authentication, no IP
// address.
func Client() Option {
	return func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		c.IPAddresses = nil
	}
}

// Org replaces the subject's organization (the CA's name); Org() leaves
// the subject with the common name alone.
func Org(org ...string) Option {
	return func(c *x509.Certificate) { c.Subject.Organization = org }
}

// Issue signs a certificate for common name cn, by default a server
// certificate for 127.0.0.1 with subject CN=cn,O=<CA name>, valid from an
// hour ago for a day; opts change that. Its PEM files are written to the
// CA's temp dir, named after cn (a later leaf of the same name replaces
// them).
func (ca *CA) Issue(t testing.TB, cn string, opts ...Option) *Leaf {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{ca.Name}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &Leaf{
		Cert:    cert,
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	base := filepath.Join(ca.dir, cn)
	l.CertFile, l.KeyFile = base+".crt", base+".key"
	writeFile(t, l.CertFile, l.CertPEM)
	writeFile(t, l.KeyFile, l.KeyPEM)
	return l
}

// Files returns the paths of the certificate and key PEM files.
func (l *Leaf) Files() (certFile, keyFile string) { return l.CertFile, l.KeyFile }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
