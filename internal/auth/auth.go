// Package auth verifies JWT bearer tokens (RFC 7519, RFC 6750) for the
// proxy's auth middleware stage (SPEC section 3, `type: auth` with
// `config.jwt`).
//
// A Verifier checks the token's signature against a JSON Web Key Set (RFC
// 7517) read from a file or fetched over HTTP, then its issuer, audience
// and validity period. Only asymmetric algorithms are accepted (the RS, PS
// and ES families and EdDSA): "none" and HMAC never are, whatever the
// token's header says, and the key that verifies a token must be of the
// type its algorithm needs, so the classic algorithm-confusion attacks
// (alg "none"; HS256 keyed with a published RSA key) cannot work.
//
// Keys live behind an atomic pointer, so verification never locks on key
// lookup. A small bounded cache of recently verified tokens lets a client
// that sends the same token again skip the signature check, whose cost
// (tens of microseconds) would otherwise dominate; expiry is still checked
// on every request.
//
// Nothing here starts a goroutine: the periodic JWKS refresh runs in
// Verifier.Run, which its owner calls and stops.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults for the zero values of Config.
const (
	// DefaultLeeway absorbs clock skew between the issuer and the proxy
	// when checking exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultRefreshInterval is how often Run refetches the key set.
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultCacheSize is the number of verified tokens remembered.
	DefaultCacheSize = 1024
	// DefaultFetchTimeout bounds one JWKS fetch when Config.HTTPClient is
	// nil.
	DefaultFetchTimeout = 5 * time.Second
)

const (
	// minRefreshGap rate-limits the refreshes that requests trigger (first
	// use, unknown kid): tokens with made-up kids must not turn the proxy
	// into an amplifier against the identity provider.
	minRefreshGap = 10 * time.Second
	// maxTokenBytes bounds the work an attacker can ask of the parser;
	// real tokens, even with large group claims, are a few KB.
	maxTokenBytes = 16 << 10
)

// defaultAlgorithms is the SPEC's default set for an empty algorithms list.
var defaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// Config configures a Verifier. The zero value of each optional field means
// the default named on it. New copies what it keeps, so the caller may
// reuse a Config afterwards.
type Config struct {
	// Issuer must equal the token's iss claim. Empty means iss is not
	// checked.
	Issuer string
	// Audience must be one of the token's aud values (aud may be a string
	// or an array). Empty means aud is not checked.
	Audience string
	// Algorithms are the accepted "alg" values: RS256/384/512,
	// PS256/384/512, ES256/384/512 and EdDSA. Empty means RS256, ES256 and
	// EdDSA. Anything else, "none" and HS256 included, makes New fail.
	Algorithms []string
	// JWKSURL is an http(s) URL serving the key set. Exactly one of
	// JWKSURL and JWKSFile must be set. New does not fetch it: the first
	// Verify (or Run) does, so validating a config needs no network.
	JWKSURL string
	// JWKSFile is a local key set, read by New (a missing or malformed file
	// makes New fail) and re-read by Run.
	JWKSFile string
	// ForwardClaims maps a claim name to the request header that carries
	// its value upstream. Client-sent copies of those headers are always
	// removed. Nil means no headers are set.
	ForwardClaims map[string]string
	// Leeway is the clock skew allowed for exp, nbf and iat. Zero means
	// DefaultLeeway; negative values make New fail.
	Leeway time.Duration
	// RefreshInterval is how often Run refetches the key set. Zero means
	// DefaultRefreshInterval. Independently, a token whose kid is unknown
	// triggers a refetch, at most once per 10 seconds.
	RefreshInterval time.Duration
	// HTTPClient fetches JWKSURL. Nil means a client with a
	// DefaultFetchTimeout timeout.
	HTTPClient *http.Client
	// CacheSize bounds the cache of verified tokens (entries). Zero means
	// DefaultCacheSize; negative disables the cache, so every request pays
	// for a signature check. An entry takes about 2 KB for a typical
	// token, at most about 16 KB: tokens over 4 KB are never cached.
	CacheSize int
	// OnError, if non-nil, receives key set problems that do not fail a
	// request by themselves: a failed refresh (the previous keys stay in
	// use) or an unusable key in a fetched set. It may be called from
	// request goroutines and from Run, concurrently.
	OnError func(error)
}

