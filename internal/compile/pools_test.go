package compile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA writes a self-signed CA certificate as PEM and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "compile test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPoolTLS: a pool's tls block and https:// addresses reach the
// upstream package, which reads the files at compile time.
func TestPoolTLS(t *testing.T) {
	ca := writeCA(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name        string
		pool        string
		wantSchemes []string
		wantErr     string
	}{
		{name: "tls block", wantSchemes: []string{"https", "https"},
			pool: `{id: p, protocol: http2, tls: {server_name: b.internal, ca_file: "` + ca + `"}, endpoints: [{address: "127.0.0.1:1"}, {address: "https://127.0.0.1:2"}]}`},
		{name: "https addresses", wantSchemes: []string{"https", "http"},
			pool: `{id: p, endpoints: [{address: "https://127.0.0.1:1"}, {address: "127.0.0.1:2"}]}`},
		{name: "insecure", wantSchemes: []string{"https"},
			pool: `{id: p, tls: {insecure_skip_verify: true}, endpoints: [{address: "127.0.0.1:1"}]}`},
		{name: "missing ca_file", wantErr: "pools[0].tls.ca_file: " + missing + ": no such file or directory",
			pool: `{id: p, tls: {ca_file: "` + missing + `"}, endpoints: [{address: "127.0.0.1:1"}]}`},
		{name: "missing key_file", wantErr: "pools[0].tls.key_file: " + ca + ".key: no such file",
			pool: `{id: p, tls: {cert_file: "` + ca + `", key_file: "` + ca + `.key"}, endpoints: [{address: "127.0.0.1:1"}]}`},
		{name: "http:// under a tls block", wantErr: "plaintext but the pool has TLS settings",
			pool: `{id: p, tls: {ca_file: "` + ca + `"}, endpoints: [{address: "http://127.0.0.1:1"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, st := build(t, "pools:\n  - "+tt.pool+"\n")
			s, err := Snapshot(cfg, Deps{State: st})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Snapshot error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			eps := s.Pools["p"].Endpoints()
			if len(eps) != len(tt.wantSchemes) {
				t.Fatalf("pool has %d endpoints, want %d", len(eps), len(tt.wantSchemes))
			}
			for i, e := range eps {
				if e.Scheme() != tt.wantSchemes[i] {
					t.Errorf("endpoints[%d].Scheme() = %q, want %q", i, e.Scheme(), tt.wantSchemes[i])
				}
			}
		})
	}
}
