package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var benchBody = []byte("hello, world\n")

// tinyHandler is the benchmark's handler: a few header fields and a
// short body, like a health check or a small API answer.
func tinyHandler(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	_, _ = w.Write(benchBody)
}

// watchingHandler also watches its context, as a proxy's transport does.
func watchingHandler(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
		return
	default:
	}
	tinyHandler(w, r)
}

// benchRequest is what a typical HTTP client sends for a GET.
const benchRequest = "GET /api/v1/items?id=42 HTTP/1.1\r\nHost: bench.example\r\n" +
	"User-Agent: bench/1.0\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n"

// BenchmarkKeepAliveGET compares h1 and net/http serving sequential
// keep-alive GETs on one loopback connection. The client is a minimal
// raw reader, identical for both, so the difference is the server's.
// Run: go test -run '^$' -bench KeepAlive -benchtime 1s ./internal/server/h1
func BenchmarkKeepAliveGET(b *testing.B) {
	for _, hc := range []struct {
		name string
		h    http.HandlerFunc
	}{{"tiny", tinyHandler}, {"watchctx", watchingHandler}} {
		b.Run("h1/"+hc.name, func(b *testing.B) {
			s := &Server{Handler: hc.h}
			addr, stop := benchServe(b, s.Serve, func() { _ = s.Shutdown(context.Background()) })
			defer stop()
			benchKeepAlive(b, addr)
		})
		b.Run("nethttp/"+hc.name, func(b *testing.B) {
			s := &http.Server{Handler: hc.h, ReadHeaderTimeout: 10 * time.Second,
				IdleTimeout: time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
			addr, stop := benchServe(b, s.Serve, func() { _ = s.Shutdown(context.Background()) })
			defer stop()
			benchKeepAlive(b, addr)
		})
	}
}

// BenchmarkKeepAliveFloor is the same exchange against a canned-response
// server that parses nothing: the loopback and scheduling cost that no
// HTTP server can go below. Subtract it to compare server costs.
func BenchmarkKeepAliveFloor(b *testing.B) {
	ln := listen(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n" +
			"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 13\r\n\r\nhello, world\n")
		for {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}()
	benchKeepAlive(b, ln.Addr().String())
	ln.Close()
	<-done
}

func benchServe(b *testing.B, serveFn func(net.Listener) error, shutdown func()) (string, func()) {
	ln := listen(b)
	done := make(chan error, 1)
	go func() { done <- serveFn(ln) }()
	return ln.Addr().String(), func() {
		shutdown()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			b.Errorf("Serve = %v", err)
		}
	}
}

func benchKeepAlive(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 16<<10)
	req := []byte(benchRequest)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := discardResponse(br); err != nil {
			b.Fatal(err)
		}
	}
	// Wall time on a shared machine is mostly loopback latency and
	// scheduling; process CPU time (client and server, user and system)
	// is the steadier measure of what the server costs.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU returns the CPU time this process has used, in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// discardResponse reads one Content-Length-framed response without
// allocating.
func discardResponse(br *bufio.Reader) error {
	cl := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first && !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
			return errors.New("bad status line: " + string(line))
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			cl = 0
			for _, d := range bytes.TrimSpace(v) {
				cl = cl*10 + int(d-'0')
			}
		}
	}
	if cl < 0 {
		return errors.New("no Content-Length")
	}
	_, err := br.Discard(cl)
	return err
}

// BenchmarkReadHead measures parsing a typical request head.
func BenchmarkReadHead(b *testing.B) {
	p := newTestParser()
	r := strings.NewReader(benchRequest)
	br := bufio.NewReaderSize(r, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRequest)))
	for i := 0; i < b.N; i++ {
		r.Reset(benchRequest)
		br.Reset(r)
		ex := new(exchange) // as the server does: URL and values live in it
		h := head{urlBuf: &ex.url, vals: ex.vals[:]}
		if err := p.readHead(br, &h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChunkedBody measures decoding a chunked body of 64 chunks.
func BenchmarkChunkedBody(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 64; i++ {
		sb.WriteString(strconv.FormatInt(1024, 16) + "\r\n" + strings.Repeat("x", 1024) + "\r\n")
	}
	sb.WriteString("0\r\n\r\n")
	in := sb.String()
	r := strings.NewReader(in)
	h := &head{chunked: true, contentLength: -1}
	b.ReportAllocs()
	b.SetBytes(64 << 10)
	buf := make([]byte, 32<<10)
	for i := 0; i < b.N; i++ {
		r.Reset(in)
		body, _ := newTestBody(r, 4096, h)
		for {
			_, err := body.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
