package ctl

import (
	"crypto/tls"
	"strings"
	"testing"
)

// TestMTLS runs status against an admin API that requires a client
// certificate, with the right and the wrong TLS flags.
func TestCtlMTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	e := newTLSEmulator(t, p)
	notPEM := writeFile(t, "notpem.pem", "hello")
	tests := []struct {
		desc     string
		flags    []string
		wantCode int
		errHas   string
	}{
		{"ca and client certificate", []string{"-cacert", p.caFile, "-cert", p.certFile, "-key", p.keyFile}, ExitOK, ""},
		{"no client certificate", []string{"-cacert", p.caFile}, ExitFailed, "TLS with admin API at https://"},
		{"unknown server CA", []string{"-cert", p.certFile, "-key", p.keyFile}, ExitFailed, "TLS with admin API at https://"},
		{"wrong CA file", []string{"-cacert", p.otherCAFile, "-cert", p.certFile, "-key", p.keyFile}, ExitFailed, "x509: certificate signed by unknown authority"},
		{"missing CA file", []string{"-cacert", p.caFile + ".missing"}, ExitFailed, "reading -cacert"},
		{"CA file without certificates", []string{"-cacert", notPEM}, ExitFailed, "no PEM certificates"},
		{"key does not match", []string{"-cacert", p.caFile, "-cert", p.certFile, "-key", notPEM}, ExitFailed, "loading -cert/-key"},
		{"key without cert", []string{"-cacert", p.caFile, "-key", p.keyFile}, ExitUsage, "-cert and -key go together"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"status", "-admin-url", e.srv.URL}, tc.flags...)
			got := runCtl(t, args, map[string]string{"ADMIN_TOKEN": testToken}, "")
			if got.code != tc.wantCode {
				t.Errorf("Run(%q) = %d, want %d; stderr %q", tc.flags, got.code, tc.wantCode, got.stderr)
			}
			if !strings.Contains(got.stderr, tc.errHas) {
				t.Errorf("Run(%q) stderr = %q, want it to contain %q", tc.flags, got.stderr, tc.errHas)
			}
			if tc.wantCode == ExitOK && !strings.Contains(got.stdout, "version:    v1") {
				t.Errorf("Run(%q) stdout = %q, want the status block", tc.flags, got.stdout)
			}
		})
	}
}

// TestTLSConfig checks the client's TLS floor and that -cacert replaces
// the system roots instead of adding to them.
func TestCtlTLSConfig(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	tc, err := tlsConfig(Config{CACert: p.caFile, Cert: p.certFile, Key: p.keyFile})
	if err != nil {
		t.Fatalf("tlsConfig() error = %v", err)
	}
	if tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2 (%x)", tc.MinVersion, tls.VersionTLS12)
	}
	if tc.InsecureSkipVerify {
		t.Error("InsecureSkipVerify = true, want false")
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Errorf("RootCAs = %v, %d certificates; want the CA pool and one client certificate", tc.RootCAs, len(tc.Certificates))
	}
}
