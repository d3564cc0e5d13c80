package h1client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countedServer is an httptest server on 127.0.0.1 that counts the
// connections it accepted and closed.
type countedServer struct {
	*httptest.Server
	opened, closed atomic.Int32
}

func newCountedServer(t testing.TB, h http.Handler) *countedServer {
	t.Helper()
	s := &countedServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// addr returns the server's host:port.
func (s *countedServer) addr() string { return s.Listener.Addr().String() }

// rawServer is a TCP server on 127.0.0.1 whose connections are handled by
// a test function, for upstreams that misbehave on purpose. Cleanup closes
// the listener and every connection and waits for the handlers.
type rawServer struct {
	l        net.Listener
	accepted atomic.Int32
	wg       sync.WaitGroup

	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func newRawServer(t testing.TB, handle func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns = append(s.conns, c)
			s.accepted.Add(1)
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		s.closed = true
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) addr() string { return s.l.Addr().String() }

// rawRequest is a request as a raw server read it off the wire.
type rawRequest struct {
	line   string   // request line
	fields []string // field lines, as sent
	body   string   // body bytes exactly as sent (chunk framing included)
}

func (r *rawRequest) field(name string) string {
	for _, f := range r.fields {
		if k, v, _ := strings.Cut(f, ":"); strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// readRawHead reads a request line and field lines.
func readRawHead(br *bufio.Reader) (*rawRequest, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	r := &rawRequest{line: strings.TrimSuffix(line, "\r\n")}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimSuffix(l, "\r\n")
		if l == "" {
			return r, nil
		}
		r.fields = append(r.fields, l)
	}
}

// readRawBody reads the body r announces, keeping its framing bytes.
func readRawBody(br *bufio.Reader, r *rawRequest) error {
	if strings.EqualFold(r.field("Transfer-Encoding"), "chunked") {
		var b strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			b.WriteString(line)
			size, err := strconv.ParseInt(strings.TrimSuffix(line, "\r\n"), 16, 64)
			if err != nil {
				return err
			}
			if size == 0 {
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return err
					}
					b.WriteString(l)
					if l == "\r\n" {
						r.body = b.String()
						return nil
					}
				}
			}
			data := make([]byte, size+2)
			if _, err := io.ReadFull(br, data); err != nil {
				return err
			}
			b.Write(data)
		}
	}
	if cl := r.field("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil {
			return err
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(br, data); err != nil {
			return err
		}
		r.body = string(data)
	}
	return nil
}

// readRawRequest reads one whole request.
func readRawRequest(br *bufio.Reader) (*rawRequest, error) {
	r, err := readRawHead(br)
	if err != nil {
		return nil, err
	}
	return r, readRawBody(br, r)
}

// get sends a GET for path through tr and returns the response with its
// body read and closed.
func get(t testing.TB, tr *Transport, path string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+tr.Address+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(tr, req)
}

// do round-trips req and reads and closes the body.
func do(tr http.RoundTripper, req *http.Request) (*http.Response, string, error) {
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// streamBody is a request body that is not a known in-memory reader (so
// the transport streams it and http.NewRequest sets no GetBody). It counts
// its Close calls.
type streamBody struct {
	r      io.Reader
	closes atomic.Int32
}

func newStreamBody(s string) *streamBody { return &streamBody{r: strings.NewReader(s)} }

func (b *streamBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *streamBody) Close() error               { b.closes.Add(1); return nil }

// patternReader yields n bytes of a repeating pattern.
type patternReader struct{ n, off int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		p[i] = byte('a' + (r.off+int64(i))%26)
	}
	r.off += int64(len(p))
	return len(p), nil
}

// failingReader yields prefix, then fails with err.
type failingReader struct {
	prefix string
	err    error
	done   bool
}

func (r *failingReader) Read(p []byte) (int, error) {
	if !r.done {
		r.done = true
		return copy(p, r.prefix), nil
	}
	return 0, r.err
}

// blockingReader yields prefix, then blocks until release is closed, then
// reports EOF.
type blockingReader struct {
	prefix  string
	read    chan struct{} // closed after the prefix was read
	release chan struct{}
	sent    bool
}

func newBlockingReader(prefix string) *blockingReader {
	return &blockingReader{prefix: prefix, read: make(chan struct{}), release: make(chan struct{})}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		close(r.read)
		return copy(p, r.prefix), nil
	}
	<-r.release
	return 0, io.EOF
}

// newReq builds a request to tr's address or fails the test.
func newReq(t testing.TB, ctx context.Context, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// errSentinel stands for a caller's own body error, such as a size limit.
var errSentinel = errors.New("sentinel: body too large")

// describe formats an error with its type for failure messages.
func describe(err error) string { return fmt.Sprintf("%v (%T)", err, err) }
