package proxyproto_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/proxyproto"
)

var (
	trustedPeer   = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1).To4(), Port: 40000}
	untrustedPeer = &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9).To4(), Port: 5555}
	realLocal     = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2).To4(), Port: 8080}
	balancers     = proxyproto.NewTrusted([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
)

// request is what follows the header in most cases: it must come out of
// the returned connection intact.
const request = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

const v2Sig = "\r\n\r\n\x00\r\nQUIT\n"

// v2 builds a version 2 header from its version/command and
// family/protocol bytes and the parts of its payload.
func v2(verCmd, fam byte, payload ...[]byte) []byte {
	p := bytes.Join(payload, nil)
	h := append([]byte(v2Sig), verCmd, fam, byte(len(p)>>8), byte(len(p)))
	return append(h, p...)
}

// inet4 is an AF_INET address block: 192.0.2.1:56324 -> 198.51.100.2:443.
func inet4() []byte {
	return []byte{192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb}
}

// inet6 is an AF_INET6 address block: [2001:db8::1]:1 -> [2001:db8::2]:65535.
func inet6() []byte {
	b := make([]byte, 36)
	copy(b, netip.MustParseAddr("2001:db8::1").AsSlice())
	copy(b[16:], netip.MustParseAddr("2001:db8::2").AsSlice())
	copy(b[32:], []byte{0, 1, 0xff, 0xff})
	return b
}

// tlv encodes one TLV.
func tlv(typ byte, value string) []byte {
	return append([]byte{typ, byte(len(value) >> 8), byte(len(value))}, value...)
}

// fakeConn serves data at most chunk bytes per Read, then io.EOF, and
// records the read deadline. It is safe for concurrent use.
type fakeConn struct {
	mu       sync.Mutex
	data     []byte
	off      int
	chunk    int
	reads    int
	deadline time.Time
	raddr    net.Addr
}

func newFakeConn(data []byte, chunk int, peer net.Addr) *fakeConn {
	return &fakeConn{data: data, chunk: chunk, raddr: peer}
}

func (c *fakeConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	if c.off == len(c.data) {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), c.chunk)], c.data[c.off:])
	c.off += n
	return n, nil
}

func (c *fakeConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return realLocal }
func (c *fakeConn) RemoteAddr() net.Addr             { return c.raddr }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}

// consumed returns how many bytes were read from c.
func (c *fakeConn) consumed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.off
}

// chunkSizes split every input several ways: one byte per read up to all
// at once.
var chunkSizes = []int{1, 2, 3, 5, 13, 1 << 20}

