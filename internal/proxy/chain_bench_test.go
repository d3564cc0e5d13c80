package proxy_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keelproxy/keel/internal/tracing"
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
			tr := tracer
			if tc.name == "core" {
				tr = nil // the core measures the plain data plane
			}
			req, _ := http.NewRequest("GET", serveBench(b, doc, tr)+"/x", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			runGETs(b, req)
		})
	}
}
