package acme_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keelproxy/keel/internal/acme"
)

// TestIssueRestartStop obtains a certificate from a real ACME server
// (pebble) through tls-alpn-01, stops the Manager and checks that nothing
// it started is left, then serves the stored certificate from a new
// Manager on the same storage with the CA gone.
func TestIssueRestartStop(t *testing.T) {
	const name = "app.keel.test"
	srv := startTLSServer(t)
	ca := startPebble(t, srv.Port)
	opts := acme.Options{
		Email:        "ops@keel.test",
		DirectoryURL: ca.Directory,
		Domains:      []string{name},
		Storage:      filepath.Join(t.TempDir(), "acme"),
		TLSPort:      srv.Port,
		CARoots:      ca.Roots,
		Logger:       testLogger(t),
	}

	before := goleak.IgnoreCurrent()
	m1 := mustNew(t, opts)
	srv.manager.Store(m1)
	stop := runManager(t, m1)
	roots := ca.IssuerRoots()
	issued := waitLeaf(t, srv, name, roots)
	if err := m1.Run(t.Context()); err == nil { // the first is running: it issued
		t.Error("second Run = nil error, want an error")
	}
	if got := issued.DNSNames; !slices.Equal(got, []string{name}) {
		t.Errorf("leaf DNSNames = %q, want [%q]", got, name)
	}
	if n := srv.challenges.Load(); n == 0 {
		t.Error("no tls-alpn-01 handshake reached the listener, want pebble to validate through it")
	}
	if _, err := srv.leaf("other.keel.test", roots); err == nil {
		t.Error("handshake for a name outside Domains succeeded, want it to fail")
	}
	stop()
	// Only what certmagic keeps beyond Run may stay (documented on
	// Run): the idle keep-alive connections of its HTTP client to the
	// CA, pebble being still up, and its process-wide rate limiter.
	checkNoLeaks(t, before, certmagicKeeps...)

	ca.Stop() // from now on, any attempt to reach the CA fails
	challenges := srv.challenges.Load()
	before = goleak.IgnoreCurrent()
	m2 := mustNew(t, opts)
	srv.manager.Store(m2)
	stop = runManager(t, m2)
	reused := waitLeaf(t, srv, name, roots)
	if reused.SerialNumber.Cmp(issued.SerialNumber) != 0 {
		t.Errorf("after restart serial = %x, want the stored %x", reused.SerialNumber, issued.SerialNumber)
	}
	if got := srv.challenges.Load(); got != challenges {
		t.Errorf("after restart %d more validations, want none", got-challenges)
	}
	stop()
	checkNoLeaks(t, before)
	if _, err := m2.GetCertificate(&tls.ClientHelloInfo{ServerName: name}); !errors.Is(err, acme.ErrNotRunning) {
		t.Errorf("GetCertificate after Run returned: error %v, want ErrNotRunning", err)
	}
}

// TestOnDemand obtains a certificate at the first handshake for a listed
// name, and never for a name outside Domains.
func TestOnDemand(t *testing.T) {
	const name = "lazy.keel.test"
	srv := startTLSServer(t)
	ca := startPebble(t, srv.Port)
	storage := t.TempDir()
	m := mustNew(t, acme.Options{
		DirectoryURL: ca.Directory,
		Domains:      []string{name},
		Storage:      storage,
		OnDemand:     true,
		TLSPort:      srv.Port,
		CARoots:      ca.Roots,
		Logger:       testLogger(t),
	})
	srv.manager.Store(m)
	runManager(t, m)
	roots := ca.IssuerRoots()
	// Run obtains nothing by itself; give it a moment to prove it.
	time.Sleep(100 * time.Millisecond)
	if n := srv.challenges.Load(); n != 0 {
		t.Fatalf("%d validations before any handshake, want 0", n)
	}
	leaf, err := srv.leaf(name, roots) // waits for the issuance it starts
	if err != nil {
		t.Fatalf("first handshake for %s: %v", name, err)
	}
	if got := leaf.DNSNames; !slices.Equal(got, []string{name}) {
		t.Errorf("leaf DNSNames = %q, want [%q]", got, name)
	}
	_, err = m.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.keel.test"})
	if !errors.Is(err, acme.ErrNotManaged) {
		t.Errorf("GetCertificate(evil.keel.test) error = %v, want ErrNotManaged", err)
	}
	if hasFileNamed(t, storage, "evil.keel.test") {
		t.Error("storage has files for evil.keel.test, want no issuance for a name outside Domains")
	}
}