func TestAcceptHeader(t *testing.T) {
	t.Parallel()
	const real = ""                                          // want the real address
	maxTLVs := tlv(0x04, strings.Repeat("x", 216+4096-12-3)) // PP2_TYPE_NOOP up to the cap
	tests := []struct {
		desc        string
		header      []byte
		remote, loc string
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), "192.0.2.1:56324", "198.51.100.2:443"},
		{"v1 tcp4 port zero", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 0 0\r\n"), "192.0.2.1:0", "198.51.100.2:0"},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"), "[2001:db8::1]:1", "[2001:db8::2]:65535"},
		{"v1 tcp6 longest", []byte("PROXY TCP6 " + strings.Repeat("ffff:", 7) + "ffff " + strings.Repeat("FFFF:", 7) + "FFFE 65535 65535\r\n"),
			"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535"},
		{"v1 tcp6 ipv4-mapped", []byte("PROXY TCP6 ::ffff:192.0.2.1 ::1 80 443\r\n"), "192.0.2.1:80", "[::1]:443"},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), real, real},
		{"v1 unknown longest", []byte("PROXY UNKNOWN " + strings.Repeat("ffff:", 7) + "ffff " + strings.Repeat("ffff:", 7) + "ffff 65535 65535\r\n"), real, real},
		{"v1 unknown garbage ignored", []byte("PROXY UNKNOWN what ever\r\n"), real, real},
		{"v2 inet", v2(0x21, 0x11, inet4()), "192.0.2.1:56324", "198.51.100.2:443"},
		{"v2 inet with TLVs", v2(0x21, 0x11, inet4(), tlv(0x01, "h2"), tlv(0x02, "example.com"), tlv(0x04, "")), "192.0.2.1:56324", "198.51.100.2:443"},
		{"v2 inet with 1000-byte TLV", v2(0x21, 0x11, inet4(), tlv(0xe0, strings.Repeat("v", 1000))), "192.0.2.1:56324", "198.51.100.2:443"},
		{"v2 inet with TLVs up to the cap", v2(0x21, 0x11, inet4(), maxTLVs), "192.0.2.1:56324", "198.51.100.2:443"},
		{"v2 inet6", v2(0x21, 0x21, inet6()), "[2001:db8::1]:1", "[2001:db8::2]:65535"},
		{"v2 inet6 with TLVs", v2(0x21, 0x21, inet6(), tlv(0x05, "unique-id")), "[2001:db8::1]:1", "[2001:db8::2]:65535"},
		{"v2 local", v2(0x20, 0x00), real, real},
		{"v2 local ignores family and block", v2(0x20, 0xff, []byte{1, 2, 3, 4, 5, 6, 7}), real, real},
		{"v2 local with inet block", v2(0x20, 0x11, inet4(), tlv(0x01, "h2")), real, real},
		{"v2 unspec family", v2(0x21, 0x01, []byte{9, 9, 9}), real, real},
		{"v2 unspec protocol", v2(0x21, 0x10, []byte{9}), real, real},
		{"v2 inet dgram", v2(0x21, 0x12, inet4()), real, real},
		{"v2 unix stream", v2(0x21, 0x31, make([]byte, 216), tlv(0x01, "h2")), real, real},
	}
	for _, tt := range tests {
		for _, chunk := range chunkSizes {
			fc := newFakeConn(append(bytes.Clone(tt.header), request...), chunk, trustedPeer)
			got, err := proxyproto.Accept(fc, balancers, time.Second)
			if err != nil {
				t.Fatalf("%s, chunk %d: Accept() error = %v", tt.desc, chunk, err)
			}
			wantRemote, wantLocal := tt.remote, tt.loc
			if wantRemote == real {
				wantRemote, wantLocal = trustedPeer.String(), realLocal.String()
			} else if _, ok := got.RemoteAddr().(*net.TCPAddr); !ok {
				t.Errorf("%s: RemoteAddr() is %T, want *net.TCPAddr", tt.desc, got.RemoteAddr())
			}
			if r, l := got.RemoteAddr().String(), got.LocalAddr().String(); r != wantRemote || l != wantLocal {
				t.Errorf("%s, chunk %d: addresses = %s, %s, want %s, %s", tt.desc, chunk, r, l, wantRemote, wantLocal)
			}
			rest, err := io.ReadAll(got)
			if err != nil || string(rest) != request {
				t.Errorf("%s, chunk %d: read after header = %q, %v, want %q", tt.desc, chunk, rest, err, request)
			}
			if !fc.deadline.IsZero() {
				t.Errorf("%s: read deadline left at %v, want cleared", tt.desc, fc.deadline)
			}
		}
	}
}

func TestAcceptNoHeader(t *testing.T) {
	t.Parallel()
	inputs := []struct {
		desc string
		in   string
	}{
		{"http/1.1", request},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"tls client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
		{"webdav method sharing PRO", "PROPFIND / HTTP/1.1\r\n\r\n"},
		{"PROXY without space", "PROXYZ"},
		{"v2 signature diverging late", "\r\n\r\n\x00\r\nQUIX\n"},
		{"header prefix then close", "PROX"},
		{"nothing then close", ""},
	}
	for _, peer := range []*net.TCPAddr{trustedPeer, untrustedPeer} {
		for _, tt := range inputs {
			for _, chunk := range chunkSizes {
				fc := newFakeConn([]byte(tt.in), chunk, peer)
				got, err := proxyproto.Accept(fc, balancers, time.Second)
				if err != nil {
					t.Fatalf("%s from %v: Accept() error = %v", tt.desc, peer, err)
				}
				if r := got.RemoteAddr(); r != peer {
					t.Errorf("%s: RemoteAddr() = %v, want the real %v", tt.desc, r, peer)
				}
				if l := got.LocalAddr(); l != realLocal {
					t.Errorf("%s: LocalAddr() = %v, want the real %v", tt.desc, l, realLocal)
				}
				if rest, err := io.ReadAll(got); err != nil || string(rest) != tt.in {
					t.Errorf("%s, chunk %d: read = %q, %v, want %q", tt.desc, chunk, rest, err, tt.in)
				}
			}
		}
	}
}

