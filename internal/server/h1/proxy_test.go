package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestReverseProxyUnderH1 runs net/http/httputil.ReverseProxy, the model
// of the proxy's forwarding code, behind an h1 Server.
func TestReverseProxyUnderH1(t *testing.T) {
	t.Parallel()
	upstreamCancelled := make(chan error, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Trailer", "X-Body-Len")
			body, _ := io.ReadAll(r.Body)
			_, _ = w.Write(body)
			w.Header().Set("X-Body-Len", fmt.Sprint(len(body)))
		case "/slow":
			select {
			case <-r.Context().Done():
				upstreamCancelled <- r.Context().Err()
			case <-time.After(5 * time.Second):
				upstreamCancelled <- nil
			}
		case "/upgrade":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			_ = brw.Flush()
			line, _ := brw.ReadString('\n')
			_, _ = brw.WriteString("up:" + line)
			_ = brw.Flush()
		}
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	front := serve(t, rp.ServeHTTP)
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "http://" + front.addr

	t.Run("chunked request, trailers back", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < 3; i++ {
				_, _ = io.WriteString(pw, strings.Repeat("a", 1000))
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, base+"/echo", pr) // unknown length: chunked
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if len(body) != 3000 || res.Trailer.Get("X-Body-Len") != "3000" {
			t.Fatalf("body %d bytes, trailer %v; want 3000 and X-Body-Len: 3000", len(body), res.Trailer)
		}
	})

	t.Run("expect 100-continue", func(t *testing.T) {
		interim := 0
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
				interim++
				return nil
			},
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/echo", strings.NewReader("payload"))
		req.Header.Set("Expect", "100-continue")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "payload" || interim != 1 {
			t.Fatalf("body = %q after %d interim responses, want payload after exactly 1", body, interim)
		}
	})

	t.Run("upgrade through Hijack", func(t *testing.T) {
		c := dial(t, front.addr)
		c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		if head := c.rawHead(); !strings.HasPrefix(head, "HTTP/1.1 101 ") {
			t.Fatalf("head = %q", head)
		}
		c.send("hello\n")
		line, err := bufio.NewReader(c.br).ReadString('\n')
		if err != nil || line != "up:hello\n" {
			t.Fatalf("tunnel read %q, %v", line, err)
		}
	})

	t.Run("client gone cancels the upstream request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/slow", nil)
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel() // the client transport closes its connection
		}()
		if _, err := client.Do(req); !errors.Is(err, context.Canceled) {
			t.Fatalf("client error = %v", err)
		}
		select {
		case err := <-upstreamCancelled:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("upstream context error = %v, want Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("upstream request still running 5s after the client left")
		}
	})
}
