package router

// Rule is one route's match criteria plus the value returned on a match.
// Every zero field means "any": a Rule with only an ID matches every request.
// At most one of Path, PathPrefix and PathRegex may be set. Compile copies the
// rule (including Methods, Headers and Query), so the caller may reuse its
// slices and maps afterwards; Value is copied as is.
type Rule[V any] struct {
	// ID names the rule in errors and in Explain. IDs that are not empty
	// must be unique within one Compile call.
	ID string
	// Host is "" or "*" for any host, "api.example.com" for an exact host,
	// "*.example.com" for a wildcard and a regular expression when it
	// contains regex syntax (see the package documentation). It must not
	// carry a port.
	Host string
	// Path matches the normalised request path exactly. It must start
	// with "/".
	Path string
	// PathPrefix matches whole leading path segments. It must start with
	// "/"; a trailing slash is ignored.
	PathPrefix string
	// PathRegex is an anchored, case-sensitive regular expression on the
	// normalised path.
	PathRegex string
	// Methods lists the accepted methods; empty accepts any method.
	Methods []string
	// Headers maps header names (any case) to the exact value the first
	// value of that header must have. All entries must match.
	Headers map[string]string
	// Query maps query keys to the exact decoded value the first
	// occurrence of that key must have. All entries must match.
	Query map[string]string
	// Value is returned, through Result.Rule, when the rule wins.
	Value V
}

// Status is the outcome of a match. The zero Status is not a valid outcome.
type Status uint8

// Match outcomes.
const (
	// Matched means Result.Rule is the winning rule.
	Matched Status = iota + 1
	// NotFound means no rule matched (SPEC: 404 no_route).
	NotFound
	// MethodNotAllowed means no rule matched fully but some rule matched
	// everything except the method (SPEC: 405 with Allow).
	MethodNotAllowed
)

// String returns the lower-case name of s, or "unknown" for an invalid value.
func (s Status) String() string {
	switch s {
	case Matched:
		return "matched"
	case NotFound:
		return "not_found"
	case MethodNotAllowed:
		return "method_not_allowed"
	}
	return "unknown"
}

// Result is the answer of Table.Match. The zero Result has no valid Status.
type Result[V any] struct {
	// Status says which of the other fields are meaningful.
	Status Status
	// Rule is the winner when Status is Matched, otherwise nil. It points
	// into the Table, which shares it between all requests: do not modify
	// it.
	Rule *Rule[V]
	// Allow is set for MethodNotAllowed: the comma-and-space separated,
	// deduplicated, sorted methods of every rule that matched everything
	// but the method, ready for the Allow header.
	Allow string
	// MatchedPrefix is set when the winner is a PathPrefix rule: the
	// leading part of the normalised path that the prefix matched, without
	// a trailing slash ("/api" for prefix "/api/" and path "/api/x"), or
	// "/" for the prefix "/". It is a prefix of Normalize(path), not
	// necessarily of the raw path. Otherwise it is "".
	MatchedPrefix string
}

// Candidate is one rule as Table.Explain saw it.
type Candidate struct {
	// ID is the rule's ID.
	ID string
	// Result is "matched" for the winner, "lost" for a rule that matched
	// the request but has lower precedence than the winner, and "rejected"
	// for a rule that does not match the request.
	Result string
	// Reason says, for people, why the rule won, lost or was rejected.
	Reason string
}

// Candidate results.
const (
	candidateMatched  = "matched"
	candidateLost     = "lost"
	candidateRejected = "rejected"
)
