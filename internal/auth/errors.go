package auth

import "strings"

// Error codes of RFC 6750 section 3.1 used by Error.Code.
const (
	// CodeInvalidRequest: the Authorization header tries Bearer but is
	// malformed (no token, bad characters, several Authorization headers).
	CodeInvalidRequest = "invalid_request"
	// CodeInvalidToken: the token is malformed, expired, not yet valid,
	// wrongly signed, or for another issuer or audience.
	CodeInvalidToken = "invalid_token"
)

// Error is why a request failed authentication; the proxy answers it with
// 401 unauthorized and the WWW-Authenticate value of WWWAuthenticate.
//
// An empty Code means the request carried no Bearer credentials at all (no
// Authorization header, or another scheme): RFC 6750 section 3.1 says such
// a challenge should carry no error code. Description is a short, fixed
// English phrase ("token expired") that never echoes request data, so it is
// safe to show to clients and to log.
type Error struct {
	Code        string // "", CodeInvalidRequest or CodeInvalidToken
	Description string
}

func invalidRequest(desc string) *Error { return &Error{Code: CodeInvalidRequest, Description: desc} }
func invalidToken(desc string) *Error   { return &Error{Code: CodeInvalidToken, Description: desc} }

// Error implements error: "invalid_token: token expired", or the bare
// description when there is no code.
func (e *Error) Error() string {
	if e.Code == "" {
		return e.Description
	}
	return e.Code + ": " + e.Description
}

// WWWAuthenticate returns the RFC 6750 challenge for e, for example
//
//	Bearer realm="api", error="invalid_token", error_description="token expired"
//
// An empty realm is left out, and so are error and error_description when
// Code is empty (or e is nil). Quotes and backslashes in realm are escaped
// as RFC 9110 quoted-pairs; characters RFC 6750 forbids in
// error_description are dropped.
func (e *Error) WWWAuthenticate(realm string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string, keep func(byte) bool) {
		b.WriteString(sep)
		sep = ", "
		b.WriteString(name)
		b.WriteString(`="`)
		for i := 0; i < len(value); i++ {
			c := value[i]
			switch {
			case !keep(c):
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	if realm != "" {
		param("realm", realm, qdText)
	}
	if e != nil && e.Code != "" {
		param("error", e.Code, descText)
		if e.Description != "" {
			param("error_description", e.Description, descText)
		}
	}
	return b.String()
}

// qdText keeps what a quoted-string may hold (RFC 9110 section 5.6.4),
// quotes and backslashes included (they get escaped); control bytes go.
func qdText(c byte) bool { return c == '\t' || c >= ' ' && c != 0x7f }

// descText keeps RFC 6750's %x20-21 / %x23-5B / %x5D-7E: printable ASCII
// without '"' and '\'.
func descText(c byte) bool { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' }
