package proxyproto_test

import (
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/proxyproto"
)

// BenchmarkAccept measures the cost every accepted connection pays: the
// header from a balancer and a first request behind it, and a direct
// connection (a health check) with no header.
func BenchmarkAccept(b *testing.B) {
	for _, bb := range []struct {
		desc string
		in   []byte
	}{
		{"v2", append(v2(0x21, 0x11, inet4(), tlv(0x01, "h2")), request...)},
		{"v1", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" + request)},
		{"none", []byte(request)},
	} {
		b.Run(bb.desc, func(b *testing.B) {
			b.ReportAllocs()
			fc := newFakeConn(bb.in, 1<<20, trustedPeer)
			for b.Loop() {
				fc.off = 0
				if _, err := proxyproto.Accept(fc, balancers, time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
