package config

import (
	"fmt"
	"net/netip"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
)

func (v *validator) routes() {
	first := map[string]int{}
	for i := range v.c.Routes {
		r := &v.c.Routes[i]
		p := index("routes", i)
		v.routeMatch(p, r)
		v.routeRefs(p, r)
		// An identical earlier route wins every request this one could
		// match, so this one is dead configuration, almost always a
		// copy-paste mistake.
		sig := routeSignature(r)
		if j, ok := first[sig]; ok {
			v.add(p, "unreachable: shadowed by %s", describeRef("routes", j, v.c.Routes[j].ID))
			continue
		}
		first[sig] = i
	}
}

// routeMatch checks the host, path, method, header and query matchers.
func (v *validator) routeMatch(p string, r *Route) {
	v.host(field(p, "host"), r.Host)
	var set []string
	for _, m := range []struct{ key, val string }{{"path", r.Path}, {"path_prefix", r.PathPrefix}, {"path_regex", r.PathRegex}} {
		if m.val != "" {
			set = append(set, m.key)
		}
	}
	if len(set) > 1 {
		v.add(p, "set only one of path, path_prefix and path_regex (got %s)", strings.Join(set, ", "))
	}
	v.absPath(field(p, "path"), r.Path)
	v.absPath(field(p, "path_prefix"), r.PathPrefix)
	if r.PathRegex != "" {
		if _, err := regexp.Compile(AnchoredRegex(r.PathRegex)); err != nil {
			v.add(field(p, "path_regex"), "invalid regular expression: %v", err)
		}
	}
	for j, m := range r.Methods {
		if !isToken(m) {
			v.add(index(field(p, "methods"), j), "invalid method %q", m)
		}
	}
	v.headerMap(field(p, "headers"), r.Headers)
	if _, ok := r.Query[""]; ok {
		v.add(field(p, "query"), "parameter names must not be empty")
	}
	if rw := r.Rewrite; rw != nil {
		v.absPath(field(p, "rewrite.path_prefix"), rw.PathPrefix)
		if rw.PathPrefix == "" {
			v.add(field(p, "rewrite.path_prefix"), "required")
		}
		if r.PathRegex != "" {
			v.add(field(p, "rewrite"), "cannot rewrite a path_regex match: use path or path_prefix")
		}
	}
}

// absPath requires a non-empty path to start with "/".
func (v *validator) absPath(path, val string) {
	if val != "" && val[0] != '/' {
		v.add(path, "must start with \"/\", got %q", val)
	}
}

// host checks an exact, wildcard or regular-expression host.
func (v *validator) host(path, h string) {
	switch ClassifyHost(h) {
	case HostRegex:
		if _, err := regexp.Compile(AnchoredRegex(h)); err != nil {
			v.add(path, "invalid regular expression: %v", err)
		}
	case HostWildcard:
		if !validHostname(h[2:]) {
			v.add(path, "invalid wildcard host %q: want \"*.\" followed by a domain name", h)
		}
	case HostExact:
		if _, err := netip.ParseAddr(h); err == nil {
			return
		}
		if strings.Contains(h, ":") {
			v.add(path, "invalid host %q: hosts match without the port", h)
			return
		}
		if !validHostname(h) {
			v.add(path, "invalid host %q: want a name (api.example.com), a wildcard (*.example.com) or a regular expression", h)
		}
	}
}

// routeRefs checks the pool, policy and middleware references.
func (v *validator) routeRefs(p string, r *Route) {
	if r.Pool == "" {
		if v.stablePool[r.ID] == "" {
			v.add(field(p, "pool"), "required (or name a stable_pool in a traffic_management entry for this route)")
		}
	}
	v.ref(field(p, "pool"), "pool", r.Pool, v.poolIDs)
	v.ref(field(p, "policy"), "policy", r.Policy, v.policyIDs)
	v.ref(field(p, "middleware"), "middleware chain", r.Middleware, v.chainIDs)
}

// routeSignature is equal for two routes exactly when they match the same
// requests by the same matchers: same host (case-insensitive unless a
// regex), same path matcher kind and value, same method set, same headers
// (names case-insensitive) and same query.
func routeSignature(r *Route) string {
	kind := r.HostKind()
	host := r.Host
	if kind != HostRegex {
		host = strings.ToLower(host)
	}
	pk, pv := r.PathMatch()
	methods := slices.Clone(r.Methods)
	slices.Sort(methods)
	methods = slices.Compact(methods)
	headers := make(map[string]string, len(r.Headers))
	for k, val := range r.Headers {
		headers[textproto.CanonicalMIMEHeaderKey(k)] = val
	}
	return fmt.Sprintf("%d %q %d %q %q %q %q", kind, host, pk, pv, methods, sortedPairs(headers), sortedPairs(r.Query))
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

// sortedPairs flattens m to key, value, key, value... in key order.
func sortedPairs(m map[string]string) []string {
	out := make([]string, 0, 2*len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, k, m[k])
	}
	return out
}
