package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/testpki"
)

// proxyV2 builds a PROXY protocol v2 header for a TCP/IPv4 connection
// from src to dst.
func proxyV2(src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21, 0x11, 0, 12) // v2 PROXY, AF_INET STREAM, 12 bytes
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// TestProxyProtocol: a trusted balancer's PROXY header (v1 on the
// plaintext listener, v2 in front of TLS) sets client_ip and the
// X-Forwarded-For the upstream sees; a direct connection without a header
// still works; an untrusted peer's header is refused.
func TestProxyProtocol(t *testing.T) {
	ca := testpki.New(t, "keel test CA")
	sc, sk := ca.Issue(t, "server", testpki.DNS("pp.test")).Files()
	up := newEcho(t, "up")
	cfgFor := func(trusted string) string {
		return fmt.Sprintf(`
server: {proxy_protocol: true, trusted_proxies: [%s]}
routes: [{id: r, path_prefix: /, pool: p}]
pools: [{id: p, endpoints: [{address: %s}]}]
tls:
  certificates: [{cert_file: %s, key_file: %s}]
`, trusted, up.addr, sc, sk)
	}
	p, tlsAddr := startTLSProxy(t, nil, cfgFor("127.0.0.1/32"))

	send := func(t *testing.T, conn net.Conn, id string) echoReply {
		t.Helper()
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: pp.test\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n", id)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", id, resp.StatusCode, body)
		}
		return decodeEcho(t, body)
	}
	checkClient := func(t *testing.T, id, want string) {
		t.Helper()
		eventually(t, 5*time.Second, func() error {
			recs := p.accessByID(t, id)
			if len(recs) != 1 || recs[0]["client_ip"] != want {
				return fmt.Errorf("access log for %s: %v", id, recs)
			}
			return nil
		})
	}

	t.Run("v1 plaintext", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", p.data, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\r\n")
		rep := send(t, c, "pp-v1")
		if got := rep.Header.Get("X-Forwarded-For"); got != "203.0.113.7" {
			t.Errorf("X-Forwarded-For %q", got)
		}
		checkClient(t, "pp-v1", "203.0.113.7")
	})
	t.Run("v2 before TLS", func(t *testing.T) {
		raw, err := net.DialTimeout("tcp", tlsAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.Write(proxyV2(netip.MustParseAddrPort("198.51.100.9:4444"), netip.MustParseAddrPort("192.0.2.1:443")))
		c := tls.Client(raw, &tls.Config{ServerName: "pp.test", RootCAs: ca.Pool, NextProtos: []string{"http/1.1"}})
		rep := send(t, c, "pp-v2")
		if got := rep.Header.Get("X-Forwarded-For"); got != "198.51.100.9" {
			t.Errorf("X-Forwarded-For %q", got)
		}
		checkClient(t, "pp-v2", "198.51.100.9")
	})
	t.Run("no header", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", p.data, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send(t, c, "pp-none")
		checkClient(t, "pp-none", "127.0.0.1")
	})
	t.Run("untrusted peer", func(t *testing.T) {
		p.writeConfig(t, cfgFor("10.0.0.0/8"))
		eventually(t, 10*time.Second, func() error {
			c, err := net.DialTimeout("tcp", p.data, 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\r\nGET / HTTP/1.1\r\nHost: pp.test\r\n\r\n")
			if b, err := io.ReadAll(c); len(b) > 0 {
				return fmt.Errorf("an untrusted PROXY header was answered: %q (%v)", b, err)
			}
			return nil
		})
		c, err := net.DialTimeout("tcp", p.data, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send(t, c, "pp-untrusted-plain")
		checkClient(t, "pp-untrusted-plain", "127.0.0.1")
	})
}
