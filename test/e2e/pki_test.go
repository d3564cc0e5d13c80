package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// Test certificates come from internal/testpki.

// peerCN dials addr with TLS (SNI serverName, "" for none) trusting pool,
// and returns the common name of the certificate the server sent.
func peerCN(t testing.TB, addr, serverName string, pool *x509.CertPool) (string, error) {
	t.Helper()
	cfg := &tls.Config{ServerName: serverName, RootCAs: pool}
	if serverName == "" {
		cfg.ServerName = "127.0.0.1" // verification by IP SAN, no SNI sent
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}
