package h2

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fuzzSeeds returns valid frame sequences (what follows the preface).
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	build := func(fn func(fr *http2.Framer, hdr func(kv ...string) []byte)) {
		var out, hb bytes.Buffer
		fr := http2.NewFramer(&out, nil)
		fr.AllowIllegalWrites = true
		enc := hpack.NewEncoder(&hb)
		hdr := func(kv ...string) []byte {
			hb.Reset()
			for i := 0; i+1 < len(kv); i += 2 {
				enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
			}
			return bytes.Clone(hb.Bytes())
		}
		fn(fr, hdr)
		seeds = append(seeds, out.Bytes())
	}
	get := []string{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a"}
	post := []string{":method", "POST", ":scheme", "http", ":path", "/p", ":authority", "a", "content-length", "3"}

	build(func(fr *http2.Framer, hdr func(...string) []byte) {
		fr.WriteSettings()
	})
	build(func(fr *http2.Framer, hdr func(...string) []byte) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384})
		fr.WriteSettingsAck()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(get...), EndStream: true, EndHeaders: true})
		fr.WriteWindowUpdate(1, 1000)
		fr.WriteWindowUpdate(0, 1000)
	})
	build(func(fr *http2.Framer, hdr func(...string) []byte) {
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(post...), EndHeaders: true})
		fr.WriteData(1, false, []byte("ab"))
		fr.WriteData(1, true, []byte("c"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hdr(append(post[:8:8], "trailer", "x-t")...), EndHeaders: true})
		fr.WriteData(3, false, []byte("xyz"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hdr("x-t", "v"), EndStream: true, EndHeaders: true})
	})
	build(func(fr *http2.Framer, hdr func(...string) []byte) {
		fr.WriteSettings()
		block := hdr(append(get, "x-long", "0123456789abcdef0123456789abcdef")...)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:5], EndStream: true})
		fr.WriteContinuation(1, false, block[5:10])
		fr.WriteContinuation(1, true, block[10:])
	})
	build(func(fr *http2.Framer, hdr func(...string) []byte) {
		fr.WriteSettings()
		fr.WritePing(false, [8]byte{1, 2, 3})
		fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 10})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(get...), EndStream: true, EndHeaders: true})
		fr.WriteRSTStream(1, http2.ErrCodeCancel)
		fr.WriteRawFrame(0xfa, 0, 0, []byte("unknown"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hdr(append(get, "expect", "100-continue")...), EndHeaders: true})
		fr.WriteData(3, true, nil)
		fr.WriteGoAway(3, http2.ErrCodeNo, []byte("bye"))
	})
	build(func(fr *http2.Framer, hdr func(...string) []byte) {
		// Protocol errors: a connection-specific field, a bad window
		// update, DATA on an idle stream.
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(append(get, "connection", "close")...), EndStream: true, EndHeaders: true})
		fr.WriteWindowUpdate(0, 1<<31-1)
		fr.WriteData(7, true, []byte("x"))
	})
	return append(seeds, nil)
}

func FuzzServeConn(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	srv := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			w.Header().Set("Trailer", "X-N")
			w.Write(b)
			w.(http.Flusher).Flush()
			w.Header().Set("X-N", "1")
		}),
		MaxConcurrentStreams: 4,
		MaxHeaderBytes:       8 << 10,
		PrefaceTimeout:       time.Second,
		IdleTimeout:          time.Second,
		SlowClientTimeout:    time.Second,
		ErrorLog:             quietLog,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cli, sc := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ServeConn(sc)
		}()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, cli)
		}()
		cli.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := cli.Write([]byte(clientPreface)); err == nil && len(data) > 0 {
			cli.Write(data)
		}
		cli.Close()
		select {
		case <-done:
		case <-time.After(ioTimeout):
			t.Fatal("ServeConn did not return after the client closed the connection")
		}
		<-drained
	})
}
