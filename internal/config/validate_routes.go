package config

import (
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

func (v *validator) routes() {
	first := make(map[string]int, len(v.c.Routes))
	var sig []byte
	for i := range v.c.Routes {
		r := &v.c.Routes[i]
		e := entryPath{"routes", i}
		v.routeMatch(e, r)
		v.routeRefs(e, r)
		// An identical earlier route wins every request this one could
		// match, so this one is dead configuration, almost always a
		// copy-paste mistake.
		sig = appendRouteSignature(sig[:0], r)
		if j, ok := first[string(sig)]; ok {
			v.add(e.String(), "unreachable: shadowed by %s", describeRef("routes", j, v.c.Routes[j].ID))
			continue
		}
		first[string(sig)] = i
	}
}

// routeMatch checks the host, path, method, header and query matchers.
func (v *validator) routeMatch(e entryPath, r *Route) {
	v.host(e, r.Host)
	if r.Path != "" && r.PathPrefix != "" || r.Path != "" && r.PathRegex != "" || r.PathPrefix != "" && r.PathRegex != "" {
		var set []string
		for _, m := range []struct{ key, val string }{{"path", r.Path}, {"path_prefix", r.PathPrefix}, {"path_regex", r.PathRegex}} {
			if m.val != "" {
				set = append(set, m.key)
			}
		}
		v.add(e.String(), "set only one of path, path_prefix and path_regex (got %s)", strings.Join(set, ", "))
	}
	if !absPath(r.Path) {
		v.add(e.at("path"), notAbsPath, r.Path)
	}
	if !absPath(r.PathPrefix) {
		v.add(e.at("path_prefix"), notAbsPath, r.PathPrefix)
	}
	if r.PathRegex != "" {
		if err := checkRegex(AnchoredRegex(r.PathRegex)); err != nil {
			v.add(e.at("path_regex"), "invalid regular expression: %v", err)
		}
	}
	for j, m := range r.Methods {
		if !isToken(m) {
			v.add(index(e.at("methods"), j), "invalid method %q", m)
		}
	}
	if len(r.Headers) > 0 {
		v.headerMap(e.at("headers"), r.Headers)
	}
	if _, ok := r.Query[""]; ok {
		v.add(e.at("query"), "parameter names must not be empty")
	}
	if rw := r.Rewrite; rw != nil {
		v.absPath(e.at("rewrite.path_prefix"), rw.PathPrefix)
		if rw.PathPrefix == "" {
			v.add(e.at("rewrite.path_prefix"), "required")
		}
		if r.PathRegex != "" {
			v.add(e.at("rewrite"), "cannot rewrite a path_regex match: use path or path_prefix")
		}
	}
}

// notAbsPath is the message for a path that does not start with "/".
const notAbsPath = "must start with \"/\", got %q"

// absPath reports whether val is empty or starts with "/".
func absPath(val string) bool {
	return val == "" || val[0] == '/'
}

// absPath requires a non-empty path to start with "/".
func (v *validator) absPath(path, val string) {
	if !absPath(val) {
		v.add(path, notAbsPath, val)
	}
}

// host checks an exact, wildcard or regular-expression host.
func (v *validator) host(e entryPath, h string) {
	switch ClassifyHost(h) {
	case HostRegex:
		if err := checkRegex(AnchoredRegex(h)); err != nil {
			v.add(e.at("host"), "invalid regular expression: %v", err)
		}
	case HostWildcard:
		if !validHostname(h[2:]) {
			v.add(e.at("host"), "invalid wildcard host %q: want \"*.\" followed by a domain name", h)
		}
	case HostExact:
		if _, err := netip.ParseAddr(h); err == nil {
			return
		}
		if strings.Contains(h, ":") {
			v.add(e.at("host"), "invalid host %q: hosts match without the port", h)
			return
		}
		if !validHostname(h) {
			v.add(e.at("host"), "invalid host %q: want a name (api.example.com), a wildcard (*.example.com) or a regular expression", h)
		}
	}
}

// routeRefs checks the pool, policy and middleware references.
func (v *validator) routeRefs(e entryPath, r *Route) {
	if r.Pool == "" {
		if v.stablePool[r.ID] == "" {
			v.add(e.at("pool"), "required (or name a stable_pool in a traffic_management entry for this route)")
		}
	}
	if v.missing(r.Pool, v.poolIDs) {
		v.add(e.at("pool"), "unknown pool %q", r.Pool)
	}
	if v.missing(r.Policy, v.policyIDs) {
		v.add(e.at("policy"), "unknown policy %q", r.Policy)
	}
	if v.missing(r.Middleware, v.chainIDs) {
		v.add(e.at("middleware"), "unknown middleware chain %q", r.Middleware)
	}
}

// appendRouteSignature appends to b a key that is equal for two routes
// exactly when they match the same requests by the same matchers: same
// host (case-insensitive unless a regex), same path matcher kind and
// value, same method set, same headers (names case-insensitive) and same
// query. Every string is written with its length first, so the key is
// unambiguous without quoting.
func appendRouteSignature(b []byte, r *Route) []byte {
	kind := r.HostKind()
	host := r.Host
	if kind != HostRegex {
		host = strings.ToLower(host)
	}
	pk, pv := r.PathMatch()
	b = strconv.AppendInt(b, int64(kind), 10)
	b = appendSigString(b, host)
	b = strconv.AppendInt(append(b, ' '), int64(pk), 10)
	b = appendSigString(b, pv)
	methods := r.Methods
	if len(methods) > 1 {
		methods = slices.Clone(methods)
		slices.Sort(methods)
		methods = slices.Compact(methods)
	}
	b = strconv.AppendInt(append(b, " m"...), int64(len(methods)), 10)
	for _, m := range methods {
		b = appendSigString(b, m)
	}
	headers := r.Headers
	if len(headers) > 0 {
		// Names that differ only in case are the same header (and may
		// collapse into one entry).
		headers = make(map[string]string, len(r.Headers))
		for k, val := range r.Headers {
			headers[textproto.CanonicalMIMEHeaderKey(k)] = val
		}
	}
	b = strconv.AppendInt(append(b, " h"...), int64(len(headers)), 10)
	b = appendSortedPairs(b, headers)
	b = strconv.AppendInt(append(b, " q"...), int64(len(r.Query)), 10)
	return appendSortedPairs(b, r.Query)
}

// appendSigString appends " <len>:<s>".
func appendSigString(b []byte, s string) []byte {
	b = strconv.AppendInt(append(b, ' '), int64(len(s)), 10)
	return append(append(b, ':'), s...)
}

// appendSortedPairs appends m's keys and values in key order.
func appendSortedPairs(b []byte, m map[string]string) []byte {
	for _, k := range sortedKeys(m) {
		b = appendSigString(appendSigString(b, k), m[k])
	}
	return b
}

// sortedKeys returns m's keys in order, for deterministic messages.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
