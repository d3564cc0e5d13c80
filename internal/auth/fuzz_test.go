package auth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary Authorization values through the whole check:
// header parsing, base64 and JSON decoding, key lookup, signature and claim
// checks, and the cache. It must never panic, fail only with an *Error
// whose challenge is a single header line, and succeed only for a payload
// that one of the seed tokens signed (the fuzzer cannot forge signatures,
// so anything else accepted would be a verification bug).
func FuzzVerify(f *testing.F) {
	keys := testKeys(f)
	p := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(p, jwks(jwkOf(keys["rsa"], false), jwkOf(keys["ec"], true), jwkOf(keys["ed"], false)), 0o600); err != nil {
		f.Fatal(err)
	}
	v, err := newVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: p}, newClock().Now)
	if err != nil {
		f.Fatal(err)
	}

	signedPayloads := map[string]bool{}
	for _, name := range []string{"rsa", "ec", "ed"} {
		tok := sign(f, keys[name], claims(map[string]any{"aud": []string{"x", testAudience}}))
		signedPayloads[strings.Split(tok, ".")[1]] = true
		f.Add(bearer(tok))                                // valid
		f.Add(bearer(tok[:len(tok)-2]))                   // truncated signature
		f.Add(bearer(strings.Replace(tok, ".", "..", 1))) // extra segment
	}
	f.Add("")
	f.Add("Bearer")
	f.Add("Bearer ")
	f.Add("Basic Zm9vOmJhcg==")
	f.Add("Bearer a.b.c")
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")                                // alg none
	f.Add("Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6WzFdfQ.e30.AA")                           // kid not a string
	f.Add("Bearer eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiYjY0Il19.e30.AA")                     // crit
	f.Add("Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImVkLTEifQ.eyJleHAiOiJ4In0.AAAA")         // exp a string
	f.Add("Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImVkLTEifQ.eyJhdWQiOnsiYSI6MX19.AAAA")    // aud an object
	f.Add("Bearer eyJhbGciOiJIUzI1NiIsImtpZCI6InJzYS0xIn0.eyJzdWIiOiJ4In0.AAAAAAAAAAA") // HS256

	f.Fuzz(func(t *testing.T, authorization string) {
		c, err := v.Verify(context.Background(), authorization)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("Verify(%q) error %T %v, want *Error", authorization, err, err)
			}
			switch e.Code {
			case "", CodeInvalidRequest, CodeInvalidToken:
			default:
				t.Fatalf("Verify(%q) code %q", authorization, e.Code)
			}
			if h := e.WWWAuthenticate("r"); strings.ContainsAny(h, "\r\n\x00") {
				t.Fatalf("WWWAuthenticate = %q: not a single header line", h)
			}
			return
		}
		parts := strings.Split(strings.TrimSpace(authorization[len("Bearer"):]), ".")
		if len(parts) != 3 || !signedPayloads[parts[1]] {
			t.Fatalf("Verify(%q) accepted a payload no seed signed", authorization)
		}
		if c.Subject() != "user-1" {
			t.Fatalf("Verify(%q) Subject = %q, want user-1", authorization, c.Subject())
		}
	})
}
