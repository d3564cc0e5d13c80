package proxy_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keelproxy/keel/internal/compile"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/server/h1"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/tracing"
	"github.com/keelproxy/keel/internal/upstream"
)

// BenchmarkProxyChain is the middleware bar of the traffic issue: a small
// keep-alive GET through a route with request_id + JWT auth + rate limit +
// header transform + tracing at 1% sampling (spans exported to a local
// OTLP sink) must keep at least 80% of the "core" throughput, i.e. cost at
// most 1.25x its time per request. Both cases run the same client and
// upstream in this process.
//
//	go test -run '^$' -bench ProxyChain -benchtime 3s -count 3 ./internal/proxy/
func BenchmarkProxyChain(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("0123456789abcdef"))
	}))
	defer up.Close()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer sink.Close()

	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "k", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}})
	jwksPath := filepath.Join(b.TempDir(), "jwks.json")
	os.WriteFile(jwksPath, jwks, 0o600)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://auth", "aud": "api", "sub": "u1",
		"exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k"
	token, _ := tok.SignedString(key)

	tracer, err := tracing.New(sink.URL, tracing.Options{SampleRatio: 0.01})
	if err != nil {
		b.Fatal(err)
	}
	defer tracer.Shutdown(b.Context())

	for _, tc := range []struct{ name, cfg string }{
		{"core", "routes: [{id: r, path_prefix: /, pool: p}]\n"},
		{"chain", `
routes: [{id: r, path_prefix: /, pool: p, middleware: full}]
policies: [{id: rl, rate_limit: {requests_per_second: 1000000, burst: 1000000, key: client_ip}}]
middleware:
  - id: full
    stages:
      - {type: request_id}
      - {type: tracing}
      - {type: auth, config: {jwt: {issuer: "https://auth", audience: api, jwks_file: "@JWKS@", forward_claims: {sub: X-User}}}}
      - {type: rate_limit, policy_ref: rl}
      - {type: header_transform, config: {add: {X-Proxy: keel}, remove: [X-Secret], response_add: {X-Served-By: keel}}}
`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			doc := strings.NewReplacer("@JWKS@", jwksPath).Replace(tc.cfg) +
				"pools: [{id: p, endpoints: [{address: \"" + up.Listener.Addr().String() + "\"}]}]\n"
			cfg, err := config.Parse([]byte(doc), config.FormatYAML)
			if err != nil {
				b.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				b.Fatal(err)
			}
			st := upstream.NewState(nil)
			defer st.Close()
			tr := tracer
			if tc.name == "core" {
				tr = nil // the core measures the plain data plane
			}
			snap, err := compile.Snapshot(cfg, compile.Deps{State: st, Tracing: tr})
			if err != nil {
				b.Fatal(err)
			}
			var h snapshot.Holder
			h.Swap(snap)
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			srv := &h1.Server{Handler: proxy.NewHandler(&h, proxy.Options{Tracing: tr})}
			go srv.Serve(ln)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/x", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
