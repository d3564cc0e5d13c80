// Package certs is the compiled TLS side of a config snapshot: the
// certificates the data-plane listeners serve, chosen by SNI, and the
// client-certificate policy (mTLS).
//
// A Store is immutable once built and hangs off a snapshot, so an apply
// that changes certificates swaps them with everything else in one pointer
// store. Listeners never hold a Store: their tls.Config has only a
// GetConfigForClient that loads the current snapshot's Store for each new
// handshake (see Listener), so connections opened before a swap keep the
// certificate they negotiated and every later handshake sees the new one.
// Session tickets stay valid across swaps, because a tls.Config returned by
// GetConfigForClient without keys of its own uses the listener's.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// ALPN protocol ids the data-plane listener offers.
const (
	// ProtoH2 is HTTP/2 over TLS (RFC 9113).
	ProtoH2 = "h2"
	// ProtoHTTP11 is HTTP/1.1.
	ProtoHTTP11 = "http/1.1"
	// ProtoACMETLS is the tls-alpn-01 challenge protocol (RFC 8737): a
	// handshake that negotiates it only proves control of a name to an
	// ACME server and carries no HTTP.
	ProtoACMETLS = "acme-tls/1"
)

// ErrNoCertificate is returned for a handshake the store has no
// certificate for (no SNI match, no default, no ACME name).
var ErrNoCertificate = errors.New("certs: no certificate for this server name")

// ACME is an automatic-certificate manager (package acme): it answers for
// the names it Handles, the tls-alpn-01 challenge included. Implementations
// must be safe for concurrent use; they outlive snapshots.
type ACME interface {
	Handles(serverName string) bool
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// Certificate is one configured certificate and the server names it is
// served for: exact names ("api.example.com") or one-label wildcards
// ("*.example.com"), lower case.
type Certificate struct {
	Cert  *tls.Certificate
	Names []string
}

// Options builds a Store. The zero value has no certificate at all: every
// handshake fails with ErrNoCertificate.
type Options struct {
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13; zero means 1.2.
	MinVersion uint16
	// Certificates are matched by SNI in order: the first certificate
	// naming a server name exactly wins, then the first wildcard.
	Certificates []Certificate
	// Default answers handshakes no certificate matches (no SNI, an IP
	// literal, an unknown name). Nil means the first of Certificates, and
	// with none of those, a failed handshake.
	Default *tls.Certificate
	// ClientCAs, when non-nil, turns on mTLS: client certificates are
	// verified against it, required when RequireClientCert, otherwise
	// only when presented.
	ClientCAs         *x509.CertPool
	RequireClientCert bool
	// ACME, when non-nil, serves the names it handles that no configured
	// certificate names.
	ACME ACME
}

// Store selects certificates by SNI for one snapshot. Build it with New;
// the zero value and nil answer every handshake with ErrNoCertificate.
// Safe for concurrent use; immutable.
type Store struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // "example.com" for "*.example.com"
	fallback *tls.Certificate
	acme     ACME
	mtls     bool
	config   *tls.Config
}

// New builds a Store. It fails on a duplicate server name, which would make
// the choice between two certificates depend on config order by accident.
func New(o Options) (*Store, error) {
	s := &Store{
		exact:    make(map[string]*tls.Certificate),
		wildcard: make(map[string]*tls.Certificate),
		fallback: o.Default,
		acme:     o.ACME,
		mtls:     o.ClientCAs != nil,
	}
	for i, c := range o.Certificates {
		if c.Cert == nil {
			return nil, fmt.Errorf("certificate %d: nil", i)
		}
		for _, n := range c.Names {
			n = strings.ToLower(n)
			m, key := s.exact, n
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				m, key = s.wildcard, rest
			}
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("server name %q is served by two certificates", n)
			}
			m[key] = c.Cert
		}
		if s.fallback == nil {
			s.fallback = c.Cert
		}
	}
	minV := o.MinVersion
	if minV == 0 {
		minV = tls.VersionTLS12
	}
	protos := []string{ProtoH2, ProtoHTTP11}
	if o.ACME != nil {
		protos = append(protos, ProtoACMETLS)
	}
	s.config = &tls.Config{
		MinVersion:     minV,
		CipherSuites:   cipherSuites,
		NextProtos:     protos,
		GetCertificate: s.certificate,
	}
	if o.ClientCAs != nil {
		s.config.ClientCAs = o.ClientCAs
		s.config.ClientAuth = tls.VerifyClientCertIfGiven
		if o.RequireClientCert {
			s.config.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return s, nil
}

// cipherSuites are the TLS 1.2 suites offered: forward-secret AEADs only,
// the Mozilla "intermediate" set (TLS 1.3 suites are not configurable and
// all good). Go orders them by the hardware it runs on.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// MTLS reports whether client certificates are requested.
func (s *Store) MTLS() bool { return s != nil && s.mtls }

// Empty reports whether no handshake can succeed: no certificate, no
// default and no ACME manager. (Any configured certificate is also the
// fallback when there is no default, so fallback covers all three.)
func (s *Store) Empty() bool {
	return s == nil || (s.fallback == nil && s.acme == nil)
}

// ConfigForClient returns the TLS settings for a new handshake: the
// store's certificates, ALPN list and client-certificate policy. The
// returned config is shared and must not be modified.
func (s *Store) ConfigForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	if s == nil {
		return nil, ErrNoCertificate
	}
	return s.config, nil
}

