package e2e

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/keelproxy/keel/internal/testpki"
)

// h2Conn opens a raw HTTP/2 connection to the TLS listener: preface and
// an empty SETTINGS sent, nothing read yet.
func h2Conn(t *testing.T, addr string, roots *tls.Config) (*tls.Conn, *http2.Framer) {
	t.Helper()
	cfg := roots.Clone()
	cfg.NextProtos = []string{"h2"}
	c := tlsDial(t, addr, cfg)
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q, want h2", p)
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// readUntilClosed reads frames until the server ends the connection (or
// the deadline passes) and returns the GOAWAY error code, if one came.
func readUntilClosed(c *tls.Conn, fr *http2.Framer, d time.Duration) (goaway http2.ErrCode, closed bool) {
	c.SetReadDeadline(time.Now().Add(d))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ne interface{ Timeout() bool }
			return goaway, !(errors.As(err, &ne) && ne.Timeout())
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			goaway = ga.ErrCode
		}
	}
}

// TestH2AbuseDefences: the HTTP/2 listener survives a CONTINUATION flood
// and a rapid-reset flood, each confined to the attacker's connection,
// and a rapid reset does not turn into an unbounded number of upstream
// requests.
func TestH2AbuseDefences(t *testing.T) {
	ca := testpki.New(t, "keel test CA")
	leaf := ca.Issue(t, "server", testpki.DNS("h2.test"))
	var upstreamHits atomic.Int64
	slow := newUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	cfg := fmt.Sprintf(`
routes: [{id: r, path_prefix: /, pool: p}]
pools: [{id: p, endpoints: [{address: %s}]}]
tls:
  certificates: [{cert_file: %s, key_file: %s}]
`, slow.addr, leaf.CertFile, leaf.KeyFile)
	_, tlsAddr := startTLSProxy(t, nil, cfg)
	clientCfg := &tls.Config{ServerName: "h2.test", RootCAs: ca.Pool}

	t.Run("CONTINUATION flood", func(t *testing.T) {
		c, fr := h2Conn(t, tlsAddr, clientCfg)
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "h2.test"}, {":path", "/"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true}); err != nil {
			t.Fatal(err)
		}
		// Endless CONTINUATION frames, never END_HEADERS: 1,000 x 10 KB of
		// literal fields is far past server.max_header_bytes.
		junk := strings.Repeat("x", 10_000)
		sent := 0
		for i := 0; i < 1000; i++ {
			block.Reset()
			enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-flood-%d", i), Value: junk, Sensitive: true})
			if err := fr.WriteContinuation(1, false, block.Bytes()); err != nil {
				break // the server hung up: good
			}
			sent++
		}
		if _, closed := readUntilClosed(c, fr, 10*time.Second); !closed {
			t.Fatalf("connection still open after %d CONTINUATION frames", sent)
		}
		if sent == 1000 {
			t.Logf("all frames were written before the close (buffered by the kernel)")
		}
	})

	t.Run("rapid reset", func(t *testing.T) {
		before := upstreamHits.Load()
		c, fr := h2Conn(t, tlsAddr, clientCfg)
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		var werr error
		const streams = 2000
		for i := 0; i < streams && werr == nil; i++ {
			id := uint32(2*i + 1)
			block.Reset()
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "h2.test"}, {":path", "/reset"}} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			if werr = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); werr == nil {
				werr = fr.WriteRSTStream(id, http2.ErrCodeCancel)
			}
		}
		code, closed := readUntilClosed(c, fr, 15*time.Second)
		if !closed {
			t.Fatalf("connection still open after %d reset streams", streams)
		}
		if code != http2.ErrCodeEnhanceYourCalm && werr == nil {
			t.Logf("closed with GOAWAY %v", code)
		}
		// Handlers in flight are capped per connection (100 streams),
		// so the upstream never sees the whole flood.
		if hits := upstreamHits.Load() - before; hits >= streams/2 {
			t.Errorf("%d of %d reset streams reached the upstream", hits, streams)
		} else {
			t.Logf("%d of %d reset streams reached the upstream; GOAWAY %v", hits, streams, code)
		}
	})

	// Other clients were never affected.
	resp, body := do(t, tlsClient(t, clientCfg, true), "GET", "https://"+tlsAddr+"/after", "", nil, nil)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("after the floods: %d %s: %s", resp.StatusCode, resp.Proto, body)
	}
}
