package auth

import "testing"

func TestWWWAuthenticate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		err   *Error
		realm string
		want  string
	}{
		{"invalid token", invalidToken("token expired"), "api",
			`Bearer realm="api", error="invalid_token", error_description="token expired"`},
		{"no realm", invalidToken("token expired"), "",
			`Bearer error="invalid_token", error_description="token expired"`},
		{"invalid request", invalidRequest("empty bearer token"), "api",
			`Bearer realm="api", error="invalid_request", error_description="empty bearer token"`},
		// RFC 6750 3.1: no credentials, no error code.
		{"no credentials", &Error{Description: "missing bearer token"}, "api", `Bearer realm="api"`},
		{"no credentials, no realm", &Error{Description: "missing bearer token"}, "", `Bearer`},
		{"nil", nil, "api", `Bearer realm="api"`},
		{"no description", &Error{Code: CodeInvalidToken}, "", `Bearer error="invalid_token"`},
		{"realm quoting", nil, `a"b\c`, `Bearer realm="a\"b\\c"`},
		{"realm control bytes", nil, "a\r\nSet-Cookie: x", `Bearer realm="aSet-Cookie: x"`},
		{"description outside RFC 6750's set", &Error{Code: CodeInvalidToken, Description: "bad \"x\" \\ é\n"}, "",
			`Bearer error="invalid_token", error_description="bad x  "`},
	}
	for _, tc := range tests {
		if got := tc.err.WWWAuthenticate(tc.realm); got != tc.want {
			t.Errorf("%s: WWWAuthenticate(%q) = %s, want %s", tc.desc, tc.realm, got, tc.want)
		}
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *Error
		want string
	}{
		{invalidToken("token expired"), "invalid_token: token expired"},
		{&Error{Description: "missing bearer token"}, "missing bearer token"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
