package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keelproxy/keel/internal/testpki"
)

// newCert returns a certificate for cn valid for dns, with no other
// names and a subject of the common name alone, from a new test CA.
func newCert(t testing.TB, cn string, dns ...string) *tls.Certificate {
	t.Helper()
	return &testpki.New(t, "certs test CA").Issue(t, cn, testpki.DNS(dns...), testpki.IPs(), testpki.Org()).TLS
}

type fakeACME struct{ cert *tls.Certificate }

func (f fakeACME) Handles(n string) bool { return n == "auto.test" }
func (f fakeACME) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cert, nil
}

func TestCertificateSelection(t *testing.T) {
	exact := newCert(t, "exact")
	wild := newCert(t, "wild")
	def := newCert(t, "default")
	auto := newCert(t, "auto")
	s, err := New(Options{
		Certificates: []Certificate{{Cert: exact, Names: []string{"api.test", "www.api.test"}}, {Cert: wild, Names: []string{"*.api.test"}}},
		Default:      def,
		ACME:         fakeACME{auto},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sni    string
		protos []string
		want   *tls.Certificate
	}{
		{"api.test", nil, exact},
		{"API.TEST.", nil, exact},
		{"www.api.test", nil, exact}, // exact beats the wildcard
		{"v1.api.test", nil, wild},
		{"a.b.api.test", nil, def}, // one label only
		{"other.test", nil, def},
		{"", nil, def},
		{"auto.test", nil, auto},
		{"auto.test", []string{ProtoACMETLS}, auto},
	} {
		got, err := s.Certificate(&tls.ClientHelloInfo{ServerName: tc.sni, SupportedProtos: tc.protos})
		if err != nil || got != tc.want {
			t.Errorf("SNI %q: got %v (%v)", tc.sni, got.Leaf.Subject.CommonName, err)
		}
	}
}

func TestFallbackAndEmpty(t *testing.T) {
	first := newCert(t, "first")
	s, err := New(Options{Certificates: []Certificate{{Cert: first, Names: []string{"a.test"}}, {Cert: newCert(t, "second"), Names: []string{"b.test"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Certificate(&tls.ClientHelloInfo{ServerName: "zzz.test"}); got != first {
		t.Errorf("without a default the first certificate answers unknown names")
	}
	var none *Store
	if _, err := none.Certificate(&tls.ClientHelloInfo{}); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("nil store: %v", err)
	}
	if _, err := none.ConfigForClient(nil); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("nil store config: %v", err)
	}
	if !none.Empty() || s.Empty() {
		t.Errorf("Empty: nil=%v full=%v", none.Empty(), s.Empty())
	}
	empty, _ := New(Options{})
	if !empty.Empty() {
		t.Errorf("a store without certificates is not Empty")
	}
	if _, err := New(Options{Certificates: []Certificate{{Cert: first, Names: []string{"a.test"}}, {Cert: first, Names: []string{"A.test"}}}}); err == nil {
		t.Errorf("a duplicate server name was accepted")
	}
}

func TestConfigSettings(t *testing.T) {
	pool := x509.NewCertPool()
	s, _ := New(Options{Certificates: []Certificate{{Cert: newCert(t, "a"), Names: []string{"a.test"}}},
		MinVersion: tls.VersionTLS13, ClientCAs: pool})
	c, _ := s.ConfigForClient(nil)
	if c.MinVersion != tls.VersionTLS13 || c.ClientAuth != tls.VerifyClientCertIfGiven || c.ClientCAs != pool {
		t.Errorf("config %+v", c)
	}
	if strings.Join(c.NextProtos, ",") != "h2,http/1.1" {
		t.Errorf("ALPN %v", c.NextProtos)
	}
	if !s.MTLS() {
		t.Errorf("MTLS() false with client CAs")
	}
	s, _ = New(Options{ClientCAs: pool, RequireClientCert: true, ACME: fakeACME{}})
	c, _ = s.ConfigForClient(nil)
	if c.MinVersion != tls.VersionTLS12 || c.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("defaults %+v", c)
	}
	if c.NextProtos[len(c.NextProtos)-1] != ProtoACMETLS {
		t.Errorf("ACME store does not offer %s: %v", ProtoACMETLS, c.NextProtos)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	// no SANs: the common name is the name
	cf, kf := testpki.New(t, "certs test CA").Issue(t, "legacy", testpki.IPs()).Files()
	got, names, err := Load(cf, kf)
	if err != nil || got.Leaf == nil || len(names) != 1 || names[0] != "legacy" {
		t.Fatalf("Load: %v %v", names, err)
	}
	if _, _, err := Load(cf, cf); err == nil || !strings.Contains(err.Error(), cf) {
		t.Errorf("a certificate as its own key: %v", err)
	}
	if _, _, err := Load(filepath.Join(dir, "missing"), kf); err == nil {
		t.Errorf("missing file loaded")
	}
	if _, err := LoadCAs(kf); err == nil {
		t.Errorf("a key file loaded as CAs")
	}
	if p, err := LoadCAs(cf); err != nil || p == nil {
		t.Errorf("LoadCAs: %v", err)
	}
	// A damaged certificate in a bundle is an error, not a CA silently
	// left out (x509.CertPool.AppendCertsFromPEM would skip it).
	good, err := os.ReadFile(cf)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.pem")
	bad := append(append([]byte{}, good...), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"...)
	if err := os.WriteFile(damaged, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCAs(damaged); err == nil || !strings.Contains(err.Error(), "certificate 2") {
		t.Errorf("a bundle with a damaged certificate: %v", err)
	}
}

func TestVerifiedSubject(t *testing.T) {
	c := newCert(t, "alice")
	if VerifiedSubject(nil) != "" || VerifiedSubject(&tls.ConnectionState{}) != "" {
		t.Errorf("subject without a verified chain")
	}
	cs := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c.Leaf}}}
	if got := VerifiedSubject(cs); got != "CN=alice" {
		t.Errorf("subject %q", got)
	}
}

// BenchmarkCertificate is the per-handshake SNI lookup.
func BenchmarkCertificate(b *testing.B) {
	s, _ := New(Options{Certificates: []Certificate{{Cert: newCert(b, "a"), Names: []string{"a.test"}}, {Cert: newCert(b, "w"), Names: []string{"*.w.test"}}}})
	hello := &tls.ClientHelloInfo{ServerName: "x.w.test"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Certificate(hello); err != nil {
			b.Fatal(err)
		}
	}
}