func TestNewRejects(t *testing.T) {
	valid := acme.Options{Domains: []string{"a.example.com"}, Storage: t.TempDir()}
	tests := []struct {
		name string
		edit func(*acme.Options)
		want string // part of the error
	}{
		{"wildcard", func(o *acme.Options) { o.Domains = []string{"*.example.com"} }, "dns-01"},
		{"wildcard among others", func(o *acme.Options) { o.Domains = []string{"a.example.com", "*.b.example.com"} }, "wildcard"},
		{"no domains", func(o *acme.Options) { o.Domains = nil }, "none given"},
		{"empty domain", func(o *acme.Options) { o.Domains = []string{""} }, "empty"},
		{"IP address", func(o *acme.Options) { o.Domains = []string{"192.0.2.1"} }, "IP"},
		{"trailing dot", func(o *acme.Options) { o.Domains = []string{"a.example.com."} }, "label"},
		{"space", func(o *acme.Options) { o.Domains = []string{"a example.com"} }, "not allowed"},
		{"unicode", func(o *acme.Options) { o.Domains = []string{"bücher.example"} }, "xn--"},
		{"leading hyphen", func(o *acme.Options) { o.Domains = []string{"-a.example.com"} }, "'-'"},
		{"long label", func(o *acme.Options) { o.Domains = []string{strings.Repeat("a", 64) + ".com"} }, "63"},
		{"duplicate", func(o *acme.Options) { o.Domains = []string{"a.example.com", "A.example.com"} }, "twice"},
		{"http directory", func(o *acme.Options) { o.DirectoryURL = "http://ca.example/dir" }, "https"},
		{"bad email", func(o *acme.Options) { o.Email = "ops at example" }, "email"},
		{"named email", func(o *acme.Options) { o.Email = "Ops <ops@example.com>" }, "plain address"},
		{"port", func(o *acme.Options) { o.TLSPort = 70000 }, "tls_port"},
		{"negative renew check", func(o *acme.Options) { o.RenewCheckInterval = -time.Second }, "renew check interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.edit(&o)
			m, err := acme.New(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() = %v, %v; want error containing %q", m, err, tt.want)
			}
		})
	}
	if _, err := acme.New(valid); err != nil {
		t.Errorf("New(valid) error: %v", err)
	}
}

func TestDefaultStorage(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "")
	if _, err := acme.New(acme.Options{Domains: []string{"a.example.com"}}); err == nil {
		t.Error("New without storage, XDG_DATA_HOME and HOME = nil error, want one")
	}
	t.Setenv("XDG_DATA_HOME", "/var/lib/x")
	a := acme.Options{Domains: []string{"a.example.com"}}
	b := acme.Options{Domains: []string{"a.example.com"}, Storage: "/var/lib/x/keel/acme"}
	if a.Key() != b.Key() {
		t.Errorf("Key with default storage = %s, want it equal to the explicit default %s", a.Key(), b.Key())
	}
}

func TestKey(t *testing.T) {
	base := acme.Options{Domains: []string{"b.example.com", "A.example.com"}, Storage: "/s"}
	same := acme.Options{Domains: []string{"a.example.com", "b.example.com"}, Storage: "/s",
		DirectoryURL: "https://acme-v02.api.letsencrypt.org/directory", TLSPort: 443, Logger: testLogger(t),
		RenewCheckInterval: time.Second}
	if base.Key() != same.Key() {
		t.Errorf("Key() = %s and %s, want equal for the same settings", base.Key(), same.Key())
	}
	for _, o := range []acme.Options{
		{Domains: []string{"a.example.com"}, Storage: "/s"},
		{Domains: base.Domains, Storage: "/t"},
		{Domains: base.Domains, Storage: "/s", OnDemand: true},
		{Domains: base.Domains, Storage: "/s", HTTPPort: 80},
		{Domains: base.Domains, Storage: "/s", Email: "x@example.com"},
		{Domains: base.Domains, Storage: "/s", DirectoryURL: "https://ca.example/dir"},
	} {
		if o.Key() == base.Key() {
			t.Errorf("Key(%+v) = Key(%+v), want different", o, base)
		}
	}
}

