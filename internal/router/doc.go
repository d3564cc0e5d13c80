// Package router is the compiled request matcher of SPEC section 4. It knows
// nothing about upstreams: a [Table] maps a request's host, method, path,
// query and headers to the value of the winning [Rule], whatever that value
// is (the snapshot stores a *Route).
//
// # Compiling
//
// [Compile] validates the rules, normalises their hosts and paths, compiles
// every regular expression once and indexes the rules by host and path, so
// that [Table.Match] does a handful of hash lookups and allocates nothing in
// the common case. The indexes are read-only open-addressing tables sized
// at compile time, so their longest probe is fixed before the first request.
// A Table never changes after Compile; a new config builds a new Table.
//
// # Hosts
//
// The request host is compared without its port ("example.com:8080",
// "[::1]:80" becomes "::1"), without one trailing dot, and ASCII
// case-insensitively. A rule's Host is one of:
//
//   - "" or "*": any host;
//   - "api.example.com": exact;
//   - "*.example.com": wildcard, matching "a.example.com" and
//     "a.b.example.com" but not "example.com";
//   - anything containing regular expression syntax (one of \ ( ) [ ] { } ^ $
//     | + ? or ".*"): an anchored, case-insensitive regular expression.
//
// Hosts are tried in this order: the exact host, then the wildcard hosts from
// the longest suffix to the shortest, then the regex hosts in config order,
// then the rules with no host. Each of these host groups is searched as a
// whole; when a group has rules but none of them matches the rest of the
// request, the search falls through to the next group. This differs from
// nginx, where a matched server block is final, but it is what users expect
// from a host-less catch-all route: it catches every request the specific
// hosts do not handle.
//
// # Paths
//
// Within a host group the order is: exact path, then the longest path
// prefix, then path regexes in config order, then rules without a path
// matcher. Among rules with the same path matcher the one with more
// constraints wins (a methods list counts one, each header and each query
// entry one); remaining ties go to config order.
//
// A path prefix matches whole segments, like the Gateway API PathPrefix:
// "/api" matches "/api", "/api/" and "/api/x" but not "/apix", and a
// trailing slash in the prefix is ignored ("/api/" matches the same paths as
// "/api"). "/" matches every path.
//
// Paths are matched after [Normalize]: unreserved percent-escapes decoded
// ("%41" is "A", "%2F" stays encoded), "." and ".." segments resolved
// (never above the root) and repeated slashes collapsed. Rule paths are
// normalised the same way at compile time. Path regexes are anchored and
// case-sensitive and see the normalised path.
//
// # Other constraints
//
// Methods compare exactly (methods are upper-case tokens). Header names are
// canonicalised at compile time and the first value of the header must equal
// the rule's value (the [net/http.Header.Get] view). Query entries compare the
// first well-formed occurrence of the key, decoded as [net/url.ParseQuery]
// would decode it, without building a url.Values.
//
// # Results
//
// When no rule matches fully but at least one rule, in any host group,
// matched everything except the method, the result is [MethodNotAllowed]
// with the sorted methods of all such rules in Allow; otherwise it is
// [NotFound].
package router
