package auth

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// benchVerifier builds a Verifier over a JWKS file holding every test key.
func benchVerifier(b *testing.B, mod func(*Config)) *Verifier {
	b.Helper()
	keys := testKeys(b)
	p := filepath.Join(b.TempDir(), "jwks.json")
	if err := os.WriteFile(p, jwks(jwkOf(keys["rsa"], false), jwkOf(keys["ec"], false), jwkOf(keys["ed"], false)), 0o600); err != nil {
		b.Fatal(err)
	}
	c := Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: p}
	if mod != nil {
		mod(&c)
	}
	v, err := newVerifier(c, newClock().Now)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkVerify measures one token check per algorithm, with the
// verified-token cache off (every call verifies the signature: the cost of
// a token seen for the first time) and on (the same token again, the
// common case: clients reuse a token until it expires).
func BenchmarkVerify(b *testing.B) {
	keys := testKeys(b)
	for _, name := range []string{"rsa", "ec", "ed"} {
		k := keys[name]
		auth := bearer(sign(b, k, claims(map[string]any{"scope": "read write", "email": "user@example.com"})))
		for _, mode := range []struct {
			name string
			size int
		}{{"uncached", -1}, {"cached", 0}} {
			b.Run(k.alg+"/"+mode.name, func(b *testing.B) {
				v := benchVerifier(b, func(c *Config) { c.CacheSize = mode.size })
				ctx := context.Background()
				if _, err := v.Verify(ctx, auth); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(ctx, auth); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkVerifyParallel is the cached check under concurrency, where the
// cache's locks could show.
func BenchmarkVerifyParallel(b *testing.B) {
	auth := bearer(sign(b, testKeys(b)["ed"], claims(nil)))
	v := benchVerifier(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, auth); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMiddleware is the whole stage for a cached token with two
// forward_claims headers: verification plus the request copy.
func BenchmarkMiddleware(b *testing.B) {
	auth := bearer(sign(b, testKeys(b)["rsa"], claims(map[string]any{"email": "user@example.com"})))
	v := benchVerifier(b, func(c *Config) {
		c.ForwardClaims = map[string]string{"sub": "X-User-Id", "email": "X-User-Email"}
	})
	h := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), func(w http.ResponseWriter, r *http.Request, e *Error) {
		b.Fatal(e)
	})
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	r.Header.Set("Authorization", auth)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkSignatureFloor is the bare signature check of the same tokens,
// without parsing: the floor under BenchmarkVerify's uncached numbers, and
// the reason the cache exists (no parser tuning gets an RSA-2048, P-256 or
// Ed25519 verification under 10 µs).
func BenchmarkSignatureFloor(b *testing.B) {
	keys := testKeys(b)
	for _, name := range []string{"rsa", "ec", "ed"} {
		k := keys[name]
		tok := sign(b, k, claims(nil))
		m := jwt.GetSigningMethod(k.alg)
		i := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
		if err != nil {
			b.Fatal(err)
		}
		var pub any = k.public()
		b.Run(k.alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Verify(tok[:i], sig, pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
