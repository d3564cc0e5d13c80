package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Failed-authentication limits: each client address may fail authBurst
// times, then once per authRefill. While a client is limited every request
// of it is refused with 429, the right token included, so that guessing
// costs time. authClients bounds the memory an attacker with many
// addresses can make the limiter use.
const (
	authBurst   = 10
	authRefill  = 6 * time.Second
	authClients = 4096
)

// authenticator checks the admin token and limits failed attempts per
// client. Safe for concurrent use.
type authenticator struct {
	token string // "" = no token required
	now   func() time.Time

	mu      sync.Mutex
	clients map[string]*authBucket
}

// authBucket is a token bucket of allowed failures.
type authBucket struct {
	tokens float64
	last   time.Time
}

func newAuthenticator(token string, now func() time.Time) *authenticator {
	return &authenticator{token: token, now: now, clients: make(map[string]*authBucket)}
}

// check reports whether r may proceed, answering 401 or 429 itself when
// not. The token is accepted as "Authorization: Bearer <token>", or as the
// password of HTTP Basic authentication so that a browser can open the
// status page (the user name is ignored).
func (a *authenticator) check(w http.ResponseWriter, r *http.Request, logger *slog.Logger) bool {
	if a.token == "" {
		return true
	}
	client := clientHost(r.RemoteAddr)
	if wait := a.blocked(client); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "too many failed authentication attempts; retry later")
		return false
	}
	if tokenEqual(presented(r), a.token) {
		return true
	}
	a.fail(client)
	// The log names the client and path, never what was presented.
	logger.Warn("admin authentication failed", "client", client, "method", r.Method, "path", r.URL.Path)
	if r.URL.Path == "/" {
		// A browser shows a login prompt for Basic, not for Bearer.
		w.Header().Set("WWW-Authenticate", `Basic realm="keel admin", charset="UTF-8"`)
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keel admin"`)
	}
	msg := "missing admin token: send Authorization: Bearer <token>"
	if r.Header.Get("Authorization") != "" {
		msg = "invalid admin token"
	}
	writeError(w, http.StatusUnauthorized, msg)
	return false
}

// blocked returns how long client must wait, or 0.
func (a *authenticator) blocked(client string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.clients[client]
	if b == nil {
		return 0
	}
	a.refill(b)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(authRefill))
}

// fail spends one of client's allowed failures.
func (a *authenticator) fail(client string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.clients[client]
	if b == nil {
		if len(a.clients) >= authClients {
			a.evict()
		}
		b = &authBucket{tokens: authBurst, last: a.now()}
		a.clients[client] = b
	}
	a.refill(b)
	b.tokens = max(b.tokens-1, 0)
}

func (a *authenticator) refill(b *authBucket) {
	now := a.now()
	b.tokens = min(authBurst, b.tokens+float64(now.Sub(b.last))/float64(authRefill))
	b.last = now
}

// evict makes room: clients whose bucket is full again carry no state
// worth keeping; if that frees less than a tenth of the table, arbitrary
// clients go too (which at worst gives them their burst back). Freeing a
// tenth at once keeps the scan amortised O(1) per new client under a
// flood of addresses.
func (a *authenticator) evict() {
	for k, b := range a.clients {
		a.refill(b)
		if b.tokens >= authBurst {
			delete(a.clients, k)
		}
	}
	for k := range a.clients {
		if len(a.clients) <= authClients*9/10 {
			break
		}
		delete(a.clients, k)
	}
}

// presented returns the token a request carries, or "".
func presented(r *http.Request) string {
	if t := bearer(r); t != "" {
		return t
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return pw
	}
	return ""
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// tokenEqual compares in constant time. Hashing first makes the time
// independent of the lengths too, which ConstantTimeCompare alone is not.
func tokenEqual(got, want string) bool {
	if got == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func clientHost(remoteAddr string) string {
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return h
	}
	return remoteAddr
}

// actor names who made a request, for the audit log: the verified client
// certificate's subject when there is one, else the client address.
func actor(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return "admin " + r.TLS.VerifiedChains[0][0].Subject.String()
	}
	return "admin " + clientHost(r.RemoteAddr)
}
