package proxyproto_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/proxyproto"
)

// outcome is what Accept made of some bytes.
type outcome struct {
	err           error
	remote, local net.Addr
	rest          []byte // read from the returned connection
}

// acceptAll runs Accept over data served chunk bytes per read and reads
// the returned connection to its end.
func acceptAll(t *testing.T, data []byte, chunk int, peer net.Addr) outcome {
	t.Helper()
	fc := newFakeConn(data, chunk, peer)
	got, err := proxyproto.Accept(fc, balancers, time.Second)
	if !fc.deadline.IsZero() {
		t.Fatalf("Accept(%q) left the read deadline at %v", data, fc.deadline)
	}
	if err != nil {
		if got != nil {
			t.Fatalf("Accept(%q) = %v, %v: a connection with an error", data, got, err)
		}
		return outcome{err: err}
	}
	rest, err := io.ReadAll(got)
	if err != nil {
		t.Fatalf("reading after Accept(%q): %v", data, err)
	}
	return outcome{remote: got.RemoteAddr(), local: got.LocalAddr(), rest: rest}
}

// FuzzAccept feeds arbitrary bytes, split arbitrarily, from a trusted or
// an untrusted peer. Accept must not panic; an error comes with no
// connection and is one of the package's; a success hands on exactly the
// bytes after the header, consumes bytes only for a trusted peer's header,
// and changes addresses only then; and how the bytes are split into reads
// changes nothing.
func FuzzAccept(f *testing.F) {
	seeds := [][]byte{
		[]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" + request),
		[]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\nGET"),
		[]byte("PROXY UNKNOWN\r\n"),
		[]byte("PROXY UNKNOWN ::1 ::1 1 1\r\n"),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n"),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n"),
		[]byte("PROXY "),
		v2(0x21, 0x11, inet4(), tlv(0x01, "h2"), []byte(request)),
		v2(0x21, 0x21, inet6(), tlv(0x05, "id")),
		v2(0x20, 0x00),
		v2(0x21, 0x31, make([]byte, 216)),
		v2(0x21, 0x12, inet4()),
		v2(0x21, 0x11, inet4(), []byte{0x01, 0x00, 0x09}),
		append(v2(0x21, 0x11, inet4()), v2(0x21, 0x11, inet4())...), // a second header is data
		[]byte(v2Sig + "\x21\x11\xff\xff"),
		[]byte(request),
		[]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
		[]byte("\x16\x03\x01\x00\x05hello"),
		[]byte("PROX"),
		nil,
	}
	for _, s := range seeds {
		f.Add(s, uint8(1), true)
		f.Add(s, uint8(7), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, trusted bool) {
		peer := untrustedPeer
		if trusted {
			peer = trustedPeer
		}
		whole := acceptAll(t, data, len(data)+1, peer)
		split := acceptAll(t, data, int(chunk%16)+1, peer)

		if (whole.err == nil) != (split.err == nil) ||
			whole.err != nil && errors.Is(whole.err, proxyproto.ErrUntrusted) != errors.Is(split.err, proxyproto.ErrUntrusted) {
			t.Fatalf("Accept(%q): %v read whole, %v split in %d", data, whole.err, split.err, chunk%16+1)
		}
		if whole.err != nil {
			if !errors.Is(whole.err, proxyproto.ErrInvalidHeader) && !errors.Is(whole.err, proxyproto.ErrUntrusted) {
				t.Fatalf("Accept(%q) error = %v, want ErrInvalidHeader or ErrUntrusted", data, whole.err)
			}
			if errors.Is(whole.err, proxyproto.ErrUntrusted) && trusted {
				t.Fatalf("Accept(%q) from a trusted peer = %v", data, whole.err)
			}
			return
		}
		if !bytes.Equal(whole.rest, split.rest) || whole.remote.String() != split.remote.String() || whole.local.String() != split.local.String() {
			t.Fatalf("Accept(%q): read whole gives %v %v %q, split %v %v %q",
				data, whole.remote, whole.local, whole.rest, split.remote, split.local, split.rest)
		}
		if !bytes.HasSuffix(data, whole.rest) {
			t.Fatalf("Accept(%q) hands on %q, not a suffix of the input", data, whole.rest)
		}
		consumed := len(data) - len(whole.rest)
		header := bytes.HasPrefix(data, []byte("PROXY ")) || bytes.HasPrefix(data, []byte(v2Sig))
		if consumed > 0 && !(trusted && header) {
			t.Fatalf("Accept(%q) consumed %d bytes that are not a trusted peer's header", data, consumed)
		}
		if (whole.remote != peer || whole.local != realLocal) && consumed == 0 {
			t.Fatalf("Accept(%q) reports %v, %v without a header", data, whole.remote, whole.local)
		}
	})
}
