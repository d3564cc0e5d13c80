package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keelproxy/keel/internal/testpki"
)

// tlsSeen is what a TLS test upstream reports about a request it got.
type tlsSeen struct {
	Upstream   string `json:"upstream"`
	Path       string `json:"path"`
	TLS        bool   `json:"tls"`
	ProtoMajor int    `json:"proto_major"`
	ALPN       string `json:"alpn"`
	SNI        string `json:"sni"`
	ClientCN   string `json:"client_cn"`
	TE         string `json:"te"`
}

// newTLSUpstream starts an httptest server over TLS with cfg (HTTP/2 only
// when h2) running h after it has recorded the request in the reply
// headers; it is closed when the test ends.
func newTLSUpstream(t testing.TB, name string, cfg *tls.Config, h2 bool, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		h(w, r)
	}))
	s.TLS = cfg
	s.EnableHTTP2 = h2
	// The upstream's own complaints (refused client certificates) are
	// expected here; keep them out of the test output.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// tlsReport answers with a tlsSeen describing r.
func tlsReport(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rep := tlsSeen{Upstream: name, Path: r.URL.Path, TLS: r.TLS != nil, ProtoMajor: r.ProtoMajor, TE: r.Header.Get("Te")}
		if r.TLS != nil {
			rep.ALPN, rep.SNI = r.TLS.NegotiatedProtocol, r.TLS.ServerName
			if len(r.TLS.PeerCertificates) > 0 {
				rep.ClientCN = r.TLS.PeerCertificates[0].Subject.CommonName
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
	}
}

// TestUpstreamTLS checks TLS from the proxy to its upstreams: https://
// endpoints with a pool's CA and server name, with the system roots
// (SSL_CERT_FILE), client certificates for upstreams that require them,
// verification failures, HTTP/2 over TLS and response trailers from an
// HTTP/2 upstream reaching an HTTP/1.1 client.
func TestUpstreamTLS(t *testing.T) {
	t.Parallel()
	ca := testpki.New(t, "upstream CA")
	other := testpki.New(t, "other CA")
	clientCA := testpki.New(t, "proxy client CA")
	srvPair := ca.Issue(t, "backend", testpki.DNS("backend.internal")).TLS
	clientCert, clientKey := clientCA.Issue(t, "keel-proxy", testpki.Client()).Files()

	h1 := newTLSUpstream(t, "h1", &tls.Config{Certificates: []tls.Certificate{srvPair}}, false, tlsReport("h1"))
	mtls := newTLSUpstream(t, "mtls", &tls.Config{Certificates: []tls.Certificate{srvPair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool}, false, tlsReport("mtls"))
	h2 := newTLSUpstream(t, "h2", &tls.Config{Certificates: []tls.Certificate{srvPair}}, true,
		func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/grpc/keel.Echo/Say" {
				tlsReport("h2")(w, r)
				return
			}
			// A gRPC-like exchange: a length-prefixed message each way,
			// the status in trailers only.
			msg, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("X-Saw-Te", r.Header.Get("Te"))
			w.Header().Set("X-Saw-Proto", r.Proto)
			w.WriteHeader(http.StatusOK)
			w.Write(msg)
			w.(http.Flusher).Flush()
			w.Write([]byte("|echoed"))
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set("Grpc-Message", "all good")
			// An undeclared trailer, as grpc-go sends them.
			w.Header().Set(http.TrailerPrefix+"Grpc-Status-Details-Bin", "CAA")
		})
	hostport := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "https://") }

	tlsBlock := func(caFile, serverName, extra string) string {
		return fmt.Sprintf("{ca_file: %s, server_name: %s%s}", caFile, serverName, extra)
	}
	withCert := fmt.Sprintf(", cert_file: %s, key_file: %s", clientCert, clientKey)
	cfg := fmt.Sprintf(`routes:
  - {id: a, path_prefix: /a/, pool: a}
  - {id: sys, path_prefix: /sys/, pool: sys}
  - {id: mtls, path_prefix: /mtls/, pool: mtls}
  - {id: nocert, path_prefix: /nocert/, pool: nocert}
  - {id: wrongca, path_prefix: /wrongca/, pool: wrongca}
  - {id: wrongname, path_prefix: /wrongname/, pool: wrongname}
  - {id: h2, path_prefix: /h2/, pool: h2}
  - {id: h2onh1, path_prefix: /h2onh1/, pool: h2onh1}
  - {id: grpc, path_prefix: /grpc/, pool: h2}
pools:
  - {id: a, endpoints: [{address: "https://%[1]s"}], tls: %[4]s}
  - {id: sys, endpoints: [{address: "https://%[1]s"}]}
  - {id: mtls, endpoints: [{address: "https://%[2]s"}], tls: %[5]s}
  - {id: nocert, endpoints: [{address: "https://%[2]s"}], tls: %[4]s}
  - {id: wrongca, endpoints: [{address: "https://%[1]s"}], tls: %[6]s}
  - {id: wrongname, endpoints: [{address: "https://%[1]s"}], tls: %[7]s}
  - {id: h2, protocol: http2, endpoints: [{address: "%[3]s"}], tls: %[4]s}
  - {id: h2onh1, protocol: http2, endpoints: [{address: "%[1]s"}], tls: %[4]s}
%[8]s`, hostport(h1), hostport(mtls), hostport(h2),
		tlsBlock(ca.File, "backend.internal", ""),
		tlsBlock(ca.File, "backend.internal", withCert),
		tlsBlock(other.File, "backend.internal", ""),
		tlsBlock(ca.File, "wrong.internal", ""),
		fastShutdown)
	path := t.TempDir() + "/proxy.yaml"
	writeFileAtomic(t, path, cfg)
	// The system roots of the proxy are the upstream CA: an https://
	// endpoint without a tls block trusts it.
	p := startProxyEnv(t, []string{"SSL_CERT_FILE=" + ca.File}, path)
	c := newClient(t, 10*time.Second)

	get := func(t *testing.T, path string) (*http.Response, []byte) {
		t.Helper()
		return do(t, c, http.MethodGet, p.url(path), "", nil, nil)
	}
	okReport := func(t *testing.T, path, upstream string) tlsSeen {
		t.Helper()
		resp, body := get(t, path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Upstream") != upstream {
			t.Fatalf("GET %s = %d from %q, want 200 from %q (body %q)", path, resp.StatusCode,
				resp.Header.Get("X-Upstream"), upstream, body)
		}
		var rep tlsSeen
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatalf("GET %s: reply %q: %v", path, body, err)
		}
		if !rep.TLS {
			t.Errorf("GET %s: upstream saw a request without TLS", path)
		}
		if rep.Path != path {
			t.Errorf("GET %s: upstream saw path %q", path, rep.Path)
		}
		return rep
	}

	t.Run("https endpoint with ca_file and server_name", func(t *testing.T) {
		for i := range 3 { // kept-alive or resumed, the same result
			rep := okReport(t, fmt.Sprintf("/a/%d", i), "h1")
			if rep.ProtoMajor != 1 || rep.ALPN != "http/1.1" {
				t.Errorf("upstream saw HTTP/%d with ALPN %q, want HTTP/1 and http/1.1", rep.ProtoMajor, rep.ALPN)
			}
			if rep.SNI != "backend.internal" {
				t.Errorf("upstream saw SNI %q, want backend.internal", rep.SNI)
			}
			if rep.ClientCN != "" {
				t.Errorf("upstream saw a client certificate %q without cert_file", rep.ClientCN)
			}
		}
	})
	t.Run("https endpoint with the system roots", func(t *testing.T) {
		rep := okReport(t, "/sys/x", "h1")
		// An IP host is verified against the IP SAN and sent without SNI.
		if rep.SNI != "" || rep.ProtoMajor != 1 {
			t.Errorf("upstream saw SNI %q over HTTP/%d, want none over HTTP/1", rep.SNI, rep.ProtoMajor)
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		rep := okReport(t, "/mtls/x", "mtls")
		if rep.ClientCN != "keel-proxy" {
			t.Errorf("upstream saw client certificate %q, want keel-proxy", rep.ClientCN)
		}
	})
	t.Run("client certificate missing", func(t *testing.T) {
		resp, body := get(t, "/nocert/x")
		// TLS 1.3 reports the refusal after the handshake, as a reset of
		// the first request; TLS 1.2 fails the handshake.
		want := "upstream_connect_failed"
		if resp.Header.Get("X-Proxy-Error") == "upstream_reset" {
			want = "upstream_reset"
		}
		checkProxyError(t, resp, body, http.StatusBadGateway, want)
		t.Logf("the refused client certificate showed as %s", want)
	})
	t.Run("unknown CA", func(t *testing.T) {
		resp, body := get(t, "/wrongca/x")
		checkProxyError(t, resp, body, http.StatusBadGateway, "upstream_connect_failed")
	})
	t.Run("name mismatch", func(t *testing.T) {
		resp, body := get(t, "/wrongname/x")
		checkProxyError(t, resp, body, http.StatusBadGateway, "upstream_connect_failed")
	})
	t.Run("http2", func(t *testing.T) {
		for i := range 3 {
			rep := okReport(t, fmt.Sprintf("/h2/%d", i), "h2")
			if rep.ProtoMajor != 2 || rep.ALPN != "h2" {
				t.Errorf("upstream saw HTTP/%d with ALPN %q, want HTTP/2 and h2", rep.ProtoMajor, rep.ALPN)
			}
			if rep.SNI != "backend.internal" {
				t.Errorf("upstream saw SNI %q, want backend.internal", rep.SNI)
			}
		}
	})
	t.Run("http2 to an upstream without h2", func(t *testing.T) {
		resp, body := get(t, "/h2onh1/x")
		checkProxyError(t, resp, body, http.StatusBadGateway, "upstream_connect_failed")
	})
	t.Run("grpc-like trailers over http2", func(t *testing.T) {
		msg := "\x00\x00\x00\x00\x05hello"
		hdr := http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}}
		req, err := http.NewRequest(http.MethodPost, p.url("/grpc/keel.Echo/Say"), strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = hdr
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading body: %v", err)
		}
		if resp.StatusCode != http.StatusOK || string(body) != msg+"|echoed" {
			t.Fatalf("POST = %d, body %q; want 200, %q", resp.StatusCode, body, msg+"|echoed")
		}
		if got := resp.Header.Get("X-Saw-Proto"); got != "HTTP/2.0" {
			t.Errorf("upstream saw %q, want HTTP/2.0", got)
		}
		if got := resp.Header.Get("X-Saw-Te"); got != "trailers" {
			t.Errorf("upstream saw TE %q, want trailers", got)
		}
		if resp.ProtoMajor != 1 || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("response over HTTP/%d with transfer encoding %v, want chunked HTTP/1.1", resp.ProtoMajor, resp.TransferEncoding)
		}
		for k, want := range map[string]string{"Grpc-Status": "0", "Grpc-Message": "all good", "Grpc-Status-Details-Bin": "CAA"} {
			if got := resp.Trailer.Get(k); got != want {
				t.Errorf("trailer %s = %q, want %q (trailers %v)", k, got, want, resp.Trailer)
			}
		}
	})
	// After every failure above, the good pools still serve.
	t.Run("healthy pools unaffected", func(t *testing.T) {
		okReport(t, "/a/again", "h1")
		okReport(t, "/mtls/again", "mtls")
		okReport(t, "/h2/again", "h2")
	})
}
