package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a Server on a loopback listener, shut down by t.Cleanup.
type testServer struct {
	*Server
	addr string
	logs *syncBuffer
}

// syncBuffer is a goroutine-safe bytes.Buffer for captured logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // for listeners Serve never took
	return ln
}

// startServer serves s (Handler set by the caller) and registers a
// cleanup that shuts it down and waits for Serve to return.
func startServer(t testing.TB, s *Server) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	if s.ErrorLog == nil {
		s.ErrorLog = slog.New(slog.NewTextHandler(logs, nil))
	}
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return &testServer{Server: s, addr: ln.Addr().String(), logs: logs}
}

func serve(t testing.TB, h http.HandlerFunc) *testServer {
	t.Helper()
	return startServer(t, &Server{Handler: h})
}

// client is a raw TCP client connection with a response reader.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// response reads one response, body included, for a request of method.
func (c *client) response(method string) (*http.Response, string) {
	c.t.Helper()
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("ReadResponse: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return res, string(b)
}

// closed reports whether the server closed the connection: the next read
// returns EOF (or a reset) and no data.
func (c *client) closed() bool {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := c.br.Read(make([]byte, 1))
	if n > 0 {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

// rawHead reads the raw response head (status line and fields).
func (c *client) rawHead() string {
	c.t.Helper()
	var sb strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			c.t.Fatalf("read head: %v (got %q)", err, sb.String())
		}
		if line == "\r\n" {
			return sb.String()
		}
	}
}

func okHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "ok")
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
