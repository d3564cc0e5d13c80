package upstream

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/keelproxy/keel/internal/certs"
)

// TLSConfig configures TLS from the proxy to a pool's endpoints (SPEC
// section 3, `pools[].tls`). The zero value is valid: system roots, SNI and
// verification against each endpoint's host, no client certificate. It is
// comparable, and part of an endpoint's identity.
//
// Build reads the files named here on every call, so that a bad file
// rejects the config and rotated contents (same paths) give the endpoints
// fresh connections; see PoolConfig.TLS.
type TLSConfig struct {
	// ServerName is sent as SNI and verified against the certificate;
	// empty means each endpoint's host. An IP address (given here or as
	// the endpoint's host) is verified against the certificate's IP SANs
	// and not sent as SNI, which RFC 6066 section 3 forbids.
	ServerName string
	// CAFile is a PEM bundle of the CA certificates that verify the
	// endpoints; empty means the system roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate (chain) and its
	// key, for upstreams that require mTLS; both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any certificate the endpoint presents.
	// For tests and migrations only: it forfeits protection against an
	// active attacker.
	InsecureSkipVerify bool
}

// Fixed upstream TLS settings.
const (
	// tlsSessionCacheSize sizes each endpoint transport's session cache.
	// crypto/tls keys it by server name (or address), which is one key per
	// endpoint: a few slots are plenty.
	tlsSessionCacheSize = 8
	// alpnHTTP1 and alpnHTTP2 are the ALPN protocol IDs offered for
	// protocol http1 and http2 (RFC 7301, RFC 9113 section 3.2).
	alpnHTTP1 = "http/1.1"
	alpnHTTP2 = "h2"
)

// errNoHTTP2 is the DialError cause when a protocol http2 endpoint does not
// select h2 by ALPN. Falling back to HTTP/1.1 would silently change what
// the backend sees (gRPC needs HTTP/2 trailers), so the connection fails as
// a connect failure instead.
var errNoHTTP2 = errors.New("tls: server did not negotiate HTTP/2 (ALPN h2); use protocol http1 for this pool")

// tlsID is the TLS part of an endpoint's key: whether the endpoint speaks
// TLS, the settings, and a fingerprint of the files' contents, so that a
// rotated certificate behind an unchanged path gives the endpoint a new
// entry (and new connections). The zero value is plaintext. Comparable.
type tlsID struct {
	on          bool
	settings    TLSConfig
	fingerprint [sha256.Size]byte
}

// tlsMaterial is a pool's TLS settings with its files loaded and parsed;
// immutable once built.
type tlsMaterial struct {
	id    tlsID
	roots *x509.CertPool    // nil: the system roots
	certs []tls.Certificate // the client certificate, or nil
}

// loadTLS reads and parses the files of c. Every error names the field
// and file at fault, so an operator can fix the config the apply rejected.
func loadTLS(c TLSConfig) (*tlsMaterial, error) {
	m := &tlsMaterial{id: tlsID{on: true, settings: c}}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("tls: set cert_file and key_file together")
	}
	h := sha256.New()
	// Length-prefixed, so that bytes moving from one file to the next
	// cannot keep the fingerprint.
	add := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	if c.CAFile != "" {
		b, err := readTLSFile("ca_file", c.CAFile)
		if err != nil {
			return nil, err
		}
		if m.roots, err = certs.ParseCAs(b); err != nil {
			return nil, &FieldError{Field: "tls.ca_file", Detail: c.CAFile, Err: err}
		}
		add(b)
	} else {
		add(nil)
		if !c.InsecureSkipVerify {
			// Load the system roots now, in the apply, instead of inside
			// the first handshake's dial timeout: parsing a few hundred
			// certificates takes tens of milliseconds, seconds on a busy
			// machine. crypto/x509 caches the pool for the process.
			if _, err := x509.SystemCertPool(); err != nil {
				return nil, fmt.Errorf("tls: system roots: %w (set ca_file)", err)
			}
		}
	}
	if c.CertFile != "" {
		cb, err := readTLSFile("cert_file", c.CertFile)
		if err != nil {
			return nil, err
		}
		kb, err := readTLSFile("key_file", c.KeyFile)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(cb, kb)
		if err != nil {
			return nil, &FieldError{Field: "tls.cert_file", Detail: c.CertFile + ", key_file " + c.KeyFile, Err: err}
		}
		m.certs = []tls.Certificate{cert}
		add(cb)
		add(kb)
	}
	h.Sum(m.id.fingerprint[:0])
	return m, nil
}

// readTLSFile reads one file of a TLS block. The error names the config
// field and the path once (os's own error repeats the path).
func readTLSFile(field, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &FieldError{Field: "tls." + field, Detail: path, Err: err}
	}
	return b, nil
}

// FieldError is a Build error caused by one setting of the pool, so the
// config layer can report it at its path (pools[i].tls.ca_file) instead
// of as a message about the pool.
type FieldError struct {
	// Field is the setting's path below the pool, e.g. "tls.ca_file".
	Field string
	// Detail names what was wrong with it (usually a file path).
	Detail string
	Err    error
}

// Error reads "tls: ca_file /etc/ca.pem: no such file or directory".
func (e *FieldError) Error() string {
	f := strings.Replace(e.Field, ".", ": ", 1)
	return f + " " + e.Detail + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

// clientConfig returns the tls.Config of one endpoint at address
// ("host:port", normalised) speaking proto. Each endpoint gets its own,
// with its own session cache, so reconnects resume (one round trip and no
// certificate verification) and a released endpoint's tickets go with it.
func (m *tlsMaterial) clientConfig(address string, proto Protocol) *tls.Config {
	name := m.id.settings.ServerName
	if name == "" {
		// normalizeAddress validated the address; an IP host stays an IP,
		// which crypto/tls verifies against IP SANs and leaves out of SNI.
		name, _, _ = net.SplitHostPort(address)
	}
	alpn := alpnHTTP1
	if proto == HTTP2 {
		alpn = alpnHTTP2
	}
	return &tls.Config{
		ServerName:         name,
		RootCAs:            m.roots,
		Certificates:       m.certs,
		InsecureSkipVerify: m.id.settings.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{alpn},
		ClientSessionCache: tls.NewLRUClientSessionCache(tlsSessionCacheSize),
	}
}
