package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "api"
)

// t0 is the fake "now" of most tests.
var t0 = time.Unix(1_700_000_000, 0)

// fakeClock is a concurrency-safe settable clock.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }

// testKey is a signing key with its kid.
type testKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

func (k testKey) public() crypto.PublicKey { return k.priv.Public() }

// keys are generated once per test binary: RSA generation is slow under
// -race.
var keysOnce = sync.OnceValues(func() (map[string]testKey, error) {
	r1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	r2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	e1, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	e384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	_, d1, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	_, d2, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return map[string]testKey{
		"rsa":   {kid: "rsa-1", alg: "RS256", priv: r1},
		"rsa2":  {kid: "rsa-2", alg: "RS256", priv: r2},
		"ec":    {kid: "ec-1", alg: "ES256", priv: e1},
		"ec384": {kid: "ec-384", alg: "ES384", priv: e384},
		"ed":    {kid: "ed-1", alg: "EdDSA", priv: d1},
		"ed2":   {kid: "ed-2", alg: "EdDSA", priv: d2},
	}, nil
})

func testKeys(tb testing.TB) map[string]testKey {
	tb.Helper()
	ks, err := keysOnce()
	if err != nil {
		tb.Fatalf("generate keys: %v", err)
	}
	return ks
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf renders the public half of k as a JWK (RFC 7517/7518), with an
// "alg" member only when withAlg is set.
func jwkOf(k testKey, withAlg bool) map[string]any {
	m := map[string]any{"kid": k.kid, "use": "sig"}
	if withAlg {
		m["alg"] = k.alg
	}
	switch p := k.public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64u(p.N.Bytes())
		m["e"] = b64u(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		b, err := p.Bytes()
		if err != nil {
			panic(err)
		}
		size := (len(b) - 1) / 2
		m["kty"] = "EC"
		m["crv"] = p.Curve.Params().Name
		m["x"] = b64u(b[1 : 1+size])
		m["y"] = b64u(b[1+size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64u(p)
	}
	return m
}

// jwks renders a key set document.
func jwks(keys ...map[string]any) []byte {
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// claims returns valid claims at t0; set overrides, a nil value deletes.
func claims(set map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": "user-1",
		"iat": t0.Unix(),
		"exp": t0.Add(time.Hour).Unix(),
	}
	for k, v := range set {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// sign makes a token with k's algorithm and kid.
func sign(tb testing.TB, k testKey, c jwt.MapClaims) string {
	tb.Helper()
	return signWith(tb, jwt.GetSigningMethod(k.alg), map[string]any{"kid": k.kid}, k.priv, c)
}

// signWith makes a token with any method, extra header fields and key.
func signWith(tb testing.TB, m jwt.SigningMethod, header map[string]any, key any, c jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(m, c)
	for k, v := range header {
		if v == nil {
			delete(t.Header, k)
			continue
		}
		t.Header[k] = v
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return s
}

// jwksServer serves a replaceable key set and counts fetches.
type jwksServer struct {
	*httptest.Server
	body    atomic.Pointer[[]byte]
	status  atomic.Int32 // 0 means 200
	fetches atomic.Int32
}

func newJWKSServer(tb testing.TB, body []byte) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.set(body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if st := s.status.Load(); st != 0 {
			w.WriteHeader(int(st))
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*s.body.Load())
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte) { s.body.Store(&body) }

// newTestVerifier builds a Verifier on clk for the usual issuer and
// audience, with keys served by srv.
func newTestVerifier(tb testing.TB, srv *jwksServer, clk *fakeClock, mod func(*Config)) *Verifier {
	tb.Helper()
	c := Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL, HTTPClient: srv.Client()}
	if mod != nil {
		mod(&c)
	}
	v, err := newVerifier(c, clk.Now)
	if err != nil {
		tb.Fatalf("newVerifier: %v", err)
	}
	return v
}
