package auth

import (
	"net/http"
)

// Middleware returns a handler that verifies the request's bearer token
// before calling next.
//
// On success next receives a shallow copy of the request whose header is a
// copy too (the client's request is never edited): every header named in
// ForwardClaims is first removed, whatever its case and whether it is
// spelled with '_' for '-' (upstreams behind CGI-style gateways treat
// X_User_Id as X-User-Id), then set from the token's claims. A claim the
// token lacks leaves its header absent. Nothing else is stripped: the
// Authorization header goes upstream as sent. Without ForwardClaims, next
// gets the request unchanged.
//
// On failure, including a request with several Authorization headers,
// onFail writes the response; next is not called. A nil onFail writes a
// plain 401 with the WWW-Authenticate challenge and no realm.
func (v *Verifier) Middleware(next http.Handler, onFail func(w http.ResponseWriter, r *http.Request, e *Error)) http.Handler {
	if onFail == nil {
		onFail = writeUnauthorized
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var authorization string
		switch vals := r.Header["Authorization"]; len(vals) {
		case 0:
		case 1:
			authorization = vals[0]
		default:
			onFail(w, r, invalidRequest("multiple Authorization headers"))
			return
		}
		ent, e := v.check(r.Context(), authorization)
		if e != nil {
			onFail(w, r, e)
			return
		}
		next.ServeHTTP(w, v.forwardRequest(r, ent))
	})
}

// forwardRequest returns r with the forward_claims headers of ent.
func (v *Verifier) forwardRequest(r *http.Request, ent *entry) *http.Request {
	if len(v.forward) == 0 {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	h := make(http.Header, len(r.Header)+len(v.forward))
	for name, vals := range r.Header {
		if !v.forwarded(name) {
			h[name] = vals // values shared, never mutated: we only replace slices
		}
	}
	for i, f := range v.forward {
		if val := ent.forward[i]; val != "" {
			h[f.header] = []string{val}
		}
	}
	r2.Header = h
	return r2
}

// forwarded reports whether name is one of the forward_claims headers.
func (v *Verifier) forwarded(name string) bool {
	for _, f := range v.forward {
		if sameHeader(name, f.header) {
			return true
		}
	}
	return false
}

// sameHeader compares header names case-insensitively with '_' equal to
// '-'.
func sameHeader(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if fold(a[i]) != fold(b[i]) {
			return false
		}
	}
	return true
}

func fold(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

// writeUnauthorized is Middleware's default failure response.
func writeUnauthorized(w http.ResponseWriter, _ *http.Request, e *Error) {
	w.Header().Set("WWW-Authenticate", e.WWWAuthenticate(""))
	http.Error(w, "unauthorized: "+e.Error(), http.StatusUnauthorized)
}
