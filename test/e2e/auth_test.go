package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWTAuthStage: the auth stage admits a valid RS256 token and forwards
// its subject, and answers 401 unauthorized with a Bearer challenge for a
// missing, expired, wrongly signed or wrong-audience token; a client
// cannot inject the forwarded header itself.
func TestJWTAuthStage(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks := map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}}
	b, _ := json.Marshal(jwks)
	jwksPath := filepath.Join(t.TempDir(), "jwks.json")
	writeFileAtomic(t, jwksPath, string(b))
	up := newEcho(t, "u")
	cfg := fmt.Sprintf(`
routes: [{id: api, path_prefix: /, pool: p, middleware: authed}]
middleware:
  - id: authed
    stages:
      - type: auth
        config: {jwt: {issuer: https://auth.example.com, audience: api, jwks_file: "%s", forward_claims: {sub: X-User-Id}}}
pools: [{id: p, endpoints: [{address: "%s"}]}]
`, jwksPath, up.addr) + fastShutdown
	p := startProxy(t, cfg)
	sign := func(k *rsa.PrivateKey, aud string, exp time.Time) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": "https://auth.example.com", "aud": aud, "sub": "alice", "exp": exp.Unix(), "iat": time.Now().Unix()})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	c := newClient(t, 10*time.Second)
	good := sign(key, "api", time.Now().Add(time.Hour))
	resp, body := do(t, c, "GET", p.url("/x"), "", http.Header{"Authorization": {"Bearer " + good}, "X-User-Id": {"mallory"}}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("valid token = %d %s", resp.StatusCode, body)
	}
	if got := decodeEcho(t, body).Header.Values("X-User-Id"); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("upstream X-User-Id = %v, want only the token's subject", got)
	}
	for _, tc := range []struct{ name, auth string }{
		{"missing", ""},
		{"expired", "Bearer " + sign(key, "api", time.Now().Add(-time.Hour))},
		{"wrong key", "Bearer " + sign(other, "api", time.Now().Add(time.Hour))},
		{"wrong audience", "Bearer " + sign(key, "other", time.Now().Add(time.Hour))},
		{"garbage", "Bearer not.a.jwt"},
	} {
		hdr := http.Header{}
		if tc.auth != "" {
			hdr.Set("Authorization", tc.auth)
		}
		resp, body := do(t, c, "GET", p.url("/x"), "", hdr, nil)
		checkProxyError(t, resp, body, 401, "unauthorized")
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate = %q, want a Bearer challenge", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
}