// Verifier checks bearer tokens against one auth stage's configuration.
// Build it with New; all methods are safe for concurrent use. A Verifier
// holds no goroutines: it needs no Close, and the caller that runs Run
// stops it with Run's context.
type Verifier struct {
	allowed  []string
	leeway   time.Duration
	interval time.Duration
	parser   *jwt.Parser
	forward  []forwardClaim // sorted by claim name
	load     func(ctx context.Context) ([]byte, error)
	onError  func(error)
	now      func() time.Time
	gap      time.Duration // minRefreshGap; shorter in tests of Run
	cache    *tokenCache   // nil when disabled

	// keys is the current key set, nil until the first successful load.
	// Requests read it without locking.
	keys atomic.Pointer[keySet]

	// mu guards the refresh bookkeeping below; the hot path never takes it.
	mu        sync.Mutex
	inflight  *fetchCall // the running fetch, shared by concurrent callers
	lastFetch time.Time  // start of the latest fetch, for minRefreshGap
}

// forwardClaim is one forward_claims entry, with the header name in
// canonical form.
type forwardClaim struct {
	claim, header string
}

// New validates c and builds a Verifier. For JWKSFile it reads and parses
// the key set now, so a bad file rejects the config at apply; for JWKSURL
// it does no I/O.
func New(c Config) (*Verifier, error) {
	return newVerifier(c, time.Now)
}

// newVerifier is New with an injectable clock, for tests of expiry and of
// the refresh rate limit.
func newVerifier(c Config, now func() time.Time) (*Verifier, error) {
	if c.Leeway < 0 || c.RefreshInterval < 0 {
		return nil, errors.New("auth: leeway and refresh interval must not be negative")
	}
	v := &Verifier{
		leeway:   orDefault(c.Leeway, DefaultLeeway),
		interval: orDefault(c.RefreshInterval, DefaultRefreshInterval),
		onError:  c.OnError,
		now:      now,
		gap:      minRefreshGap,
	}
	var err error
	if v.allowed, err = algorithms(c.Algorithms); err != nil {
		return nil, err
	}
	if v.forward, err = forwardClaims(c.ForwardClaims); err != nil {
		return nil, err
	}
	v.parser = newParser(c, v.allowed, v.leeway, now)
	if c.CacheSize >= 0 {
		v.cache = newTokenCache(orDefault(c.CacheSize, DefaultCacheSize))
	}
	if err := v.setSource(c); err != nil {
		return nil, err
	}
	return v, nil
}

// newParser configures the library's checks: everything but the key choice
// (keyFor) and the header parsing (bearerToken).
func newParser(c Config, allowed []string, leeway time.Duration, now func() time.Time) *jwt.Parser {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(allowed),
		jwt.WithJSONNumber(), // keeps big numeric ids exact for forward_claims
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithIssuedAt(),
		// A token without exp would be a credential that never expires;
		// issuers of access tokens always set it.
		jwt.WithExpirationRequired(),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	return jwt.NewParser(opts...)
}

// setSource picks where keys come from; a file is read now.
func (v *Verifier) setSource(c Config) error {
	if (c.JWKSURL == "") == (c.JWKSFile == "") {
		return errors.New("auth: set exactly one of JWKS URL and JWKS file")
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("auth: invalid JWKS URL %q: want an absolute http(s) URL", c.JWKSURL)
		}
		client := c.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: DefaultFetchTimeout}
		}
		v.load = httpSource(client, c.JWKSURL)
		return nil
	}
	v.load = fileSource(c.JWKSFile)
	data, err := v.load(context.Background()) // not a request: New runs at config apply
	var (
		ks       *keySet
		problems []error
	)
	if err == nil {
		ks, problems, err = parseKeySet(data, nil)
	}
	if err == nil && len(problems) > 0 {
		err = problems[0] // an operator's own file should have no bad keys
	}
	if err != nil {
		return fmt.Errorf("auth: jwks file: %w", err)
	}
	v.keys.Store(ks)
	v.lastFetch = v.now()
	return nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// signingMethods are the algorithms a Verifier may accept. HMAC and "none"
// are absent on purpose: a shared secret has no place in a proxy config,
// and accepting them is the root of algorithm-confusion attacks.
var signingMethods = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

