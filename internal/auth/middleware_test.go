package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMiddlewareForwardClaims(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	v := newTestVerifier(t, srv, newClock(), func(c *Config) {
		c.ForwardClaims = map[string]string{
			"sub": "X-User-Id", "email": "x-user-email", "groups": "X-Groups", "uid": "X-Uid",
			"admin": "X-Admin", "nested": "X-Nested", "missing": "X-Missing", "evil": "X-Evil",
		}
	})
	tok := sign(t, keys["ed"], claims(map[string]any{
		"email": "a@example.com", "groups": []string{"eng", "ops"}, "uid": 42, "admin": true,
		"nested": map[string]any{"k": "v"}, "evil": "x\r\nX-Injected: 1",
	}))

	var got http.Header
	var gotReq *http.Request
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, gotReq = r.Header, r })
	h := v.Middleware(next, func(w http.ResponseWriter, r *http.Request, e *Error) { t.Errorf("onFail(%v)", e) })

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", bearer(tok))
	r.Header.Set("X-User-Id", "admin") // a client trying to pass as someone else
	r.Header["x-user-email"] = []string{"spoof"}
	r.Header["X_Groups"] = []string{"spoof"}
	r.Header.Set("X-Missing", "spoof")
	r.Header.Set("X-Other", "kept")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got == nil {
		t.Fatal("next not called")
	}

	want := map[string][]string{
		"Authorization": {bearer(tok)},
		"X-User-Id":     {"user-1"},
		"X-User-Email":  {"a@example.com"},
		"X-Groups":      {"eng,ops"},
		"X-Uid":         {"42"},
		"X-Admin":       {"true"},
		"X-Nested":      {`{"k":"v"}`},
		"X-Other":       {"kept"},
	}
	for name, vals := range want {
		if g := got[name]; strings.Join(g, "|") != strings.Join(vals, "|") {
			t.Errorf("upstream %s = %q, want %q", name, g, vals)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("upstream has unexpected header %s: %q", name, got[name])
		}
	}
	if r.Header.Get("X-User-Id") != "admin" || gotReq == r {
		t.Error("the client's request was edited; want a copy for next")
	}
}

func TestMiddlewareWithoutForwardClaims(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	v := newTestVerifier(t, srv, newClock(), nil)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", bearer(sign(t, keys["ed"], claims(nil))))
	var gotReq *http.Request
	v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gotReq = r }), nil).ServeHTTP(httptest.NewRecorder(), r)
	if gotReq != r {
		t.Errorf("next got %p, want the request itself %p (nothing to change)", gotReq, r)
	}
}

func TestMiddlewareFailure(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	srv := newJWKSServer(t, jwks(jwkOf(keys["ed"], false)))
	v := newTestVerifier(t, srv, newClock(), func(c *Config) { c.ForwardClaims = map[string]string{"sub": "X-User-Id"} })
	good := bearer(sign(t, keys["ed"], claims(nil)))
	expired := bearer(sign(t, keys["ed"], claims(map[string]any{"exp": t0.Add(-time.Hour).Unix()})))

	tests := []struct {
		desc     string
		auth     []string
		wantNext bool
		wantErr  string // Error.Error()
	}{
		{"valid", []string{good}, true, ""},
		{"no header", nil, false, "missing bearer token"},
		{"expired", []string{expired}, false, "invalid_token: token expired"},
		{"two headers", []string{good, good}, false, "invalid_request: multiple Authorization headers"},
		{"basic", []string{"Basic Zm9vOmJhcg=="}, false, "authorization scheme is not Bearer"},
	}
	for _, tc := range tests {
		var nextCalled bool
		var gotErr *Error
		h := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { nextCalled = true }),
			func(w http.ResponseWriter, r *http.Request, e *Error) { gotErr = e })
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = tc.auth
		h.ServeHTTP(httptest.NewRecorder(), r)
		if nextCalled != tc.wantNext {
			t.Errorf("%s: next called = %v, want %v", tc.desc, nextCalled, tc.wantNext)
		}
		switch {
		case tc.wantErr == "" && gotErr != nil:
			t.Errorf("%s: onFail(%v), want no call", tc.desc, gotErr)
		case tc.wantErr != "" && (gotErr == nil || gotErr.Error() != tc.wantErr):
			t.Errorf("%s: onFail(%v), want %q", tc.desc, gotErr, tc.wantErr)
		}
	}

	// The default failure writer.
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", expired)
	v.Middleware(http.NotFoundHandler(), nil).ServeHTTP(rec, r)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("default onFail status = %d, want 401", rec.Code)
	}
	if got, want := rec.Header().Get("WWW-Authenticate"), `Bearer error="invalid_token", error_description="token expired"`; got != want {
		t.Errorf("default onFail WWW-Authenticate = %q, want %q", got, want)
	}
}

func TestSameHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"X-User-Id", "X-User-Id", true},
		{"x-user-id", "X-User-Id", true},
		{"X_User_Id", "X-User-Id", true},
		{"X-User-Ids", "X-User-Id", false},
		{"X-User-Ix", "X-User-Id", false},
	}
	for _, tc := range tests {
		if got := sameHeader(tc.a, tc.b); got != tc.want {
			t.Errorf("sameHeader(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
