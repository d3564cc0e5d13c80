package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// This file is a small parser of RFC 7517 key sets, limited to the public
// signing keys the accepted algorithms need (RSA n/e, EC P-256/384/521 x/y,
// OKP Ed25519 x). It replaces go-jose, a dependency several times the size
// of this file, most of it for encryption we never do.

// minRSABits rejects RSA keys weaker than NIST's floor (SP 800-131A).
const minRSABits = 2048

// key is one usable public key of a set. Keys are immutable; a refresh that
// finds the same key again reuses the pointer, which keeps the entries of
// the verified-token cache valid across refreshes (see keySet.holds).
type key struct {
	kid string
	alg string // the JWK's "alg"; empty means any algorithm keyMatches allows
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

func (k *key) accepts(alg string) bool {
	return (k.alg == "" || k.alg == alg) && keyMatches(k.pub, alg)
}

// keySet is an immutable parsed JWKS.
type keySet struct {
	byKID map[string][]*key // kid ("" for keys without one) -> keys
	all   []*key
}

// find returns the key for a token's kid and alg, and whether the kid
// names any key at all (known but incompatible means a type mismatch, not
// a rotation). A token without kid is accepted only when exactly one key of
// the set fits its alg: trying several would multiply the cost of a forged
// token.
func (ks *keySet) find(kid, alg string) (k *key, known bool) {
	if ks == nil {
		return nil, false
	}
	if kid != "" {
		cands := ks.byKID[kid]
		for _, c := range cands {
			if c.accepts(alg) {
				return c, true
			}
		}
		return nil, len(cands) > 0
	}
	for _, c := range ks.all {
		if !c.accepts(alg) {
			continue
		}
		if k != nil {
			return nil, false // ambiguous
		}
		k = c
	}
	return k, k != nil
}

// holds reports whether k is still part of the set. nil-safe.
func (ks *keySet) holds(k *key) bool {
	if ks == nil {
		return false
	}
	return slices.Contains(ks.byKID[k.kid], k)
}

// jwk holds the members of RFC 7517/7518 that we read.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	Alg    string   `json:"alg"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// errSkip marks a key that is legitimately not for us (an encryption key,
// an HMAC secret, a curve we do not support): RFC 7517 section 5 says to
// ignore those.
var errSkip = errors.New("skipped")

// parseKeySet parses a JWKS document. Keys that are not for signature
// verification with a supported algorithm are ignored; keys that should be
// usable but are malformed come back as problems. It fails when the
// document is not a key set or has no usable key. Keys equal to one in
// prev are taken from prev.
func parseKeySet(data []byte, prev *keySet) (*keySet, []error, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse jwks: %w", err)
	}
	ks := &keySet{byKID: make(map[string][]*key, len(doc.Keys))}
	var problems []error
	for i, raw := range doc.Keys {
		k, err := parseKey(raw)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("jwks key %d: %w", i, err))
			continue
		}
		k = prev.reuse(k)
		ks.byKID[k.kid] = append(ks.byKID[k.kid], k)
		ks.all = append(ks.all, k)
	}
	if len(ks.all) == 0 {
		if len(problems) > 0 {
			return nil, problems, fmt.Errorf("no usable signing key: %w", problems[0])
		}
		return nil, nil, errors.New("no usable signing key")
	}
	return ks, problems, nil
}

// reuse returns the key of ks equal to k, or k. nil-safe.
func (ks *keySet) reuse(k *key) *key {
	if ks == nil {
		return k
	}
	type equaler interface{ Equal(x crypto.PublicKey) bool }
	for _, old := range ks.byKID[k.kid] {
		if old.alg == k.alg && old.pub.(equaler).Equal(k.pub) {
			return old
		}
	}
	return k
}

func parseKey(raw json.RawMessage) (*key, error) {
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, err
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, errSkip
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return nil, errSkip
	}
	if j.Alg != "" && !signingMethods[j.Alg] {
		return nil, errSkip
	}
	k := &key{kid: j.Kid, alg: j.Alg}
	var err error
	switch j.Kty {
	case "RSA":
		k.pub, err = rsaKey(j)
	case "EC":
		k.pub, err = ecKey(j)
	case "OKP":
		k.pub, err = okpKey(j)
	default:
		return nil, errSkip // "oct" (HMAC secrets) and unknown types
	}
	if err != nil {
		return nil, fmt.Errorf("kid %q: %w", j.Kid, err)
	}
	if k.alg != "" && !keyMatches(k.pub, k.alg) {
		return nil, fmt.Errorf("kid %q: alg %s does not fit a %s key", j.Kid, k.alg, j.Kty)
	}
	return k, nil
}

func rsaKey(j jwk) (*rsa.PublicKey, error) {
	n, err := b64(j.N)
	if err != nil {
		return nil, fmt.Errorf("n: %w", err)
	}
	e, err := b64(j.E)
	if err != nil {
		return nil, fmt.Errorf("e: %w", err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
	if bits := pub.N.BitLen(); bits < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits, want at least %d", bits, minRSABits)
	}
	// Exponents are small odd numbers (almost always 65537); anything over
	// 32 bits is either garbage or a denial-of-service attempt.
	if len(e) == 0 || len(e) > 4 {
		return nil, errors.New("invalid RSA exponent")
	}
	for _, b := range e {
		pub.E = pub.E<<8 | int(b)
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, errors.New("invalid RSA exponent")
	}
	return pub, nil
}

func ecKey(j jwk) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch j.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, errSkip // secp256k1 and friends: not for the ES algorithms we accept
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := b64(j.X)
	if err != nil {
		return nil, fmt.Errorf("x: %w", err)
	}
	y, err := b64(j.Y)
	if err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	// RFC 7518 section 6.2.1.2: x and y are exactly the curve's size.
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("%s coordinates of %d and %d bytes, want %d", j.Crv, len(x), len(y), size)
	}
	point := make([]byte, 0, 1+2*size)
	point = append(append(append(point, 4), x...), y...)
	// ParseUncompressedPublicKey checks that the point is on the curve: an
	// off-curve key is an invalid-curve attack waiting to happen.
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, err
	}
	return pub, nil
}

func okpKey(j jwk) (ed25519.PublicKey, error) {
	if j.Crv != "Ed25519" {
		return nil, errSkip // Ed448, X25519: not signature keys we support
	}
	x, err := b64(j.X)
	if err != nil {
		return nil, fmt.Errorf("x: %w", err)
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("Ed25519 key of %d bytes, want %d", len(x), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(x), nil
}

// b64 decodes base64url without padding (RFC 7515 section 2), tolerating
// padding some issuers add anyway.
func b64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
