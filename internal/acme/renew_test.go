package acme_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keelproxy/keel/internal/acme"
	"github.com/keelproxy/keel/internal/testpebble"
)

// renewRuns numbers the runs of TestRenew in this process (-count).
var renewRuns atomic.Int32

// TestRenew lets a real ACME server (pebble) issue certificates that live
// 24 seconds and checks that the Manager renews one before it expires:
// handshakes get a certificate with a new serial number and a later
// NotAfter, and storage holds that same certificate. Then it stops the
// Manager and checks that nothing it started is left.
//
// The timings are certmagic's: with RenewCheckInterval 1s, its
// maintenance checks every second and renews a certificate once a third
// of its lifetime is left (8s of 24s, so 16s after issuance), or once
// less than 5 intervals (5s) are left, whichever comes first. A fresh
// certificate is in neither window, so issuance does not loop into
// renewals. A failed renewal would only be retried a minute later
// (certmagic's first backoff step), past the deadline: the test needs the
// first renewal attempt to succeed, as it does against pebble.
func TestRenew(t *testing.T) {
	const validity = 24 * time.Second
	// certmagic keeps renewal backoff and job deduplication per name in
	// package variables; a fresh name per run (-count) keeps one run's
	// state away from the next.
	name := fmt.Sprintf("renew-%d.keel.test", renewRuns.Add(1))
	srv := startTLSServer(t)
	ca := testpebble.StartWith(t, srv.Port, testpebble.Options{CertValidity: validity})
	storage := t.TempDir()

	before := goleak.IgnoreCurrent()
	m := mustNew(t, acme.Options{
		DirectoryURL:       ca.Directory,
		Domains:            []string{name},
		Storage:            storage,
		TLSPort:            srv.Port,
		CARoots:            ca.Roots,
		RenewCheckInterval: time.Second,
		Logger:             testLogger(t),
	})
	srv.manager.Store(m)
	stop := runManager(t, m)
	roots := ca.IssuerRoots()

	first := waitLeaf(t, srv, name, roots)
	if life := first.NotAfter.Sub(first.NotBefore); life > validity+time.Second {
		t.Fatalf("first certificate lives %v, want pebble's %v: certificateValidityPeriod ignored?", life, validity)
	}
	if got := storedLeaf(t, storage, name); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("stored serial %x, want the served %x", got.SerialNumber, first.SerialNumber)
	}
	challenges := srv.challenges.Load()

	// The renewed certificate must be served while the first is still
	// valid: handshakes that still get the first one keep the loop
	// going until it expires.
	var renewed *x509.Certificate
	for renewed == nil {
		leaf, err := srv.leaf(name, roots)
		switch {
		case err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0:
			renewed = leaf
		case time.Now().After(first.NotAfter):
			t.Fatalf("no renewed certificate for %s before the first expired at %v: last handshake: serial %v, error %v",
				name, first.NotAfter.Format(time.TimeOnly), serialOf(leaf), err)
		default:
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed NotAfter %v, want after the first's %v", renewed.NotAfter, first.NotAfter)
	}
	if got := renewed.DNSNames; len(got) != 1 || got[0] != name {
		t.Errorf("renewed DNSNames = %q, want [%q]", got, name)
	}
	if got := storedLeaf(t, storage, name); got.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Errorf("stored serial %x after renewal, want the renewed %x", got.SerialNumber, renewed.SerialNumber)
	}
	// Pebble reuses a valid authorization half of the time, so the
	// renewal may or may not have needed a new validation.
	t.Logf("renewed %s %v after issuance, %v before the first expired; %d more tls-alpn-01 handshakes",
		name, renewed.NotBefore.Sub(first.NotBefore), first.NotAfter.Sub(renewed.NotBefore),
		srv.challenges.Load()-challenges)

	stop()
	// As in TestIssueRestartStop: only what certmagic keeps beyond Run.
	checkNoLeaks(t, before, certmagicKeeps...)
}

// storedLeaf returns the first certificate of <name>.crt under root, the
// file certmagic's FileStorage keeps the certificate chain of name in.
func storedLeaf(t testing.TB, root, name string) *x509.Certificate {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name+".crt" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("storage has %d files %s.crt (%s), want 1", len(files), name, strings.Join(files, ", "))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate first", files[0])
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
	return leaf
}

func serialOf(c *x509.Certificate) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%x", c.SerialNumber)
}
