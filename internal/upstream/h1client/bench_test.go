package h1client

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// cannedResponse is what cannedServer answers to every request: a typical
// small API response.
const cannedResponse = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Thu, 26 Nov 2026 01:28:23 GMT\r\n" +
	"Cache-Control: no-store\r\nX-Request-Id: 6f0d2c1e-8a4b-4c39-9b7e-2f1a5d3c4b6a\r\nContent-Length: 16\r\n\r\n{\"status\":\"ok\"}\n"

// cannedServer answers every request on 127.0.0.1 with cannedResponse
// without parsing more than the request head's end, so that a benchmark
// measures the client rather than the server.
func cannedServer(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				resp := []byte(cannedResponse)
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
			})
		}
	})
	b.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// transports returns the two transports under comparison for addr: this
// package's and net/http's, set up as a proxy would (no compression).
func transports(addr string) []struct {
	name string
	rt   http.RoundTripper
	stop func()
} {
	h1 := &Transport{Address: addr}
	std := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 256}
	return []struct {
		name string
		rt   http.RoundTripper
		stop func()
	}{
		{"h1client", h1, h1.CloseIdleConnections},
		{"net-http", std, std.CloseIdleConnections},
	}
}

// BenchmarkRoundTrip compares a small keep-alive GET (body read and
// closed) through Transport and net/http.Transport, serially and from 50
// concurrent goroutines, against an httptest server and a canned one.
// cpu-ns/op is the process CPU time per request, servers included, which
// is what the proxy's 1.5x goal is about; run with -cpu 1 to mirror
// GOMAXPROCS=1.
func BenchmarkRoundTrip(b *testing.B) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	}))
	b.Cleanup(ts.Close)
	servers := []struct{ name, addr string }{
		{"httptest", ts.Listener.Addr().String()},
		{"canned", cannedServer(b)},
	}
	for _, srv := range servers {
		for _, tr := range transports(srv.addr) {
			for _, parallel := range []bool{false, true} {
				mode := "serial"
				if parallel {
					mode = "parallel50"
				}
				b.Run(srv.name+"/"+tr.name+"/"+mode, func(b *testing.B) {
					defer tr.stop()
					benchRoundTrip(b, tr.rt, "http://"+srv.addr+"/api/v1/status", parallel, false)
				})
			}
			// A proxy's requests carry a cancelable context (the server's
			// per-request one), which costs a context.AfterFunc.
			b.Run(srv.name+"/"+tr.name+"/serial-cancelable", func(b *testing.B) {
				defer tr.stop()
				benchRoundTrip(b, tr.rt, "http://"+srv.addr+"/api/v1/status", false, true)
			})
		}
	}
}

func benchRoundTrip(b *testing.B, rt http.RoundTripper, url string, parallel, cancelable bool) {
	one := func(req *http.Request, buf []byte) {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		resp.Body.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !cancelable {
		ctx = context.Background()
	}
	newReq := func() *http.Request {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Forwarded-For", "192.0.2.1")
		return req
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			req, buf := newReq(), make([]byte, 512)
			for pb.Next() {
				one(req, buf)
			}
		})
	} else {
		req, buf := newReq(), make([]byte, 512)
		for b.Loop() {
			one(req, buf)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkParseResponse measures reading and parsing a typical response
// head and its small body, without network.
func BenchmarkParseResponse(b *testing.B) {
	raw := strings.Repeat(cannedResponse, 1)
	rd := strings.NewReader(raw)
	br := bufio.NewReaderSize(rd, 4096)
	req := &http.Request{Method: http.MethodGet}
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(raw)
		br.Reset(rd)
		head, _, err := readHead(br)
		if err != nil {
			b.Fatal(err)
		}
		r, err := parseResponse(head, req)
		if err != nil {
			b.Fatal(err)
		}
		r.body.bind(nil, br)
		if _, err := r.body.Read(buf); err != io.EOF {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteHead measures writing a typical proxied request head.
func BenchmarkWriteHead(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "http://10.0.0.1:8080/api/v1/users/42?expand=profile", nil)
	req.Host = "api.example.com"
	for k, v := range map[string]string{
		"Accept": "application/json", "Accept-Language": "en", "X-Forwarded-For": "192.0.2.1",
		"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com", "Via": "1.1 keel",
		"X-Request-Id": "6f0d2c1e-8a4b-4c39-9b7e-2f1a5d3c4b6a", "Authorization": "Bearer abc.def.ghi",
	} {
		req.Header.Set(k, v)
	}
	bw := bufio.NewWriterSize(io.Discard, 4096)
	b.ReportAllocs()
	for b.Loop() {
		w, err := prepare(req)
		if err != nil {
			b.Fatal(err)
		}
		if err := writeHead(bw, req, &w); err != nil {
			b.Fatal(err)
		}
		bw.Reset(io.Discard)
	}
}

// BenchmarkUpload measures a 1MB streamed POST, the request-body path.
func BenchmarkUpload(b *testing.B) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(ts.Close)
	payload := bytes.Repeat([]byte("x"), 1<<20)
	for _, tr := range transports(ts.Listener.Addr().String()) {
		b.Run(tr.name, func(b *testing.B) {
			defer tr.stop()
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/", io.NopCloser(bytes.NewReader(payload)))
				req.ContentLength = int64(len(payload))
				resp, err := tr.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkPeerGone measures the liveness probe every reused connection
// pays (one non-blocking read system call).
func BenchmarkPeerGone(b *testing.B) {
	addr := cannedServer(b)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	var p prober
	p.init(nc)
	b.ReportAllocs()
	for b.Loop() {
		if p.peerGone() {
			b.Fatal("open connection reported gone")
		}
	}
}
