package h1client

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/testpki"
)

// serverCert returns a certificate for 127.0.0.1 and a pool that trusts
// its issuer.
func serverCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca := testpki.New(t, "h1client test CA")
	return ca.Issue(t, "h1client test").TLS, ca.Pool
}

// newRawTLSServer is newRawServer speaking TLS with cert: handle gets the
// server side of each handshaken connection.
func newRawTLSServer(t testing.TB, cert tls.Certificate, handle func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	return newRawServer(t, func(c net.Conn, _ *bufio.Reader) {
		tc := tls.Server(c, cfg)
		defer tc.Close()
		if tc.Handshake() != nil {
			return
		}
		handle(tc, bufio.NewReader(tc))
	})
}

// tlsDial returns a Transport.Dial that completes a TLS handshake trusting
// pool, the way the upstream package dials HTTPS endpoints.
func tlsDial(pool *x509.CertPool) func(context.Context, string, string) (net.Conn, error) {
	cfg := &tls.Config{
		RootCAs:            pool,
		ServerName:         "127.0.0.1",
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := tls.Dialer{Config: cfg}
		return d.DialContext(ctx, network, addr)
	}
}

// TestTLSPeerGone: the idle probe of a *tls.Conn sees what the TLS layer
// buffered as well as what the socket holds. The "buffered" case is why
// probing the TCP connection alone is wrong: a record that arrived with
// the last one read sits in crypto/tls, and the socket is empty.
func TestTLSPeerGone(t *testing.T) {
	t.Parallel()
	cert, pool := serverCert(t)
	actions := make(chan string, 1)
	written := make(chan struct{}, 1)
	s := newRawTLSServer(t, cert, func(c net.Conn, br *bufio.Reader) {
		// The greeting, read by the client, settles the stream: whatever
		// crypto/tls sends after the handshake (session tickets) comes
		// before it, as it comes before a response in real use.
		_, _ = io.WriteString(c, "hi")
		switch <-actions {
		case "wait":
		case "write":
			_, _ = io.WriteString(c, "x")
		case "close":
			return // close_notify, then FIN
		case "buffered":
			// Two records; the client reads the first only.
			_, _ = io.WriteString(c, "A")
			_, _ = io.WriteString(c, "B")
		}
		written <- struct{}{}
		_, _ = io.Copy(io.Discard, br)
	})
	tests := []struct {
		action string
		want   bool
	}{{"wait", false}, {"write", true}, {"close", true}, {"buffered", true}}
	for _, tt := range tests {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: version, MaxVersion: version}}
			nc, err := d.DialContext(context.Background(), "tcp", s.addr())
			if err != nil {
				t.Fatal(err)
			}
			tc := nc.(*tls.Conn)
			var hi [2]byte
			if _, err := io.ReadFull(tc, hi[:]); err != nil {
				t.Fatal(err)
			}
			actions <- tt.action
			var p prober
			p.init(tc)
			name := tt.action + " TLS " + strconv.Itoa(int(version-tls.VersionTLS10)+10)
			switch {
			case tt.action == "buffered":
				<-written
				time.Sleep(20 * time.Millisecond) // both records reach the socket
				var b [1]byte
				if _, err := tc.Read(b[:]); err != nil || b[0] != 'A' {
					t.Fatalf("%s: Read = %q, %v; want A", name, b[:], err)
				}
				var sock prober
				sock.init(tc.NetConn())
				if sock.peerGone() {
					t.Fatalf("%s: the socket is not empty; the test did not set up what it means to", name)
				}
				if !p.peerGone() {
					t.Errorf("%s: peerGone with a record buffered in crypto/tls = false, want true", name)
				}
			case tt.want:
				if tt.action != "close" {
					<-written
				}
				eventually(t, "peerGone after "+name, p.peerGone)
			default:
				<-written
				time.Sleep(20 * time.Millisecond)
				for i := range 3 {
					if p.peerGone() {
						t.Errorf("%s: peerGone #%d on an open, silent connection = true, want false", name, i)
					}
				}
				// The probe leaves the connection usable: no sticky
				// timeout, no deadline left behind.
				if _, err := io.WriteString(tc, "still there"); err != nil {
					t.Errorf("%s: Write after the probe: %v", name, err)
				}
			}
			tc.Close()
		}
	}
}

// TestTLSKeepAlive: over TLS, sequential requests share one connection
// (every reuse is probed, and session tickets and the like are not taken
// for an upstream that went away), and a new connection resumes the
// session through Dial's session cache.
func TestTLSKeepAlive(t *testing.T) {
	t.Parallel()
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		var opened atomic.Int32
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.Proto+" resumed="+strconv.FormatBool(r.TLS.DidResume))
		}))
		ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				opened.Add(1)
			}
		}
		ts.TLS = &tls.Config{MaxVersion: version}
		ts.StartTLS()
		t.Cleanup(ts.Close)
		pool := x509.NewCertPool()
		pool.AddCert(ts.Certificate())
		tr := &Transport{Address: ts.Listener.Addr().String(), Dial: tlsDial(pool)}
		t.Cleanup(tr.CloseIdleConnections)
		for i := range 20 {
			if _, body, err := get(t, tr, "/"); err != nil || body != "HTTP/1.1 resumed=false" {
				t.Fatalf("version %x: GET %d = %q, %v; want HTTP/1.1 on the first connection", version, i, body, err)
			}
		}
		if n := opened.Load(); n != 1 {
			t.Errorf("version %x: server saw %d connections for 20 sequential requests, want 1", version, n)
		}
		tr.CloseIdleConnections()
		if _, body, err := get(t, tr, "/"); err != nil || body != "HTTP/1.1 resumed=true" {
			t.Errorf("version %x: GET on a new connection = %q, %v; want a resumed session", version, body, err)
		}
	}
}

// TestTLSIdleProbe: an unsolicited 408 an upstream wrote on an idle TLS
// connection is not taken for the answer to the next request.
func TestTLSIdleProbe(t *testing.T) {
	t.Parallel()
	cert, pool := serverCert(t)
	testUnsolicited408(t, "TLS ",
		func(h func(net.Conn, *bufio.Reader)) *rawServer { return newRawTLSServer(t, cert, h) },
		func(addr string) *Transport { return &Transport{Address: addr, Dial: tlsDial(pool)} })
}

// TestReadAheadNotReused: bytes an upstream sent past a response, in the
// same segment, are read ahead into the connection's buffer, where neither
// probe looks; such a connection is not reused either.
func TestReadAheadNotReused(t *testing.T) {
	t.Parallel()
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRawRequest(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+
				"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		}
	})
	tr := &Transport{Address: s.addr()}
	t.Cleanup(tr.CloseIdleConnections)
	for i := range 2 {
		resp, body, err := get(t, tr, "/")
		if err != nil || resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("GET %d = %v %q %v, want 200 ok", i, resp, body, err)
		}
	}
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2 (none reused after a read-ahead)", n)
	}
}