func algorithms(in []string) ([]string, error) {
	if len(in) == 0 {
		return slices.Clone(defaultAlgorithms), nil
	}
	out := make([]string, 0, len(in))
	for _, a := range in {
		if !signingMethods[a] {
			return nil, fmt.Errorf("auth: unsupported algorithm %q", a)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

func forwardClaims(m map[string]string) ([]forwardClaim, error) {
	out := make([]forwardClaim, 0, len(m))
	for claim, header := range m {
		if claim == "" || !validHeaderName(header) {
			return nil, fmt.Errorf("auth: forward claim %q: invalid header name %q", claim, header)
		}
		out = append(out, forwardClaim{claim: claim, header: http.CanonicalHeaderKey(header)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].claim < out[j].claim })
	for i := 1; i < len(out); i++ {
		for j := range i {
			if sameHeader(out[i].header, out[j].header) {
				return nil, fmt.Errorf("auth: forward claims %q and %q both set header %s", out[j].claim, out[i].claim, out[i].header)
			}
		}
	}
	return out, nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// Claims are the claims of a verified token. The zero value has none.
// Claims are shared with the Verifier's cache: they are safe for concurrent
// reads, and values obtained from Get (maps and slices included) must not
// be modified.
type Claims struct {
	m jwt.MapClaims
}

// Get returns the named claim as decoded from JSON (string, json.Number,
// bool, []any, map[string]any or nil) and whether the token had it.
func (c Claims) Get(name string) (any, bool) {
	v, ok := c.m[name]
	return v, ok
}

// Subject returns the sub claim, or "" when it is absent or not a string.
func (c Claims) Subject() string {
	s, _ := c.m["sub"].(string)
	return s
}

// Verify checks an Authorization header value of the form "Bearer <jwt>"
// and returns the token's claims. Every failure is an *Error. ctx bounds
// only a key set fetch that this call may have to wait for (first use, or
// a kid not in the cached set).
func (v *Verifier) Verify(ctx context.Context, authorization string) (Claims, error) {
	ent, e := v.check(ctx, authorization)
	if e != nil {
		return Claims{}, e // not a typed nil: e is non-nil here
	}
	return ent.claims, nil
}

// check is Verify returning the cache entry, which also holds the
// forward_claims header values computed once per token.
func (v *Verifier) check(ctx context.Context, authorization string) (*entry, *Error) {
	raw, e := bearerToken(authorization)
	if e != nil {
		return nil, e
	}
	now := v.now()
	if ent := v.cache.get(raw); ent != nil && v.keys.Load().holds(ent.key) {
		// The signature was verified before with a key that is still in the
		// set; the time window is not fixed, so it is checked every time.
		if e := ent.checkTime(now, v.leeway); e != nil {
			return nil, e
		}
		return ent, nil
	}
	// Only now, on a miss: a cached token passed this check when it was
	// verified, and the scan is the costliest step of a hit.
	if !isB64Token(raw) {
		return nil, invalidRequest("malformed bearer token")
	}
	ent, e := v.verify(ctx, raw)
	if e != nil {
		return nil, e
	}
	v.cache.put(raw, ent, now, v.leeway)
	return ent, nil
}

// bearerToken extracts the token of an RFC 6750 section 2.1 credential;
// the caller checks its characters with isB64Token.
func bearerToken(h string) (string, *Error) {
	if h == "" {
		return "", &Error{Description: "missing bearer token"}
	}
	if len(h) < len("Bearer") || !strings.EqualFold(h[:len("Bearer")], "Bearer") {
		// RFC 6750 section 3.1: a request that does not try Bearer at all
		// gets a challenge without an error code.
		return "", &Error{Description: "authorization scheme is not Bearer"}
	}
	tok := h[len("Bearer"):]
	if tok != "" && tok[0] != ' ' {
		return "", invalidRequest("malformed bearer token")
	}
	tok = strings.TrimLeft(tok, " ") // 1*SP
	switch {
	case tok == "":
		return "", invalidRequest("empty bearer token")
	case len(tok) > maxTokenBytes:
		return "", invalidToken("token too large")
	}
	return tok, nil
}

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return false
	}
	// Bitmasks of the allowed bytes below 64 and from 64 to 127: one shift
	// per byte instead of a chain of comparisons.
	const (
		lo = 1<<'+' | 1<<'-' | 1<<'.' | 1<<'/' | (1<<10-1)<<'0'
		hi = (1<<26-1)<<('A'-64) | 1<<('_'-64) | (1<<26-1)<<('a'-64) | 1<<('~'-64)
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 64:
			if lo>>c&1 == 0 {
				return false
			}
		case c < 128:
			if hi>>(c-64)&1 == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// verify is the full check of a token not found in the cache.
func (v *Verifier) verify(ctx context.Context, raw string) (*entry, *Error) {
	ks, e := v.currentKeys(ctx)
	if e != nil {
		return nil, e
	}
	var used *key
	keyFunc := func(t *jwt.Token) (any, error) {
		k, e := v.keyFor(ctx, ks, t)
		if e != nil {
			return nil, e
		}
		used = k
		return k.pub, nil
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(raw, claims, keyFunc)
	if err != nil {
		return nil, v.tokenError(tok, claims, err)
	}
	return v.newEntry(claims, used)
}

// currentKeys returns the key set, loading it on first use.
func (v *Verifier) currentKeys(ctx context.Context) (*keySet, *Error) {
	if ks := v.keys.Load(); ks != nil {
		return ks, nil
	}
	_ = v.refresh(ctx, false) // failures went to OnError; the nil check says it all
	if ks := v.keys.Load(); ks != nil {
		return ks, nil
	}
	return nil, invalidToken("signing keys unavailable")
}

// keyFor picks the key for a parsed, not yet verified token. It trusts
// nothing in the header but kid, and alg only after the parser has checked
// it against the allowed list: the key's own type and alg decide.
func (v *Verifier) keyFor(ctx context.Context, ks *keySet, t *jwt.Token) (*key, *Error) {
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 section 4.1.11: we understand no extension, so a token
		// that marks one critical (e.g. "b64": false) must be rejected.
		return nil, invalidToken("unsupported critical header")
	}
	kid, ok := t.Header["kid"].(string)
	if !ok && t.Header["kid"] != nil {
		return nil, invalidToken("malformed token")
	}
	alg := t.Method.Alg()
	k, known := ks.find(kid, alg)
	if k == nil && !known && kid != "" {
		// A new kid usually means the issuer rotated keys: refetch once
		// (rate-limited) before giving up.
		if v.refresh(ctx, false) == nil {
			k, known = v.keys.Load().find(kid, alg)
		}
	}
	switch {
	case k != nil:
		return k, nil
	case known:
		return nil, invalidToken("signing key does not match algorithm")
	case kid == "":
		return nil, invalidToken("token has no key id")
	}
	return nil, invalidToken("unknown signing key")
}

// tokenError maps a parser error to the description a client sees. The
// parser joins every failed claim check; the order below picks the most
// useful one.
func (v *Verifier) tokenError(tok *jwt.Token, claims jwt.MapClaims, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, jwt.ErrTokenMalformed) || tok == nil {
		return invalidToken("malformed token")
	}
	if alg, _ := tok.Header["alg"].(string); !slices.Contains(v.allowed, alg) {
		return invalidToken("algorithm not allowed")
	}
	var desc string
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		desc = "invalid signature"
	case errors.Is(err, jwt.ErrInvalidType):
		desc = "malformed claims"
	case claims["exp"] == nil:
		desc = "token has no expiry"
	case errors.Is(err, jwt.ErrTokenExpired):
		desc = "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		desc = "token not yet valid"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		desc = "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), claims["iss"] == nil && errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		desc = "issuer mismatch"
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		desc = "audience mismatch"
	default:
		desc = "invalid token"
	}
	return invalidToken(desc)
}

// newEntry builds the cache entry of a verified token.
func (v *Verifier) newEntry(claims jwt.MapClaims, k *key) (*entry, *Error) {
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, invalidToken("token has no expiry") // unreachable: the parser requires exp
	}
	ent := &entry{claims: Claims{m: claims}, exp: exp.Time, key: k}
	if nbf, _ := claims.GetNotBefore(); nbf != nil {
		ent.nbf = nbf.Time
	}
	if len(v.forward) > 0 {
		ent.forward = make([]string, len(v.forward))
		for i, f := range v.forward {
			ent.forward[i] = headerValue(claims[f.claim])
		}
	}
	return ent, nil
}

// headerValue formats a claim for a request header: strings as they are,
// numbers and booleans in JSON form, arrays of those joined with ",",
// anything else as compact JSON. It returns "" (header not set) for a
// missing claim and for values a header cannot carry (control bytes).
func headerValue(c any) string {
	var s string
	switch c := c.(type) {
	case nil:
		return ""
	case string:
		s = c
	case json.Number:
		s = c.String()
	case bool:
		s = fmt.Sprint(c)
	case []any:
		parts := make([]string, 0, len(c))
		for _, x := range c {
			switch x.(type) {
			case string, json.Number, bool:
				parts = append(parts, headerValue(x))
			default:
				return jsonValue(c)
			}
		}
		s = strings.Join(parts, ",")
	default:
		s = jsonValue(c)
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return "" // would split or corrupt the header block
		}
	}
	return s
}

func jsonValue(c any) string {
	b, err := json.Marshal(c)
	if err != nil {
		return ""
	}
	return string(b)
}

// keyMatches reports whether pub can verify alg: the check that makes a
// key of one type unusable under another type's algorithm.
func keyMatches(pub any, alg string) bool {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return p.Curve == elliptic.P256()
		case "ES384":
			return p.Curve == elliptic.P384()
		case "ES512":
			return p.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
