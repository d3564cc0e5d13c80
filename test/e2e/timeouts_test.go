package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// waitClosed reads (and discards) from c until the peer closes it and
// returns how long that took, or fails after limit.
func waitClosed(t *testing.T, c net.Conn, br *bufio.Reader, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v, want it closed", limit)
	}
	return time.Since(start)
}

func TestServerTimeouts(t *testing.T) {
	t.Parallel()
	up := newEcho(t, "timeouts")
	p := startProxy(t, oneRoute(up.addr, "server: {read_header_timeout: 500ms, idle_timeout: 500ms}\n"))

	t.Run("slow request head is cut after read_header_timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", p.data)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /slowloris HTTP/1.1\r\nHost: t.test\r\n") // never finished
		took := waitClosed(t, c, bufio.NewReader(c), 3*time.Second)
		if took < 300*time.Millisecond {
			t.Errorf("closed after %v, want about read_header_timeout (500ms)", took)
		}
		if n := up.hits.Load(); n != 0 {
			t.Errorf("upstream got %d requests, want 0", n)
		}
	})
	t.Run("idle keep-alive connection closed after idle_timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", p.data)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for i := range 2 {
			c.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, "GET /idle HTTP/1.1\r\nHost: t.test\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d on the kept-alive connection: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d = %d, want 200", i, resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond) // well under idle_timeout
		}
		took := waitClosed(t, c, br, 3*time.Second)
		if took < 250*time.Millisecond {
			t.Errorf("idle connection closed after %v, want about idle_timeout (500ms)", took)
		}
	})
}