// certificate picks the certificate for a handshake: a configured exact
// name, then a configured wildcard one label deep, then ACME's names (and
// its tls-alpn-01 challenge), then the default.
func (s *Store) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalizeSNI(hello.ServerName)
	if s.acme != nil && name != "" && offers(hello.SupportedProtos, ProtoACMETLS) && s.acme.Handles(name) {
		return s.acme.GetCertificate(hello)
	}
	if name != "" {
		if c := s.exact[name]; c != nil {
			return c, nil
		}
		if _, parent, ok := strings.Cut(name, "."); ok {
			if c := s.wildcard[parent]; c != nil {
				return c, nil
			}
		}
		if s.acme != nil && s.acme.Handles(name) {
			return s.acme.GetCertificate(hello)
		}
	}
	if s.fallback != nil {
		return s.fallback, nil
	}
	return nil, ErrNoCertificate
}

// Certificate is the exported form of the SNI choice, for tests and
// explain-style tooling.
func (s *Store) Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s == nil {
		return nil, ErrNoCertificate
	}
	return s.certificate(hello)
}

// normalizeSNI lower-cases a server name and drops a trailing dot. Go's
// TLS server passes SNI as sent; most clients send lower case, so the
// common case does not allocate.
func normalizeSNI(n string) string {
	n = strings.TrimSuffix(n, ".")
	for i := 0; i < len(n); i++ {
		if c := n[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(n)
		}
	}
	return n
}

func offers(protos []string, p string) bool {
	for _, q := range protos {
		if q == p {
			return true
		}
	}
	return false
}

// Load reads a PEM certificate chain and key, and returns the pair with
// its leaf parsed and the names it is valid for (DNS SANs; the subject
// common name only when there are no SANs, as legacy certificates have).
// Errors name the file at fault.
func Load(certFile, keyFile string) (*tls.Certificate, []string, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", certFile, err)
		}
	}
	names := c.Leaf.DNSNames
	if len(names) == 0 && c.Leaf.Subject.CommonName != "" && net.ParseIP(c.Leaf.Subject.CommonName) == nil {
		names = []string{c.Leaf.Subject.CommonName}
	}
	lower := make([]string, len(names))
	for i, n := range names {
		lower[i] = strings.ToLower(n)
	}
	return &c, lower, nil
}

// LoadCAs reads a PEM bundle of CA certificates, strictly (ParseCAs).
func LoadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := ParseCAs(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return pool, nil
}

// ParseCAs parses a PEM bundle of CA certificates strictly: unlike
// x509.CertPool.AppendCertsFromPEM, which skips what it cannot parse, a
// damaged certificate is an error rather than a CA silently missing.
// Blocks other than CERTIFICATE are skipped; a bundle with no certificate
// is an error.
func ParseCAs(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}

// Source returns the current Store for a new handshake; a listener calls
// it once per connection. It must be safe for concurrent use.
type Source func() *Store

// ListenerConfig returns the tls.Config of a data-plane listener: it holds
// no certificates itself and asks src for the current Store on every
// handshake. Its session-ticket keys (generated and rotated by
// crypto/tls) are shared by every Store's config, so resumption survives
// config swaps.
func ListenerConfig(src Source) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			return src().ConfigForClient(hello)
		},
	}
}

// VerifiedLeaf returns the client certificate of cs that chained to the
// configured CAs, or nil when there is none (cs nil too). A certificate
// merely presented (PeerCertificates) does not count: with
// VerifyClientCertIfGiven crypto/tls verifies what it gets, and only a
// successful verification fills VerifiedChains. The certificate is cs's:
// the caller must not modify it.
func VerifiedLeaf(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	return cs.VerifiedChains[0][0]
}

// VerifiedSubject returns the subject of a verified client certificate
// (see VerifiedLeaf), or "" when the connection has none verified.
func VerifiedSubject(cs *tls.ConnectionState) string {
	if leaf := VerifiedLeaf(cs); leaf != nil {
		return leaf.Subject.String()
	}
	return ""
}
