package admin

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestTokenEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
		ok        bool
	}{
		{"abc", "abc", true},
		{"abd", "abc", false},
		{"ab", "abc", false},
		{"abcd", "abc", false},
		{"", "", false}, // an empty presented token never passes
		{"", "abc", false},
	}
	for _, tt := range tests {
		if got := tokenEqual(tt.got, tt.want); got != tt.ok {
			t.Errorf("tokenEqual(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.ok)
		}
	}
}

func TestAuthenticator(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	a := newAuthenticator("tok", func() time.Time { return now })
	call := func(client, header string) (int, http.Header) {
		req := httptest.NewRequest("GET", "/api/v2/pools", nil)
		req.RemoteAddr = client + ":1234"
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		if a.check(rec, req, nopLogger()) {
			return 200, rec.Header()
		}
		return rec.Code, rec.Header()
	}
	if code, _ := call("10.0.0.1", "Bearer tok"); code != 200 {
		t.Fatalf("right token = %d", code)
	}
	if code, _ := call("10.0.0.1", "Basic "+basic("any", "tok")); code != 200 {
		t.Fatalf("token as Basic password = %d", code)
	}
	for i := range authBurst {
		if code, h := call("10.0.0.1", "Bearer nope"); code != 401 || h.Get("WWW-Authenticate") == "" {
			t.Fatalf("failure %d = %d (WWW-Authenticate %q), want 401 with a challenge", i, code, h.Get("WWW-Authenticate"))
		}
	}
	code, h := call("10.0.0.1", "Bearer tok")
	if code != 429 {
		t.Fatalf("after %d failures, right token = %d, want 429", authBurst, code)
	}
	if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 1 || ra > int(authRefill/time.Second) {
		t.Fatalf("Retry-After = %q, want 1..%d", h.Get("Retry-After"), int(authRefill/time.Second))
	}
	// Another client is not affected.
	if code, _ := call("10.0.0.2", "Bearer tok"); code != 200 {
		t.Fatalf("other client = %d, want 200", code)
	}
	// One refill period later one attempt is allowed again.
	now = now.Add(authRefill)
	if code, _ := call("10.0.0.1", "Bearer tok"); code != 200 {
		t.Fatalf("after a refill, right token = %d, want 200", code)
	}
}

func TestAuthenticatorBoundsMemory(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	a := newAuthenticator("tok", func() time.Time { return now })
	for i := range authClients * 2 {
		a.fail("client-" + strconv.Itoa(i))
	}
	if n := len(a.clients); n > authClients {
		t.Fatalf("%d clients tracked, want at most %d", n, authClients)
	}
}

func TestNoTokenMeansOpen(t *testing.T) {
	t.Parallel()
	a := newAuthenticator("", time.Now)
	rec := httptest.NewRecorder()
	if !a.check(rec, httptest.NewRequest("GET", "/api/v2/pools", nil), nopLogger()) {
		t.Fatalf("no token configured: request refused with %d", rec.Code)
	}
}
