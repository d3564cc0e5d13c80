package acme_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/acme"
	"github.com/keelproxy/keel/internal/testpebble"
)

// startPebble starts pebble (see testpebble) validating tls-alpn-01 on
// tlsPort, where the test's TLS listener runs the Manager under test.
func startPebble(t testing.TB, tlsPort int) *testpebble.Pebble {
	t.Helper()
	return testpebble.Start(t, tlsPort)
}

// tlsServer is the proxy's TLS listener in miniature: certificates come
// from the current Manager, ALPNProto is offered for tls-alpn-01, and a
// connection ends after its handshake.
type tlsServer struct {
	Addr       string
	Port       int
	manager    atomic.Pointer[acme.Manager]
	challenges atomic.Int32 // tls-alpn-01 validation handshakes seen
}

func startTLSServer(t testing.TB) *tlsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port}
	cfg := &tls.Config{
		NextProtos: []string{"http/1.1", acme.ALPNProto},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			m := s.manager.Load()
			if m == nil {
				return nil, acme.ErrNotRunning
			}
			if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
				s.challenges.Add(1)
			}
			return m.GetCertificate(hello)
		},
	}
	tln := tls.NewListener(ln, cfg)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			})
		}
	})
	t.Cleanup(func() {
		tln.Close()
		wg.Wait()
	})
	return s
}

// leaf handshakes with the server as name, trusting roots, and returns
// the server's certificate.
func (s *tlsServer) leaf(name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"http/1.1"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// logBuffer collects a Manager's logs, shown when the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t testing.TB) *slog.Logger {
	b := new(logBuffer)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", b)
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
