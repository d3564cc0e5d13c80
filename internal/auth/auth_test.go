package auth

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func bearer(tok string) string { return "Bearer " + tok }

func TestVerify(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	rsaKey, ecKey, edKey := keys["rsa"], keys["ec"], keys["ed"]
	srv := newJWKSServer(t, jwks(jwkOf(rsaKey, false), jwkOf(ecKey, false), jwkOf(edKey, true), jwkOf(keys["ec384"], true)))

	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(rsaKey.public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	valid := sign(t, rsaKey, claims(nil))
	other := sign(t, rsaKey, claims(map[string]any{"sub": "someone-else"}))
	parts, otherParts := strings.Split(valid, "."), strings.Split(other, ".")

	tests := []struct {
		desc     string
		token    string
		wantCode string // "" means success
		wantDesc string
	}{
		{desc: "RS256", token: valid},
		{desc: "ES256", token: sign(t, ecKey, claims(nil))},
		{desc: "EdDSA", token: sign(t, edKey, claims(nil))},
		{desc: "expired", token: sign(t, edKey, claims(map[string]any{"exp": t0.Add(-time.Minute).Unix()})),
			wantCode: CodeInvalidToken, wantDesc: "token expired"},
		{desc: "expired within leeway", token: sign(t, edKey, claims(map[string]any{"exp": t0.Add(-10 * time.Second).Unix()}))},
		{desc: "nbf in the future", token: sign(t, edKey, claims(map[string]any{"nbf": t0.Add(time.Minute).Unix()})),
			wantCode: CodeInvalidToken, wantDesc: "token not yet valid"},
		{desc: "nbf within leeway", token: sign(t, edKey, claims(map[string]any{"nbf": t0.Add(10 * time.Second).Unix()}))},
		{desc: "iat in the future", token: sign(t, edKey, claims(map[string]any{"iat": t0.Add(time.Minute).Unix()})),
			wantCode: CodeInvalidToken, wantDesc: "token issued in the future"},
		{desc: "no exp", token: sign(t, edKey, claims(map[string]any{"exp": nil})),
			wantCode: CodeInvalidToken, wantDesc: "token has no expiry"},
		{desc: "exp not a number", token: sign(t, edKey, claims(map[string]any{"exp": "tomorrow"})),
			wantCode: CodeInvalidToken, wantDesc: "malformed claims"},
		{desc: "wrong issuer", token: sign(t, edKey, claims(map[string]any{"iss": "https://evil.test"})),
			wantCode: CodeInvalidToken, wantDesc: "issuer mismatch"},
		{desc: "no issuer", token: sign(t, edKey, claims(map[string]any{"iss": nil})),
			wantCode: CodeInvalidToken, wantDesc: "issuer mismatch"},
		{desc: "wrong audience", token: sign(t, edKey, claims(map[string]any{"aud": "other"})),
			wantCode: CodeInvalidToken, wantDesc: "audience mismatch"},
		{desc: "no audience", token: sign(t, edKey, claims(map[string]any{"aud": nil})),
			wantCode: CodeInvalidToken, wantDesc: "audience mismatch"},
		{desc: "audience array", token: sign(t, edKey, claims(map[string]any{"aud": []string{"other", testAudience}}))},
		{desc: "audience array without ours", token: sign(t, edKey, claims(map[string]any{"aud": []string{"other", "more"}})),
			wantCode: CodeInvalidToken, wantDesc: "audience mismatch"},
		{desc: "alg none", token: signWith(t, jwt.SigningMethodNone, map[string]any{"kid": rsaKey.kid}, jwt.UnsafeAllowNoneSignatureType, claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "algorithm not allowed"},
		{desc: "alg NONE spelled differently", token: strings.Replace(valid, parts[0], b64u([]byte(`{"alg":"None","kid":"rsa-1"}`)), 1),
			wantCode: CodeInvalidToken, wantDesc: "algorithm not allowed"},
		{desc: "HS256 keyed with the RSA public key PEM", token: signWith(t, jwt.SigningMethodHS256, map[string]any{"kid": rsaKey.kid}, pubPEM, claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "algorithm not allowed"},
		{desc: "HS256 keyed with the RSA modulus", token: signWith(t, jwt.SigningMethodHS256, map[string]any{"kid": rsaKey.kid}, rsaKey.public().(*rsa.PublicKey).N.Bytes(), claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "algorithm not allowed"},
		{desc: "ES384 not in the allowed list", token: sign(t, keys["ec384"], claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "algorithm not allowed"},
		{desc: "RS256 naming the EC key", token: signWith(t, jwt.SigningMethodRS256, map[string]any{"kid": ecKey.kid}, rsaKey.priv, claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "signing key does not match algorithm"},
		{desc: "ES256 signed by the EC key naming the RSA kid", token: signWith(t, jwt.SigningMethodES256, map[string]any{"kid": rsaKey.kid}, ecKey.priv, claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "signing key does not match algorithm"},
		{desc: "ES256 naming the Ed25519 kid", token: signWith(t, jwt.SigningMethodES256, map[string]any{"kid": edKey.kid}, ecKey.priv, claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "signing key does not match algorithm"},
		{desc: "signed by another key under a known kid", token: signWith(t, jwt.SigningMethodRS256, map[string]any{"kid": rsaKey.kid}, keys["rsa2"].priv, claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "invalid signature"},
		{desc: "payload swapped", token: parts[0] + "." + otherParts[1] + "." + parts[2],
			wantCode: CodeInvalidToken, wantDesc: "invalid signature"},
		{desc: "signature stripped", token: parts[0] + "." + parts[1] + ".",
			wantCode: CodeInvalidToken, wantDesc: "invalid signature"},
		{desc: "critical header", token: signWith(t, jwt.SigningMethodEdDSA, map[string]any{"kid": edKey.kid, "crit": []string{"b64"}, "b64": false}, edKey.priv, claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "unsupported critical header"},
		{desc: "no kid, one key fits", token: signWith(t, jwt.SigningMethodEdDSA, map[string]any{"kid": nil}, edKey.priv, claims(nil))},
		{desc: "kid not a string", token: signWith(t, jwt.SigningMethodEdDSA, map[string]any{"kid": 7}, edKey.priv, claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "malformed token"},
		{desc: "unknown kid", token: signWith(t, jwt.SigningMethodEdDSA, map[string]any{"kid": "nope"}, keys["ed2"].priv, claims(nil)),
			wantCode: CodeInvalidToken, wantDesc: "unknown signing key"},
		{desc: "two segments", token: parts[0] + "." + parts[1],
			wantCode: CodeInvalidToken, wantDesc: "malformed token"},
		{desc: "four segments", token: valid + ".x",
			wantCode: CodeInvalidToken, wantDesc: "malformed token"},
		{desc: "header not JSON", token: b64u([]byte("{nope")) + "." + parts[1] + "." + parts[2],
			wantCode: CodeInvalidToken, wantDesc: "malformed token"},
		{desc: "padded base64", token: parts[0] + "=." + parts[1] + "." + parts[2],
			wantCode: CodeInvalidRequest, wantDesc: "malformed bearer token"},
		{desc: "non-canonical base64 signature", token: parts[0] + "." + parts[1] + "." + flipLastBits(parts[2]),
			wantCode: CodeInvalidToken, wantDesc: "malformed token"},
	}
	for _, cacheSize := range []int{-1, 0} {
		for _, tc := range tests {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				v := newTestVerifier(t, srv, newClock(), func(c *Config) { c.CacheSize = cacheSize })
				// Twice: the second call is a cache hit when the first
				// succeeded, and must agree with it.
				for i := range 2 {
					got, err := v.Verify(context.Background(), bearer(tc.token))
					if tc.wantCode == "" {
						if err != nil {
							t.Fatalf("cache %d, call %d: Verify = %v, want success", cacheSize, i, err)
						}
						if sub := got.Subject(); sub != "user-1" {
							t.Errorf("Subject() = %q, want user-1", sub)
						}
						continue
					}
					var e *Error
					if !errors.As(err, &e) {
						t.Fatalf("cache %d, call %d: Verify error = %v (%T), want *Error", cacheSize, i, err, err)
					}
					if e.Code != tc.wantCode || e.Description != tc.wantDesc {
						t.Errorf("cache %d, call %d: Verify = %q/%q, want %q/%q", cacheSize, i, e.Code, e.Description, tc.wantCode, tc.wantDesc)
					}
				}
			})
		}
	}
}

// flipLastBits changes the unused low bits of a base64url string's last
// character: the same bytes in a non-canonical spelling, which strict
// decoding must refuse (it would otherwise make tokens malleable).
func flipLastBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[i^1])
}

func TestVerifyConfiguredAlgorithms(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	rsaKey := keys["rsa"]
	ps := testKey{kid: "rsa-1", alg: "PS256", priv: rsaKey.priv}
	srv := newJWKSServer(t, jwks(jwkOf(rsaKey, false), jwkOf(keys["ec384"], false), jwkOf(keys["ed"], false)))
	v := newTestVerifier(t, srv, newClock(), func(c *Config) { c.Algorithms = []string{"PS256", "ES384"} })

	tests := []struct {
		desc  string
		token string
		want  string // error description, "" for success
	}{
		{"PS256", sign(t, ps, claims(nil)), ""},
		{"ES384", sign(t, keys["ec384"], claims(nil)), ""},
		{"RS256 not configured", sign(t, rsaKey, claims(nil)), "algorithm not allowed"},
		{"EdDSA not configured", sign(t, keys["ed"], claims(nil)), "algorithm not allowed"},
	}
	for _, tc := range tests {
		_, err := v.Verify(context.Background(), bearer(tc.token))
		if got := errDesc(err); got != tc.want {
			t.Errorf("%s: Verify error = %q, want %q", tc.desc, got, tc.want)
		}
	}
}

func errDesc(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Description
	}
	if err != nil {
		return "not an *Error: " + err.Error()
	}
	return ""
}

func TestVerifyAmbiguousKeyWithoutKID(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["rsa"], false), jwkOf(keys["rsa2"], false)))
	v := newTestVerifier(t, srv, newClock(), nil)
	tok := signWith(t, jwt.SigningMethodRS256, map[string]any{"kid": nil}, keys["rsa"].priv, claims(nil))
	_, err := v.Verify(context.Background(), bearer(tok))
	if got, want := errDesc(err), "token has no key id"; got != want {
		t.Errorf("Verify(no kid, two RSA keys) = %q, want %q", got, want)
	}
}

func TestVerifyHeaderValues(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	v := newTestVerifier(t, srv, newClock(), nil)
	tok := sign(t, keys["ed"], claims(nil))

	tests := []struct {
		header   string
		wantCode string
		wantDesc string
	}{
		{"Bearer " + tok, "", ""},
		{"bearer " + tok, "", ""}, // RFC 9110 11.1: the scheme is case-insensitive
		{"BEARER   " + tok, "", ""},
		{"", "", "missing bearer token"},
		{"Basic dXNlcjpwYXNz", "", "authorization scheme is not Bearer"},
		{"Token " + tok, "", "authorization scheme is not Bearer"},
		{"Bearer", CodeInvalidRequest, "empty bearer token"},
		{"Bearer ", CodeInvalidRequest, "empty bearer token"},
		{"Bearer" + tok, CodeInvalidRequest, "malformed bearer token"},
		{"Bearer\t" + tok, CodeInvalidRequest, "malformed bearer token"},
		{"Bearer " + tok + " extra", CodeInvalidRequest, "malformed bearer token"},
		{"Bearer " + tok + "\x00", CodeInvalidRequest, "malformed bearer token"},
		{"Bearer " + strings.Repeat("a", maxTokenBytes+1), CodeInvalidToken, "token too large"},
		{"Bearer ====", CodeInvalidRequest, "malformed bearer token"},
		{"Bearer abc", CodeInvalidToken, "malformed token"},
	}
	for _, tc := range tests {
		_, err := v.Verify(context.Background(), tc.header)
		var e *Error
		switch {
		case tc.wantDesc == "" && err != nil:
			t.Errorf("Verify(%.40q) = %v, want success", tc.header, err)
		case tc.wantDesc == "":
		case !errors.As(err, &e):
			t.Errorf("Verify(%.40q) = %v, want *Error", tc.header, err)
		case e.Code != tc.wantCode || e.Description != tc.wantDesc:
			t.Errorf("Verify(%.40q) = %q/%q, want %q/%q", tc.header, e.Code, e.Description, tc.wantCode, tc.wantDesc)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := testKeys(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", jwks(jwkOf(keys["ed"], false)))
	badKey := jwkOf(keys["ec"], false)
	badKey["x"] = b64u(make([]byte, 32)) // (0, y) is not on P-256
	tests := []struct {
		desc    string
		c       Config
		wantErr string // substring; "" means success
	}{
		{"file", Config{JWKSFile: good}, ""},
		{"url", Config{JWKSURL: "http://127.0.0.1:1/jwks"}, ""}, // New does no I/O for URLs
		{"both", Config{JWKSFile: good, JWKSURL: "http://x/"}, "exactly one"},
		{"neither", Config{}, "exactly one"},
		{"missing file", Config{JWKSFile: filepath.Join(dir, "nope.json")}, "no such file"},
		{"not JSON", Config{JWKSFile: write("bad.json", []byte("{"))}, "parse jwks"},
		{"no usable key", Config{JWKSFile: write("enc.json", jwks(map[string]any{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}))}, "no usable signing key"},
		{"empty set", Config{JWKSFile: write("empty.json", jwks())}, "no usable signing key"},
		{"one bad key among good", Config{JWKSFile: write("mixed.json", jwks(jwkOf(keys["ed"], false), badKey))}, "jwks key 1"},
		{"alg none", Config{JWKSFile: good, Algorithms: []string{"none"}}, `unsupported algorithm "none"`},
		{"alg HS256", Config{JWKSFile: good, Algorithms: []string{"HS256"}}, `unsupported algorithm "HS256"`},
		{"negative leeway", Config{JWKSFile: good, Leeway: -time.Second}, "negative"},
		{"bad header name", Config{JWKSFile: good, ForwardClaims: map[string]string{"sub": "X User"}}, "invalid header name"},
		{"header twice", Config{JWKSFile: good, ForwardClaims: map[string]string{"sub": "X-User", "email": "x_user"}}, "both set header"},
	}
	for _, tc := range tests {
		_, err := New(tc.c)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: New = %v, want success", tc.desc, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: New = %v, want error containing %q", tc.desc, err, tc.wantErr)
		}
	}
}

func TestJWKSFile(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, jwks(jwkOf(keys["rsa"], true), jwkOf(keys["ec"], true)), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	v, err := newVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: p}, clk.Now)
	if err != nil {
		t.Fatalf("newVerifier: %v", err)
	}
	for _, k := range []testKey{keys["rsa"], keys["ec"]} {
		if _, err := v.Verify(context.Background(), bearer(sign(t, k, claims(nil)))); err != nil {
			t.Errorf("Verify(%s) = %v, want success", k.alg, err)
		}
	}

	// A rotated file is picked up for an unknown kid, like a URL.
	if err := os.WriteFile(p, jwks(jwkOf(keys["ed"], true)), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Add(minRefreshGap)
	if _, err := v.Verify(context.Background(), bearer(sign(t, keys["ed"], claims(nil)))); err != nil {
		t.Errorf("Verify(EdDSA after rotation) = %v, want success", err)
	}
}

func TestClaims(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	v := newTestVerifier(t, srv, newClock(), nil)
	tok := sign(t, keys["ed"], claims(map[string]any{"uid": int64(9007199254740993), "admin": true}))
	c, err := v.Verify(context.Background(), bearer(tok))
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if got, ok := c.Get("uid"); !ok || got != json.Number("9007199254740993") {
		t.Errorf(`Get("uid") = %v (%T), %v; want json.Number 9007199254740993 (exact beyond 2^53)`, got, got, ok)
	}
	if got, ok := c.Get("admin"); !ok || got != true {
		t.Errorf(`Get("admin") = %v, %v; want true, true`, got, ok)
	}
	if _, ok := c.Get("missing"); ok {
		t.Error(`Get("missing") ok = true, want false`)
	}
	var zero Claims
	if zero.Subject() != "" {
		t.Errorf("zero Claims Subject() = %q, want empty", zero.Subject())
	}
}

func TestIsB64Token(t *testing.T) {
	t.Parallel()
	ref := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0
	}
	for c := range 256 {
		s := "a" + string([]byte{byte(c)}) + "b"
		if got, want := isB64Token(s), ref(byte(c)); got != want {
			t.Errorf("isB64Token(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{"abc": true, "abc==": true, "a.b.c": true, "": false, "==": false, "a=b": false, "a b": false} {
		if got := isB64Token(s); got != want {
			t.Errorf("isB64Token(%q) = %v, want %v", s, got, want)
		}
	}
}