func TestNotRunning(t *testing.T) {
	m := mustNew(t, acme.Options{Domains: []string{"a.example.com"}, Storage: t.TempDir()})
	for _, tt := range []struct {
		name string
		want error
	}{
		{"A.Example.com", acme.ErrNotRunning},
		{"b.example.com", acme.ErrNotManaged},
		{"", acme.ErrNotManaged},
	} {
		if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.name}); !errors.Is(err, tt.want) {
			t.Errorf("GetCertificate(%q) error = %v, want %v", tt.name, err, tt.want)
		}
	}
	if !m.Handles("A.EXAMPLE.COM") || m.Handles("example.com") {
		t.Error("Handles: want a case-insensitive exact match")
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://a.example.com/.well-known/acme-challenge/x", nil)
	m.HTTPChallengeHandler(next).ServeHTTP(rec, req)
	if rec.Code != http.StatusTeapot {
		t.Errorf("HTTPChallengeHandler while not running: status %d, want next's %d", rec.Code, http.StatusTeapot)
	}
}

func mustNew(t testing.TB, o acme.Options) *acme.Manager {
	t.Helper()
	m, err := acme.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// runManager runs m.Run until the returned stop (or the test's end),
// which waits for Run to return nil.
func runManager(t testing.TB, m *acme.Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	var stopped bool
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitLeaf polls handshakes for name until one verifies against roots.
func waitLeaf(t testing.TB, srv *tlsServer, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		leaf, err := srv.leaf(name, roots)
		if err == nil {
			return leaf
		}
		if time.Now().After(deadline) {
			t.Fatalf("no valid certificate for %s within 15s: last handshake: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkNoLeaks waits for the goroutines started since before to end.
// The wait is long because certmagic's lock-file keeper notices a
// released lock only within 5 seconds.
// certmagicKeeps are the goroutines certmagic may leave after Run: one
// rate limiter per CA and account, process-wide and never stopped
// (certmagic's TODO), and its HTTP client's idle connections to the CA.
var certmagicKeeps = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"),
	goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("net/http.(*http2ClientConn).readLoop"),
}

func checkNoLeaks(t testing.TB, before goleak.Option, more ...goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for {
		err := goleak.Find(append([]goleak.Option{before}, more...)...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("goroutines left after Run returned: %v", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasFileNamed(t testing.TB, root, part string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		found = found || strings.Contains(path, part)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestPendingAndStopWhileRetrying runs against a CA that refuses
// connections: handshakes get ErrPending, and cancelling Run in the
// middle of certmagic's retries stops everything it started.
func TestPendingAndStopWhileRetrying(t *testing.T) {
	const name = "down.keel.test"
	before := goleak.IgnoreCurrent()
	m := mustNew(t, acme.Options{
		DirectoryURL: "https://" + freeAddr(t) + "/dir", // nothing listens
		Domains:      []string{name},
		Storage:      t.TempDir(),
		Logger:       testLogger(t),
	})
	stop := runManager(t, m)
	hello := &tls.ClientHelloInfo{ServerName: name}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := m.GetCertificate(hello)
		if errors.Is(err, acme.ErrPending) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetCertificate error = %v, want ErrPending while the CA is down", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the first attempt fail and certmagic wait to retry
	start := time.Now()
	stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v to return after cancel, want it prompt", d)
	}
	checkNoLeaks(t, before,
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"))
}

func TestRunStorageError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m := mustNew(t, acme.Options{Domains: []string{"a.example.com"}, Storage: filepath.Join(file, "acme")})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := m.Run(ctx); err == nil || !strings.Contains(err.Error(), "storage") {
		t.Errorf("Run with storage under a file = %v, want a storage error at once", err)
	}
}
