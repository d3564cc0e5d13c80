package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"maps"
	"math/big"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	with := func(base map[string]any, set map[string]any) map[string]any {
		m := maps.Clone(base)
		for k, v := range set {
			if v == nil {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return m
	}
	rsaJWK, ecJWK, edJWK := jwkOf(keys["rsa"], false), jwkOf(keys["ec"], false), jwkOf(keys["ed"], false)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallJWK := with(rsaJWK, map[string]any{"n": b64u(small.N.Bytes())})

	tests := []struct {
		desc string
		jwk  map[string]any
		want string // "" usable, "skip" ignored, else a problem containing it
	}{
		{"RSA", rsaJWK, ""},
		{"RSA with alg", with(rsaJWK, map[string]any{"alg": "RS256"}), ""},
		{"EC P-256", ecJWK, ""},
		{"EC P-384", jwkOf(keys["ec384"], false), ""},
		{"Ed25519", edJWK, ""},
		{"no use", with(edJWK, map[string]any{"use": nil}), ""},
		{"padded base64", with(edJWK, map[string]any{"x": edJWK["x"].(string) + "="}), ""},
		{"key_ops verify", with(edJWK, map[string]any{"key_ops": []string{"verify"}}), ""},
		{"use enc", with(rsaJWK, map[string]any{"use": "enc"}), "skip"},
		{"key_ops encrypt", with(rsaJWK, map[string]any{"key_ops": []string{"encrypt"}}), "skip"},
		{"alg RSA-OAEP", with(rsaJWK, map[string]any{"alg": "RSA-OAEP"}), "skip"},
		{"alg HS256", map[string]any{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}, "skip"},
		{"kty oct", map[string]any{"kty": "oct", "k": "c2VjcmV0"}, "skip"},
		{"unknown kty", map[string]any{"kty": "XYZ"}, "skip"},
		{"secp256k1", with(ecJWK, map[string]any{"crv": "secp256k1"}), "skip"},
		{"Ed448", with(edJWK, map[string]any{"crv": "Ed448"}), "skip"},
		{"RSA 1024 bits", smallJWK, "1024 bits"},
		{"RSA even exponent", with(rsaJWK, map[string]any{"e": b64u([]byte{1, 0, 0})}), "exponent"},
		{"RSA exponent 1", with(rsaJWK, map[string]any{"e": b64u([]byte{1})}), "exponent"},
		{"RSA huge exponent", with(rsaJWK, map[string]any{"e": b64u(big.NewInt(1<<40 + 1).Bytes())}), "exponent"},
		{"RSA no n", with(rsaJWK, map[string]any{"n": nil}), "n: missing"},
		{"RSA bad base64", with(rsaJWK, map[string]any{"n": "!!!"}), "illegal base64"},
		{"EC short x", with(ecJWK, map[string]any{"x": b64u(make([]byte, 31))}), "coordinates"},
		{"EC off curve", with(ecJWK, map[string]any{"x": b64u(make([]byte, 32))}), "not on curve"},
		{"EC on the wrong curve", with(ecJWK, map[string]any{"crv": "P-384"}), "coordinates"},
		{"Ed25519 short", with(edJWK, map[string]any{"x": b64u(make([]byte, 31))}), "31 bytes"},
		{"alg for another key type", with(rsaJWK, map[string]any{"alg": "ES256"}), "does not fit"},
		{"ES384 on P-256", with(ecJWK, map[string]any{"alg": "ES384"}), "does not fit"},
		{"not an object", nil, "cannot unmarshal"},
	}
	for _, tc := range tests {
		var raw []byte
		if tc.jwk == nil {
			raw = []byte(`"x"`)
		} else {
			raw = jwks(tc.jwk)
			raw = raw[len(`{"keys":[`) : len(raw)-len(`]}`)]
		}
		k, err := parseKey(raw)
		switch {
		case tc.want == "" && (err != nil || k == nil):
			t.Errorf("%s: parseKey = %v, %v; want a key", tc.desc, k, err)
		case tc.want == "skip" && !errors.Is(err, errSkip):
			t.Errorf("%s: parseKey error = %v, want errSkip", tc.desc, err)
		case tc.want != "" && tc.want != "skip" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: parseKey error = %v, want one containing %q", tc.desc, err, tc.want)
		}
	}
}

func TestParseKeySet(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	bad := jwkOf(keys["ec"], false)
	bad["x"] = "!!"
	doc := jwks(jwkOf(keys["rsa"], false), jwkOf(keys["ec"], false), map[string]any{"kty": "oct", "k": "eA"}, bad)
	ks, problems, err := parseKeySet(doc, nil)
	if err != nil {
		t.Fatalf("parseKeySet = %v", err)
	}
	if len(ks.all) != 2 || len(problems) != 1 {
		t.Errorf("parseKeySet: %d keys, %d problems; want 2 keys (oct skipped), 1 problem", len(ks.all), len(problems))
	}

	// A refresh finding the same keys keeps their identity (the token
	// cache depends on it); a changed key under the same kid is new.
	ks2, _, err := parseKeySet(doc, ks)
	if err != nil {
		t.Fatal(err)
	}
	if ks2.byKID["rsa-1"][0] != ks.byKID["rsa-1"][0] || ks2.byKID["ec-1"][0] != ks.byKID["ec-1"][0] {
		t.Error("parseKeySet with prev: equal keys got new identities")
	}
	swapped := jwkOf(keys["rsa2"], false)
	swapped["kid"] = "rsa-1"
	ks3, _, err := parseKeySet(jwks(swapped), ks)
	if err != nil {
		t.Fatal(err)
	}
	if ks3.byKID["rsa-1"][0] == ks.byKID["rsa-1"][0] {
		t.Error("parseKeySet with prev: a different key under the same kid reused the old key")
	}
	if ks3.holds(ks.byKID["rsa-1"][0]) {
		t.Error("holds(old key) = true after the kid changed key, want false")
	}
}

func TestKeySetFind(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	ks, _, err := parseKeySet(jwks(jwkOf(keys["rsa"], false), jwkOf(keys["ec"], true), jwkOf(keys["ed"], false)), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kid, alg  string
		wantFound bool
		wantKnown bool
	}{
		{"rsa-1", "RS256", true, true},
		{"rsa-1", "PS512", true, true},
		{"rsa-1", "ES256", false, true},
		{"ec-1", "ES256", true, true},
		{"ec-1", "ES384", false, true}, // P-256 key
		{"ed-1", "EdDSA", true, true},
		{"ed-1", "RS256", false, true},
		{"nope", "RS256", false, false},
		{"", "EdDSA", true, true}, // one Ed25519 key: no kid needed
		{"", "ES512", false, false},
	}
	for _, tc := range tests {
		k, known := ks.find(tc.kid, tc.alg)
		if (k != nil) != tc.wantFound || known != tc.wantKnown {
			t.Errorf("find(%q, %s) = %v, %v; want found %v, known %v", tc.kid, tc.alg, k != nil, known, tc.wantFound, tc.wantKnown)
		}
	}
	var nilSet *keySet
	if k, _ := nilSet.find("rsa-1", "RS256"); k != nil || nilSet.holds(&key{}) {
		t.Error("nil key set found a key")
	}
}
