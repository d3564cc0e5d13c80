package h1

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCloseInterruptsActive(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	werr := make(chan error, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				werr <- err
				return
			}
		}
	})}
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c := dial(t, ln.Addr().String())
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n") // and never read
	<-entered
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	select {
	case err := <-werr:
		if err == nil {
			t.Fatal("write succeeded after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler still writing 5s after Close")
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after Close = %v", err)
	}
}

type ctxKey struct{}

func TestBaseAndConnContext(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	ts := startServer(t, &Server{
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), ctxKey{}, "base")
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ctxKey{}, ctx.Value(ctxKey{}).(string)+"+conn")
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Context().Value(ctxKey{}).(string)
		}),
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	c.response("GET")
	if v := <-got; v != "base+conn" {
		t.Fatalf("context value = %q, want base+conn", v)
	}
}

// flakyListener fails Accept with temporary errors before the real one.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

type tempErr struct{}

func (tempErr) Error() string   { return "temporary accept failure" }
func (tempErr) Temporary() bool { return true }
func (tempErr) Timeout() bool   { return false }

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, tempErr{}
	}
	return l.Listener.Accept()
}

func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	t.Parallel()
	ln := &flakyListener{Listener: listen(t)}
	ln.fails.Store(3)
	s := &Server{Handler: http.HandlerFunc(okHandler), ErrorLog: discardLogger()}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c := dial(t, ln.Addr().String())
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := c.response("GET"); body != "ok" {
		t.Fatalf("body = %q after accept errors", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.c.Close()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
}

func TestMisuse(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	defer ln.Close()
	if err := (&Server{}).Serve(ln); err == nil || !strings.Contains(err.Error(), "Handler") {
		t.Errorf("Serve without Handler = %v, want an error", err)
	}
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/badcode" {
			w.WriteHeader(42) // net/http panics too
		}
		if r.URL.Path == "/interim10" {
			w.WriteHeader(http.StatusEarlyHints) // not for HTTP/1.0 clients
			_, _ = io.WriteString(w, "final")
		}
	})
	c := dial(t, ts.addr)
	c.send("GET /badcode HTTP/1.1\r\nHost: a\r\n\r\n")
	if got, _ := io.ReadAll(c.br); len(got) != 0 {
		t.Errorf("invalid status code: got %q, want the connection closed", got)
	}
	c = dial(t, ts.addr)
	c.send("GET /interim10 HTTP/1.0\r\n\r\n")
	if res, body := c.response("GET"); res.StatusCode != 200 || body != "final" {
		t.Errorf("HTTP/1.0 got %d %q, want 200 final with no 103 before it", res.StatusCode, body)
	}
}

func TestIdleConnectionHoldsNoWriteBuffers(t *testing.T) {
	t.Parallel()
	ts := serve(t, okHandler)
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	c.response("GET")
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.mu.Lock()
		var idle, held int
		for sc := range ts.conns {
			if sc.state.Load() == stateIdle {
				idle++
			}
			if sc.state.Load() == stateIdle && sc.wb != nil {
				held++
			}
		}
		ts.mu.Unlock()
		if idle == 1 && held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle=%d, idle holding write buffers=%d; want 1, 0", idle, held)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := c.response("GET"); body != "ok" {
		t.Fatalf("after idle: %q", body)
	}
}

// deadlineConn records write deadlines.
type deadlineConn struct {
	net.Conn
	calls int
	last  time.Time
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.calls++
	d.last = t
	return nil
}

func TestArmWriteDeadline(t *testing.T) {
	dc := &deadlineConn{}
	c := &conn{rwc: dc, slowTimeout: 32 * time.Second}
	steps := []struct {
		name      string
		do        func()
		wantCalls int
		want      func() time.Time // zero: no deadline
	}{
		{"first write arms now+slow", func() {}, 1, func() time.Time { return time.Now().Add(32 * time.Second) }},
		{"next write keeps it", func() {}, 1, func() time.Time { return time.Now().Add(32 * time.Second) }},
		{"earlier handler deadline wins", func() {
			c.userWriteDeadline = time.Now().Add(time.Second)
			c.forceArm = true
		}, 2, func() time.Time { return time.Now().Add(time.Second) }},
		{"later handler deadline does not extend", func() {
			c.userWriteDeadline = time.Now().Add(time.Hour)
			c.forceArm = true
		}, 3, func() time.Time { return time.Now().Add(32 * time.Second) }},
		{"cleared handler deadline", func() {
			c.userWriteDeadline = time.Time{}
			c.forceArm = true
		}, 4, func() time.Time { return time.Now().Add(32 * time.Second) }},
	}
	for _, st := range steps {
		st.do()
		c.armWriteDeadline()
		if dc.calls != st.wantCalls {
			t.Errorf("%s: %d SetWriteDeadline calls, want %d", st.name, dc.calls, st.wantCalls)
		}
		if d := dc.last.Sub(st.want()); d > time.Second || d < -2*time.Second {
			t.Errorf("%s: deadline %v, want about %v", st.name, dc.last, st.want())
		}
	}
	c.slowTimeout = 0
	c.forceArm = true
	c.armWriteDeadline()
	if !dc.last.IsZero() {
		t.Errorf("no slow timeout and no handler deadline: deadline %v, want none", dc.last)
	}
}

// TestIdleWatcherWakes: after a quiet second the watcher stops ticking,
// and a watched request wakes it, so a departed client is still noticed.
func TestIdleWatcherWakes(t *testing.T) {
	t.Parallel()
	cancelled := make(chan error, 1)
	entered := make(chan struct{}, 1)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/wait" {
			return
		}
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(5 * time.Second):
			cancelled <- nil
		}
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	c.response("GET")
	deadline := time.Now().Add(5 * time.Second)
	for ts.watching.Load() {
		if time.Now().After(deadline) {
			t.Fatal("watcher still ticking after 5s without watched requests")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.send("GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	time.Sleep(20 * time.Millisecond)
	if !ts.watching.Load() {
		t.Error("watcher not woken by a watched request")
	}
	c.c.Close()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("context error = %v, want Canceled", err)
	}
}
