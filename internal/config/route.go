package config

import "strings"

// Route matches requests and names what serves them. Matching semantics
// (precedence, normalisation) belong to the router; this type only
// describes and validates the match.
type Route struct {
	// ID is unique among routes, [A-Za-z0-9_.-]+. Required; it labels
	// metrics and logs.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// Host matches the request host, case-insensitively and without the
	// port: an exact name ("api.example.com"), a wildcard
	// ("*.example.com", one or more labels), or a regular expression (any
	// value containing \ ( ) [ ] { } ^ $ | + ? or ".*"), which must match
	// the whole host. Empty matches every host. See HostKind.
	Host string `json:"host,omitempty" yaml:"host,omitempty"`
	// Path matches the request path exactly. At most one of Path,
	// PathPrefix and PathRegex; none matches every path.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// PathPrefix matches paths starting with it.
	PathPrefix string `json:"path_prefix,omitempty" yaml:"path_prefix,omitempty"`
	// PathRegex is a regular expression (Go RE2 syntax) that must match the
	// whole path.
	PathRegex string `json:"path_regex,omitempty" yaml:"path_regex,omitempty"`
	// Methods restricts the HTTP methods; ApplyDefaults upper-cases them.
	// Empty means any method.
	Methods []string `json:"methods,omitempty" yaml:"methods,omitempty"`
	// Headers must all be present with exactly these values. Empty means no
	// header condition.
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	// Query parameters must all be present with exactly these values.
	// Empty means no query condition.
	Query map[string]string `json:"query,omitempty" yaml:"query,omitempty"`
	// Pool is the id of the pool that serves the route. Required unless a
	// traffic_management entry for this route names a stable_pool.
	Pool string `json:"pool,omitempty" yaml:"pool,omitempty"`
	// Policy is the id of a policy; empty means no timeout, no retries, no
	// limits beyond the server's.
	Policy string `json:"policy,omitempty" yaml:"policy,omitempty"`
	// Middleware is the id of a middleware chain; empty means none. Not
	// supported yet in this release.
	Middleware string `json:"middleware,omitempty" yaml:"middleware,omitempty"`
	// RequireMTLS answers 403 mtls_required unless the client presented a
	// verified certificate. Default false. Not supported yet in this
	// release.
	RequireMTLS bool `json:"require_mtls,omitempty" yaml:"require_mtls,omitempty"`
	// Rewrite changes the upstream path; nil sends the path as the client
	// sent it.
	Rewrite *Rewrite `json:"rewrite,omitempty" yaml:"rewrite,omitempty"`
}

// Rewrite changes the path sent upstream.
type Rewrite struct {
	// PathPrefix replaces the matched path_prefix (or the whole exact
	// path; with no path matcher, the leading "/"). Must start with "/".
	PathPrefix string `json:"path_prefix,omitempty" yaml:"path_prefix,omitempty"`
}

// HostKind says how a route's host is matched. The zero value is
// HostAny.
type HostKind int

// Host kinds, in the router's precedence order.
const (
	// HostAny is an empty host: every host matches.
	HostAny HostKind = iota
	// HostExact compares the whole host case-insensitively.
	HostExact
	// HostWildcard is "*.suffix": any host ending in ".suffix".
	HostWildcard
	// HostRegex is an anchored regular expression; see AnchoredRegex.
	HostRegex
)

// String names the kind as docs and the admin API do.
func (k HostKind) String() string {
	switch k {
	case HostExact:
		return "exact"
	case HostWildcard:
		return "wildcard"
	case HostRegex:
		return "regex"
	}
	return "any"
}

// regexHostChars are the characters that make a host a regular expression.
const regexHostChars = `\()[]{}^$|+?`

// ClassifyHost says how host is matched: empty is HostAny; a value with any
// of \ ( ) [ ] { } ^ $ | + ? or ".*" is HostRegex; "*." followed by a name
// is HostWildcard; anything else is HostExact.
func ClassifyHost(host string) HostKind {
	switch {
	case host == "":
		return HostAny
	case strings.ContainsAny(host, regexHostChars) || strings.Contains(host, ".*"):
		return HostRegex
	case strings.HasPrefix(host, "*."):
		return HostWildcard
	}
	return HostExact
}

// HostKind classifies r.Host; see ClassifyHost.
func (r Route) HostKind() HostKind { return ClassifyHost(r.Host) }

// PathKind says how a route's path is matched. The zero value is PathAny.
type PathKind int

// Path kinds.
const (
	// PathAny means no path matcher: every path matches.
	PathAny PathKind = iota
	// PathExact is Route.Path.
	PathExact
	// PathPrefix is Route.PathPrefix.
	PathPrefix
	// PathRegex is Route.PathRegex, anchored; see AnchoredRegex.
	PathRegex
)

// String names the kind as docs and the admin API do.
func (k PathKind) String() string {
	switch k {
	case PathExact:
		return "exact"
	case PathPrefix:
		return "prefix"
	case PathRegex:
		return "regex"
	}
	return "any"
}

// PathMatch returns the route's path matcher and its value. When a config
// sets more than one (which Validate rejects) the first of path,
// path_prefix, path_regex wins.
func (r Route) PathMatch() (PathKind, string) {
	switch {
	case r.Path != "":
		return PathExact, r.Path
	case r.PathPrefix != "":
		return PathPrefix, r.PathPrefix
	case r.PathRegex != "":
		return PathRegex, r.PathRegex
	}
	return PathAny, ""
}

// AnchoredRegex wraps a host or path regular expression so that it must
// match the whole input: "^(?:" + expr + ")$". Validation compiles exactly
// this form, so the router should too.
func AnchoredRegex(expr string) string {
	return "^(?:" + expr + ")$"
}
