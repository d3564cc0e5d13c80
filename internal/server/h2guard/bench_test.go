package h2guard

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// benchRequests is the number of requests in the benchmark stream.
const benchRequests = 1000

// h2loadStream is what h2load sends for benchRequests GET requests on one
// connection: its SETTINGS, a connection WINDOW_UPDATE and one HEADERS
// frame per request (after the first, every field is a dynamic table
// reference).
func h2loadStream() []byte {
	s := newStream()
	s.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<30 - 1})
	must(s.fr.WriteWindowUpdate(0, 1<<30-1-65535))
	for i := range benchRequests {
		s.headers(uint32(2*i+1), true,
			":method", "GET", ":path", "/", ":scheme", "http", ":authority", "127.0.0.1:8080",
			"user-agent", "h2load nghttp2/1.64.0")
	}
	return s.bytes()
}

// BenchmarkGuard reads a stream of benchRequests small GET requests
// directly and through the guard, in 4 KiB reads and as the HTTP/2
// server reads (an http2.Framer decoding header blocks: a 9-byte read
// then a payload read per frame).
func BenchmarkGuard(b *testing.B) {
	in := h2loadStream()
	read4096 := func(r io.Reader) {
		buf := make([]byte, 4096)
		for {
			if _, err := r.Read(buf); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				return
			}
		}
	}
	framer := func(r io.Reader) {
		if _, err := io.ReadFull(r, make([]byte, len(http2.ClientPreface))); err != nil {
			b.Fatal(err)
		}
		fr := http2.NewFramer(io.Discard, r)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		for {
			if _, err := fr.ReadFrame(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				return
			}
		}
	}
	for _, rd := range []struct {
		name string
		f    func(io.Reader)
	}{{"read4096", read4096}, {"framer", framer}} {
		for _, guard := range []bool{false, true} {
			name := "direct"
			if guard {
				name = "guard"
			}
			b.Run(rd.name+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				for b.Loop() {
					var c io.Reader = newChunkConn(in, 1<<20, false)
					if guard {
						c = New(c.(*chunkConn))
					}
					rd.f(c)
				}
				runtime.ReadMemStats(&ms1)
				reqs := float64(b.N) * benchRequests
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/reqs, "ns/req")
				b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/reqs, "allocs/req")
			})
		}
	}
}

// BenchmarkDedupeSettings measures the SETTINGS rewrite on frames with
// n entries, all distinct (the worst case of the quadratic scan) or all
// repeats of one parameter.
func BenchmarkDedupeSettings(b *testing.B) {
	for _, n := range []int{2, 10, 100, 2730} {
		for _, distinct := range []bool{true, false} {
			b.Run(fmt.Sprintf("n%d/distinct=%v", n, distinct), func(b *testing.B) {
				orig := make([]byte, 6*n)
				for i := range n {
					id := 4
					if distinct {
						id = 0x100 + i
					}
					orig[6*i], orig[6*i+1] = byte(id>>8), byte(id)
				}
				p := make([]byte, len(orig))
				for b.Loop() {
					copy(p, orig)
					dedupeSettings(p)
				}
				if !distinct && !bytes.Equal(p[len(p)-6:], orig[len(orig)-6:]) {
					b.Fatal("last entry renamed")
				}
			})
		}
	}
}