// TestAcceptNoHeaderReadsOnce checks that a non-header connection is
// decided on its first segment, however short, and that an empty one
// comes back unwrapped.
func TestAcceptNoHeaderReadsOnce(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"G", "GET", request} {
		fc := newFakeConn([]byte(in), len(in), trustedPeer)
		if _, err := proxyproto.Accept(fc, balancers, time.Second); err != nil {
			t.Fatalf("Accept(%q) error = %v", in, err)
		}
		if fc.reads != 1 {
			t.Errorf("Accept(%q) made %d reads, want 1", in, fc.reads)
		}
	}
	fc := newFakeConn(nil, 1, trustedPeer)
	if got, err := proxyproto.Accept(fc, balancers, time.Second); err != nil || got != net.Conn(fc) {
		t.Errorf("Accept(empty) = %T, %v, want the conn itself", got, err)
	}
}

func TestAcceptUntrustedHeader(t *testing.T) {
	t.Parallel()
	for _, in := range [][]byte{
		[]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" + request),
		[]byte("PROXY garbage that is never read"),
		[]byte("PROXY "),
		v2(0x21, 0x11, inet4()),
		v2(0x20, 0x00), // even LOCAL: only balancers speak the protocol
		[]byte(v2Sig),
	} {
		for _, chunk := range chunkSizes {
			fc := newFakeConn(in, chunk, untrustedPeer)
			got, err := proxyproto.Accept(fc, balancers, time.Second)
			if !errors.Is(err, proxyproto.ErrUntrusted) || got != nil {
				t.Fatalf("Accept(%q) from untrusted = %v, %v, want nil, ErrUntrusted", in, got, err)
			}
			if chunk == 1 && fc.consumed() > len(v2Sig) {
				t.Errorf("Accept(%q) read %d bytes, want no more than needed to see a header", in, fc.consumed())
			}
		}
	}
	// The zero Trusted trusts nobody, balancers included.
	fc := newFakeConn(v2(0x21, 0x11, inet4()), 64, trustedPeer)
	if _, err := proxyproto.Accept(fc, proxyproto.Trusted{}, time.Second); !errors.Is(err, proxyproto.ErrUntrusted) {
		t.Errorf("Accept() with zero Trusted error = %v, want ErrUntrusted", err)
	}
}

func TestAcceptMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		in   []byte
	}{
		{"v1 missing CR", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n")},
		{"v1 missing LF", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\rGET")},
		{"v1 CR inside", []byte("PROXY TCP4 1.2.3.4\r 5.6.7.8 80 443\r\n")},
		{"v1 truncated", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r")},
		{"v1 prefix only", []byte("PROXY ")},
		{"v1 too long", []byte("PROXY UNKNOWN " + strings.Repeat("a", 100) + "\r\n")},
		{"v1 no CRLF at all", []byte("PROXY " + strings.Repeat("x", 200))},
		{"v1 control byte", []byte("PROXY TCP4 1.2.3.4\x00 5.6.7.8 80 443\r\n")},
		{"v1 non-ascii byte", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\xff\r\n")},
		{"v1 empty protocol", []byte("PROXY \r\n")},
		{"v1 unknown protocol", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 80 443\r\n")},
		{"v1 UNKNOWN glued", []byte("PROXY UNKNOWNX\r\n")},
		{"v1 lowercase protocol", []byte("PROXY tcp4 1.2.3.4 5.6.7.8 80 443\r\n")},
		{"v1 missing port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n")},
		{"v1 extra field", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 80 443 1\r\n")},
		{"v1 double space", []byte("PROXY TCP4  1.2.3.4 5.6.7.8 80 443\r\n")},
		{"v1 trailing space", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 80 443 \r\n")},
		{"v1 protocol only", []byte("PROXY TCP4\r\n")},
		{"v1 port too big", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 443\r\n")},
		{"v1 port six digits", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 100000 443\r\n")},
		{"v1 port negative", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 -1 443\r\n")},
		{"v1 port leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n")},
		{"v1 port plus", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +80 443\r\n")},
		{"v1 port hex", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 80 0x1bb\r\n")},
		{"v1 ipv4 short", []byte("PROXY TCP4 1.2.3 5.6.7.8 80 443\r\n")},
		{"v1 ipv4 leading zero", []byte("PROXY TCP4 1.2.3.04 5.6.7.8 80 443\r\n")},
		{"v1 ipv4 out of range", []byte("PROXY TCP4 1.2.3.256 5.6.7.8 80 443\r\n")},
		{"v1 hostname", []byte("PROXY TCP4 example.com 5.6.7.8 80 443\r\n")},
		{"v1 tcp4 with ipv6", []byte("PROXY TCP4 ::1 ::2 80 443\r\n")},
		{"v1 tcp4 with ipv4-mapped", []byte("PROXY TCP4 ::ffff:1.2.3.4 5.6.7.8 80 443\r\n")},
		{"v1 tcp6 with ipv4", []byte("PROXY TCP6 1.2.3.4 5.6.7.8 80 443\r\n")},
		{"v1 tcp6 with zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 80 443\r\n")},
		{"v1 tcp6 bad", []byte("PROXY TCP6 2001:db8:::1 ::1 80 443\r\n")},
		{"v2 version 1", v2(0x11, 0x11, inet4())},
		{"v2 version 3", v2(0x31, 0x11, inet4())},
		{"v2 version 0", v2(0x01, 0x11, inet4())},
		{"v2 command 2", v2(0x22, 0x11, inet4())},
		{"v2 command 15", v2(0x2f, 0x11, inet4())},
		{"v2 family 4", v2(0x21, 0x41, inet4())},
		{"v2 protocol 3", v2(0x21, 0x13, inet4())},
		{"v2 inet short", v2(0x21, 0x11, inet4()[:11])},
		{"v2 inet6 with inet block", v2(0x21, 0x21, inet4())},
		{"v2 unix short", v2(0x21, 0x31, make([]byte, 215))},
		{"v2 too long", append(v2(0x21, 0x11, inet4(), tlv(0x04, strings.Repeat("x", 216+4096-12-3+1))), request...)},
		{"v2 TLV stray bytes", v2(0x21, 0x11, inet4(), []byte{0x01, 0x00})},
		{"v2 TLV overrun", v2(0x21, 0x11, inet4(), []byte{0x01, 0x00, 0x05, 'h', '2'})},
		{"v2 TLV overrun after a good one", v2(0x21, 0x21, inet6(), tlv(0x01, "h2"), []byte{0x02, 0xff, 0xff})},
		{"v2 fixed part truncated", []byte(v2Sig + "\x21\x11\x00")},
		{"v2 payload truncated", v2(0x21, 0x11, inet4())[:20]},
		{"v2 large payload truncated", v2(0x21, 0x11, inet4(), tlv(0x04, strings.Repeat("x", 1000)))[:600]},
	}
	for _, tt := range tests {
		for _, chunk := range chunkSizes {
			fc := newFakeConn(tt.in, chunk, trustedPeer)
			got, err := proxyproto.Accept(fc, balancers, time.Second)
			if !errors.Is(err, proxyproto.ErrInvalidHeader) || got != nil {
				t.Fatalf("%s, chunk %d: Accept(%q) = %v, %v, want nil, ErrInvalidHeader", tt.desc, chunk, tt.in, got, err)
			}
			if !fc.deadline.IsZero() {
				t.Errorf("%s: read deadline left at %v, want cleared", tt.desc, fc.deadline)
			}
		}
	}
}

// TestAcceptStopsEarly checks that a malformed header is refused as soon
// as its bytes show it, not after the timeout: a sender that waits for an
// answer gets one (spec 2.1: abort as soon as possible).
func TestAcceptStopsEarly(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"PROXY TCP4 1.2.3.4\x00",
		"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n",
		"PROXY TCP4 1.2.3.4\rX",
		v2Sig + "\x11\x11\x00\x0c",
		v2Sig + "\x21\x11\xff\xff",
	} {
		c := startPipe(t, trustedPeer)
		c.send(in)
		start := time.Now()
		_, err := proxyproto.Accept(c, balancers, 10*time.Second)
		if !errors.Is(err, proxyproto.ErrInvalidHeader) {
			t.Errorf("Accept(%q) error = %v, want ErrInvalidHeader", in, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Accept(%q) took %v, want an answer without waiting for more", in, d)
		}
	}
}

// pipeConn is one end of a net.Pipe with TCP addresses, so that Trusted
// can place its peer; peer is the other end.
type pipeConn struct {
	net.Conn
	peer    net.Conn
	raddr   net.Addr
	writers sync.WaitGroup // send's goroutines, waited for at cleanup
}

// send writes s to the pipe from the peer's side without waiting for it
// to be read (a pipe write blocks until then). Closing the pipe at
// cleanup ends a write nobody reads.
func (c *pipeConn) send(s string) {
	c.writers.Go(func() { _, _ = c.peer.Write([]byte(s)) })
}

func (c *pipeConn) RemoteAddr() net.Addr { return c.raddr }
func (c *pipeConn) LocalAddr() net.Addr  { return realLocal }

func startPipe(t *testing.T, peer net.Addr) *pipeConn {
	t.Helper()
	a, b := net.Pipe()
	c := &pipeConn{Conn: a, peer: b, raddr: peer}
	t.Cleanup(func() {
		a.Close()
		b.Close()
		c.writers.Wait()
	})
	return c
}

func TestAcceptTimeout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		desc string
		peer net.Addr
		in   string
	}{
		{"half v1 header", trustedPeer, "PROXY TCP4 192.0.2.1 198"},
		{"half v2 fixed part", trustedPeer, v2Sig + "\x21"},
		{"half v2 payload", trustedPeer, string(v2(0x21, 0x11, inet4())[:22])},
		{"half v2 signature", trustedPeer, v2Sig[:7]},
		{"half v1 prefix from untrusted", untrustedPeer, "PROX"},
		{"nothing", trustedPeer, ""},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			c := startPipe(t, tt.peer)
			c.send(tt.in)
			got, err := proxyproto.Accept(c, balancers, 50*time.Millisecond)
			if !errors.Is(err, os.ErrDeadlineExceeded) || got != nil {
				t.Fatalf("Accept() = %v, %v, want nil, os.ErrDeadlineExceeded", got, err)
			}
			if errors.Is(err, proxyproto.ErrInvalidHeader) {
				t.Errorf("Accept() error = %v, want a timeout, not ErrInvalidHeader", err)
			}
		})
	}
}

// TestAcceptShortSegment checks that a client that sends a few bytes and
// waits is not stalled waiting for as many bytes as a signature, and that
// the read deadline does not outlive Accept.
func TestAcceptShortSegment(t *testing.T) {
	t.Parallel()
	for _, peer := range []net.Addr{trustedPeer, untrustedPeer} {
		c := startPipe(t, peer)
		c.send("GET")
		// Waiting for more than "GET" would run into the timeout.
		got, err := proxyproto.Accept(c, balancers, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("Accept() error = %v, want the connection decided on %q", err, "GET")
		}
		time.Sleep(150 * time.Millisecond) // past the Accept deadline
		c.send(" /")
		buf := make([]byte, 8)
		var read []byte
		for len(read) < len("GET /") {
			n, err := got.Read(buf)
			if err != nil {
				t.Fatalf("Read() after Accept error = %v, want the deadline cleared", err)
			}
			read = append(read, buf[:n]...)
		}
		if string(read) != "GET /" {
			t.Errorf("read %q, want %q", read, "GET /")
		}
	}
}

// TestAcceptTCP runs a header through a real loopback connection and checks
// that the returned connection half-closes and splices like the TCP
// connection under it.
func TestAcceptTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	if _, err := client.Write(append(v2(0x21, 0x11, inet4(), tlv(0x01, "h2")), "ping"...)); err != nil {
		t.Fatal(err)
	}
	loopback := proxyproto.NewTrusted([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	got, err := proxyproto.Accept(server, loopback, 5*time.Second)
	if err != nil {
		t.Fatalf("Accept() error = %v", err)
	}
	if r := got.RemoteAddr().String(); r != "192.0.2.1:56324" {
		t.Errorf("RemoteAddr() = %s, want 192.0.2.1:56324", r)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(got, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v, want ping", buf, err)
	}

	rf, ok := got.(io.ReaderFrom)
	if !ok {
		t.Fatalf("%T is not an io.ReaderFrom", got)
	}
	if n, err := rf.ReadFrom(strings.NewReader("pong")); n != 4 || err != nil {
		t.Fatalf("ReadFrom() = %d, %v, want 4, nil", n, err)
	}
	cw, ok := got.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T has no CloseWrite", got)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite() error = %v", err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(client); err != nil || string(b) != "pong" {
		t.Fatalf("client read %q, %v, want pong then EOF from the half-close", b, err)
	}
	// Half-closed, not closed: the client can still send.
	if _, err := client.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(got, buf); err != nil || string(buf) != "more" {
		t.Errorf("read after CloseWrite %q, %v, want more", buf, err)
	}
}

func TestCloseWriteUnsupported(t *testing.T) {
	t.Parallel()
	fc := newFakeConn([]byte("GET"), 16, trustedPeer)
	got, err := proxyproto.Accept(fc, balancers, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cw, ok := got.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T has no CloseWrite", got)
	}
	if err := cw.CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWrite() error = %v, want errors.ErrUnsupported", err)
	}
}

func TestReadNoAlloc(t *testing.T) {
	data := append(v2(0x21, 0x11, inet4()), make([]byte, 1<<20)...)
	got, err := proxyproto.Accept(newFakeConn(data, 512, trustedPeer), balancers, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	if n := testing.AllocsPerRun(100, func() { _, _ = got.Read(buf) }); n != 0 {
		t.Errorf("Read() allocates %v times per call, want 0", n)
	}
}

// TestConcurrentReads checks that Reads racing over the leftovers neither
// race nor lose or repeat a byte.
func TestConcurrentReads(t *testing.T) {
	t.Parallel()
	payload := bytes.Repeat([]byte{'x'}, 200)
	got, err := proxyproto.Accept(newFakeConn(append(v2(0x21, 0x11, inet4()), payload...), 1<<20, trustedPeer), balancers, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 3)
			for {
				n, err := got.Read(buf)
				mu.Lock()
				total += n
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if total != len(payload) {
		t.Errorf("concurrent Reads returned %d bytes, want %d", total, len(payload))
	}
}

func TestTrusted(t *testing.T) {
	t.Parallel()
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::ffff:192.168.0.0/112"), // 192.168.0.0/16
		netip.MustParsePrefix("2001:db8::/32"),
		netip.PrefixFrom(netip.MustParseAddr("172.16.9.9"), 12), // unmasked
		{}, // invalid: matches nothing
	}
	tr := proxyproto.NewTrusted(prefixes)
	prefixes[0] = netip.MustParsePrefix("0.0.0.0/0") // NewTrusted copied them
	tests := []struct {
		desc string
		addr net.Addr
		want bool
	}{
		{"in ipv4 prefix", &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3).To4(), Port: 1}, true},
		{"outside", &net.TCPAddr{IP: net.IPv4(11, 0, 0, 1).To4(), Port: 1}, false},
		{"ipv4-mapped peer", &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 1}, true},
		{"ipv4-mapped prefix", &net.TCPAddr{IP: net.IPv4(192, 168, 3, 4).To4()}, true},
		{"unmasked prefix", &net.TCPAddr{IP: net.IPv4(172, 31, 0, 1).To4()}, true},
		{"ipv6", &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 1}, true},
		{"ipv6 with zone", &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Zone: "eth0"}, true},
		{"ipv6 outside", &net.TCPAddr{IP: net.ParseIP("2001:db9::7")}, false},
		{"udp addr", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}, true},
		{"unix", &net.UnixAddr{Name: "/run/keel.sock", Net: "unix"}, false},
		{"tcp without IP", &net.TCPAddr{Port: 1}, false},
		{"typed nil", (*net.TCPAddr)(nil), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := tr.Contains(tt.addr); got != tt.want {
			t.Errorf("%s: Contains(%v) = %v, want %v", tt.desc, tt.addr, got, tt.want)
		}
	}
	if (proxyproto.Trusted{}).Contains(trustedPeer) {
		t.Errorf("zero Trusted.Contains(%v) = true, want false", trustedPeer)
	}
	if proxyproto.NewTrusted(nil).Contains(trustedPeer) {
		t.Errorf("NewTrusted(nil).Contains(%v) = true, want false", trustedPeer)
	}
}
