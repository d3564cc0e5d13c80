package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// demoConfig is the embedded example: two pools on loopback echo servers
// started by the demo itself. @STABLE@ and @CANARY@ become their addresses.
const demoConfig = `# keel demo config (embedded in "proxy demo")
routes:
  - id: canary-api
    path_prefix: /canary
    pool: canary
    rewrite: {path_prefix: /}
  - id: api-v2
    path_prefix: /api
    headers: {X-API-Version: "2"}
    pool: canary
    policy: api
  - id: api
    path_prefix: /api
    methods: [GET, HEAD, POST]
    pool: stable
    policy: api
  - id: everything-else
    methods: [GET, HEAD]
    pool: stable
policies:
  - id: api
    timeout: 5s
    body_size_limit: 1MB
pools:
  - id: stable
    balancer: round_robin
    endpoints:
      - address: @STABLE@
  - id: canary
    balancer: least_request
    endpoints:
      - address: @CANARY@
shutdown: {drain_delay: 0s, grace_period: 5s}
`

// runDemo starts two echo upstreams (stable and canary) on loopback and the
// proxy in front of them with demoConfig, and prints what to try.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxy demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "data-plane listener")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9000", "admin listener")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	stable, err := startEcho("stable")
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	defer stable.Close()
	canary, err := startEcho("canary")
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	defer canary.Close()

	cfg := strings.NewReplacer("@STABLE@", stable.Addr, "@CANARY@", canary.Addr).Replace(demoConfig)
	o := options{
		configBytes: []byte(cfg), configFormat: "yaml",
		httpAddr: *httpAddr, adminAddr: *adminAddr, enableAdmin: true,
		// The demo honours ADMIN_TOKEN like the server, so trying the
		// admin API with a token behaves as it will in production.
		adminToken: os.Getenv("ADMIN_TOKEN"),
		logJSON:    false, logLevel: *logLevel,
	}
	onReady := func(a listenerAddrs) {
		data, admin := a.data, a.admin
		fmt.Fprintf(stderr, `
keel demo is running.
  data plane: http://%[1]s     admin: http://%[2]s
  upstreams:  stable %[3]s, canary %[4]s (echo servers)

Try:
  curl -s http://%[1]s/api/users                       # route "api" -> stable
  curl -s -H 'X-API-Version: 2' http://%[1]s/api/users # header match -> canary
  curl -s http://%[1]s/canary/hello                    # prefix rewrite -> canary sees /hello
  curl -si -X DELETE http://%[1]s/api/users            # 405 with Allow
  curl -s http://%[2]s/metrics | grep proxy_requests_total
  proxy ctl status -admin-url http://%[2]s              # or: go run ./cmd/proxy ctl status ...
  proxy ctl explain -admin-url http://%[2]s -host x -path /api/users
  open http://%[2]s/ in a browser                       # the status page
Access log lines (JSON) appear on stdout. Ctrl-C stops.

`, data, admin, stable.Addr, canary.Addr)
	}
	if err := serve(ctx, o, stdout, stderr, onReady); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

// echoServer is a demo upstream that describes the request it got.
type echoServer struct {
	Addr string
	srv  *http.Server
	done chan struct{}
}

func startEcho(name string) (*echoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if ms, err := strconv.Atoi(r.URL.Query().Get("sleep_ms")); err == nil && ms > 0 && ms <= 60000 {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		n, _ := io.Copy(io.Discard, r.Body)
		hdr := map[string]string{}
		for k, v := range r.Header {
			hdr[k] = strings.Join(v, ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", name)
		json.NewEncoder(w).Encode(map[string]any{
			"upstream": name, "method": r.Method, "path": r.URL.RequestURI(),
			"host": r.Host, "headers": hdr, "body_bytes": n,
		})
	})
	e := &echoServer{Addr: ln.Addr().String(), done: make(chan struct{}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { defer close(e.done); e.srv.Serve(ln) }()
	return e, nil
}

// Close stops the echo server and waits for its goroutine.
func (e *echoServer) Close() {
	e.srv.Close()
	<-e.done
}
