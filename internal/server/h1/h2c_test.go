package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// h2cServer is an h1 Server that hands prior-knowledge HTTP/2
// connections to x/net/http2, wired the way the proxy's main does.
func h2cServer(t *testing.T, h http.Handler) *testServer {
	t.Helper()
	h2s := &http2.Server{}
	base := &http.Server{Handler: h} // carries the HTTP/2 graceful-shutdown hook
	if err := http2.ConfigureServer(base, h2s); err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, H2C: func(c net.Conn, br *bufio.Reader) {
		h2s.ServeConn(&BufferedConn{Conn: c, R: br}, &http2.ServeConnOpts{Handler: h, BaseConfig: base})
	}}
	s.RegisterOnShutdown(func() {
		// With no listeners or HTTP/1 connections of its own, base
		// only starts GOAWAY on the HTTP/2 connections and returns.
		_ = base.Shutdown(context.Background())
	})
	return startServer(t, s)
}

func TestH2CPriorKnowledge(t *testing.T) {
	t.Parallel()
	ts := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s upgrade=%q", r.Proto, r.URL.Path, body, r.Header.Get("Upgrade"))
	}))
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; i < 3; i++ { // several streams on one connection
		res, err := client.Post("http://"+ts.addr+"/h2", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if want := `HTTP/2.0 /h2 body upgrade=""`; string(got) != want {
			t.Fatalf("h2c response %q, want %q", got, want)
		}
	}

	tests := []struct{ name, req, want string }{
		// Shorter than the preface: must not wait for 24 bytes.
		{"short HTTP/1.0", "GET /x HTTP/1.0\r\n\r\n", `HTTP/1.0 /x  upgrade=""`},
		{"starts like the preface", "PUT /p HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nz", `HTTP/1.1 /p z upgrade=""`},
		// RFC 7540 3.2 upgrade is never honoured: plain HTTP/1.1.
		{"Upgrade h2c ignored", "GET /u HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
			`HTTP/1.1 /u  upgrade="h2c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send(tt.req)
			res, body := c.response(methodOf(tt.req))
			if res.StatusCode != 200 || body != tt.want {
				t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, tt.want)
			}
		})
	}

	// The HTTP/2 connection is still open in tr's pool: Shutdown must
	// end it through the RegisterOnShutdown hook (GOAWAY), not wait for
	// its context.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an idle h2c connection = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
}

func TestH2CDisabledRejectsPreface(t *testing.T) {
	t.Parallel()
	ts := serve(t, okHandler)
	c := dial(t, ts.addr)
	c.send(h2Preface)
	res, _ := c.response("PRI")
	if res.StatusCode != http.StatusHTTPVersionNotSupported {
		t.Fatalf("status = %d, want 505 without H2C", res.StatusCode)
	}
}
