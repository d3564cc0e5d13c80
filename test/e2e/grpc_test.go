package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

// h2cProxy starts a grpc-go server (health + reflection), an HTTP/1 echo
// upstream and a proxy with server.h2c in front of both.
func h2cProxy(t *testing.T, server string) (*proxyServer, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	var wg sync.WaitGroup
	wg.Go(func() { gs.Serve(lis) })
	t.Cleanup(func() {
		gs.Stop()
		wg.Wait()
	})
	h1 := newEcho(t, "h1")
	p := startProxy(t, fmt.Sprintf(`server: {h2c: true%s}
routes:
  - {id: health, path_prefix: /grpc.health.v1.Health, pool: grpc}
  - {id: reflection, path_prefix: /grpc.reflection.v1.ServerReflection, pool: grpc}
  - {id: plain, path_prefix: /plain, pool: h1}
pools:
  - id: grpc
    protocol: h2c
    endpoints: [{address: %s}]
  - id: h1
    endpoints: [{address: %s}]
%s`, server, lis.Addr(), h1.addr, fastShutdown))
	return p, hs
}

func TestGRPC(t *testing.T) {
	t.Parallel()
	p, hs := h2cProxy(t, "")
	hs.SetServingStatus("keel.test", healthpb.HealthCheckResponse_NOT_SERVING)

	cc, err := grpc.NewClient("passthrough:///"+p.data, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(cc)

	t.Run("unary", func(t *testing.T) {
		tests := []struct {
			service    string
			wantStatus healthpb.HealthCheckResponse_ServingStatus
			wantCode   codes.Code
		}{
			{"", healthpb.HealthCheckResponse_SERVING, codes.OK},
			{"keel.test", healthpb.HealthCheckResponse_NOT_SERVING, codes.OK},
			{"no.such.service", 0, codes.NotFound}, // a status carried in trailers only
		}
		for _, tc := range tests {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: tc.service})
			if got := status.Code(err); got != tc.wantCode {
				t.Errorf("Check(%q) code = %v (%v), want %v", tc.service, got, err, tc.wantCode)
				continue
			}
			if err == nil && resp.GetStatus() != tc.wantStatus {
				t.Errorf("Check(%q) = %v, want %v", tc.service, resp.GetStatus(), tc.wantStatus)
			}
		}
	})

	t.Run("concurrent unary", func(t *testing.T) {
		const n = 100
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "keel.test"})
				if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
					err = fmt.Errorf("status %v, want NOT_SERVING", resp.GetStatus())
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		failed := 0
		var first error
		for err := range errs {
			if err != nil {
				failed++
				if first == nil {
					first = err
				}
			}
		}
		if failed > 0 {
			t.Errorf("%d of %d concurrent Check calls failed, want 0; first: %v", failed, n, first)
		}
	})

	t.Run("server streaming", func(t *testing.T) {
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		stream, err := hc.Watch(wctx, &healthpb.HealthCheckRequest{Service: "keel.watch"})
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		want := []healthpb.HealthCheckResponse_ServingStatus{
			healthpb.HealthCheckResponse_SERVICE_UNKNOWN,
			healthpb.HealthCheckResponse_SERVING,
			healthpb.HealthCheckResponse_NOT_SERVING,
		}
		for i, w := range want {
			if i > 0 {
				hs.SetServingStatus("keel.watch", w)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("Watch message %d: %v", i, err)
			}
			if resp.GetStatus() != w {
				t.Errorf("Watch message %d = %v, want %v", i, resp.GetStatus(), w)
			}
		}
	})

	t.Run("bidi streaming", func(t *testing.T) {
		rc := reflectionpb.NewServerReflectionClient(cc)
		st, err := rc.ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatalf("ServerReflectionInfo: %v", err)
		}
		err = st.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: ""}})
		if err != nil {
			t.Fatalf("send ListServices: %v", err)
		}
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("recv ListServices: %v", err)
		}
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		for _, want := range []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
			if !slices.Contains(names, want) {
				t.Errorf("ListServices = %v, want it to contain %q", names, want)
			}
		}
		err = st.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.health.v1.Health"}})
		if err != nil {
			t.Fatalf("send FileContainingSymbol: %v", err)
		}
		resp, err = st.Recv()
		if err != nil {
			t.Fatalf("recv FileContainingSymbol: %v", err)
		}
		if n := len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()); n == 0 {
			t.Errorf("FileContainingSymbol returned no descriptors, want at least 1 (response %v)", resp)
		}
		if err := st.CloseSend(); err != nil {
			t.Fatalf("CloseSend: %v", err)
		}
		if _, err := st.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("Recv after CloseSend = %v, want io.EOF (clean end with OK status)", err)
		}
	})
}

// TestH2CPriorKnowledge sends plain HTTP requests over cleartext HTTP/2 to
// the proxy, which forwards them to an HTTP/1 upstream.
func TestH2CPriorKnowledge(t *testing.T) {
	t.Parallel()
	p, _ := h2cProxy(t, ", max_url_bytes: 1KB, max_header_count: 20, max_header_bytes: 4KB")
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	manyHeaders := http.Header{}
	for i := range 25 {
		manyHeaders.Set(fmt.Sprintf("X-H%d", i), "v")
	}
	tests := []struct {
		name, method, target, body string
		header                     http.Header
		wantStatus                 int
		wantCategory               string
	}{
		{name: "get", method: http.MethodGet, target: "/plain/x?q=1", wantStatus: http.StatusOK},
		{name: "post", method: http.MethodPost, target: "/plain/upload", body: "h2c body", wantStatus: http.StatusOK},
		{name: "no route", method: http.MethodGet, target: "/nothing", wantStatus: http.StatusNotFound, wantCategory: "no_route"},
		{name: "URL over max_url_bytes", method: http.MethodGet, target: "/plain/" + strings.Repeat("u", 2000),
			wantStatus: http.StatusRequestURITooLong, wantCategory: "uri_too_long"},
		{name: "more headers than max_header_count", method: http.MethodGet, target: "/plain/h", header: manyHeaders,
			wantStatus: http.StatusRequestHeaderFieldsTooLarge, wantCategory: "header_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp, b := do(t, c, tc.method, p.url(tc.target), "", tc.header, body)
			if resp.ProtoMajor != 2 {
				t.Errorf("response proto = %s, want HTTP/2", resp.Proto)
			}
			if tc.wantCategory != "" {
				checkProxyError(t, resp, b, tc.wantStatus, tc.wantCategory)
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s = %d, want 200 (%q)", tc.method, tc.target, resp.StatusCode, b)
			}
			rep := decodeEcho(t, b)
			if rep.URI != tc.target || rep.Body != tc.body || rep.Method != tc.method {
				t.Errorf("upstream saw %s %s body %q, want %s %s body %q", rep.Method, rep.URI, rep.Body, tc.method, tc.target, tc.body)
			}
			if rep.Proto != "HTTP/1.1" {
				t.Errorf("upstream proto = %q, want HTTP/1.1 (pool protocol http1)", rep.Proto)
			}
			if rep.Host != p.data {
				t.Errorf("upstream Host = %q, want %q (the :authority)", rep.Host, p.data)
			}
		})
	}
}
