package config

import (
	"fmt"
	"math"
)

// Validate checks the config's meaning: ids, references between sections,
// regular expressions, enums, ranges, addresses, shadowed routes, and the
// features this release cannot run yet (unsupported.go). It checks c as
// ApplyDefaults would leave it, without modifying c, and reports every
// problem at once as an Errors value, each with its path
// ("routes[2].path_regex"); nil means valid. Safe to call concurrently
// with other readers of c. A nil c is the empty config.
func (c *Config) Validate() error {
	if c == nil {
		c = &Config{}
	}
	v := &validator{c: c.Clone()}
	v.c.ApplyDefaults()
	v.collectIDs()
	v.server()
	v.routes()
	v.policies()
	v.pools()
	v.traffic()
	v.middleware()
	v.caches()
	v.plugins()
	v.tls()
	v.observability()
	v.rollout()
	v.errs = append(v.errs, v.c.unsupported()...)
	return v.errs.err()
}

// validator accumulates problems for one Validate call.
type validator struct {
	c    *Config
	errs Errors
	// Ids of each section, id -> index of its first definition.
	routeIDs, policyIDs, poolIDs, chainIDs, pluginIDs map[string]int
	// stablePool maps a route id to its traffic plan's stable_pool.
	stablePool map[string]string
}

func (v *validator) add(path, format string, args ...any) {
	v.errs.add(path, format, args...)
}

// collectIDs checks every section's ids (required, well formed, unique)
// and indexes them for reference checks.
func (v *validator) collectIDs() {
	c := v.c
	v.routeIDs = v.ids("routes", len(c.Routes), func(i int) string { return c.Routes[i].ID })
	v.policyIDs = v.ids("policies", len(c.Policies), func(i int) string { return c.Policies[i].ID })
	v.poolIDs = v.ids("pools", len(c.Pools), func(i int) string { return c.Pools[i].ID })
	v.chainIDs = v.ids("middleware", len(c.Middleware), func(i int) string { return c.Middleware[i].ID })
	v.pluginIDs = v.ids("plugins", len(c.Plugins), func(i int) string { return c.Plugins[i].ID })
	v.stablePool = map[string]string{}
	for _, t := range c.TrafficManagement {
		if _, ok := v.stablePool[t.Route]; !ok {
			v.stablePool[t.Route] = t.StablePool
		}
	}
}

// ids validates the ids of one section.
func (v *validator) ids(section string, n int, id func(int) string) map[string]int {
	seen := make(map[string]int, n)
	for i := range n {
		e := entryPath{section, i}
		s := id(i)
		switch first, dup := seen[s]; {
		case s == "":
			v.add(e.at("id"), "required")
		case !validID(s):
			v.add(e.at("id"), "invalid id %q: must match [A-Za-z0-9_.-]+", s)
		case dup:
			v.add(e.at("id"), "duplicate id %q (also %s)", s, index(section, first))
		default:
			seen[s] = i
		}
	}
	return seen
}

// ref reports a reference to an id missing from its section. Empty
// references are the caller's business (optional or required).
func (v *validator) ref(path, kind, id string, ids map[string]int) {
	if v.missing(id, ids) {
		v.add(path, "unknown %s %q", kind, id)
	}
}

// missing reports whether id is a reference (not empty) to an id absent
// from ids.
func (v *validator) missing(id string, ids map[string]int) bool {
	_, ok := ids[id]
	return id != "" && !ok
}

// entryPath names entry i of a list ("routes[12]") without joining the
// string until a problem is reported: the checks of a 10,000-route config
// would otherwise build ten paths per route to report none.
type entryPath struct {
	section string
	i       int
}

// String returns the entry's path, "routes[12]".
func (e entryPath) String() string { return index(e.section, e.i) }

// at returns the path of the entry's field key, "routes[12].host".
func (e entryPath) at(key string) string { return field(e.String(), key) }

func (v *validator) intRange(path string, got, lo, hi int) {
	if got < lo || got > hi {
		v.add(path, "must be between %d and %d, got %d", lo, hi, got)
	}
}

func (v *validator) atLeast(path string, got, lo int) {
	if got < lo {
		v.add(path, "must be at least %d, got %d", lo, got)
	}
}

func (v *validator) floatRange(path string, got, lo, hi float64) {
	if math.IsNaN(got) || got < lo || got > hi {
		v.add(path, "must be between %g and %g, got %g", lo, hi, got)
	}
}

// positive requires d > 0: timeouts and intervals where zero would mean
// "fire at once" or "spin".
func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be greater than 0, got %s", d)
	}
}

// nonNegative requires d >= 0 for durations where zero means "none".
func (v *validator) nonNegative(path string, d Duration) {
	if d < 0 {
		v.add(path, "must not be negative, got %s", d)
	}
}

func (v *validator) size(path string, s, least Size) {
	if s < least {
		v.add(path, "must be at least %d bytes, got %d", int64(least), int64(s))
	}
}

// headerNames checks that each entry of a list is a header field name.
func (v *validator) headerNames(path string, names []string) {
	for i, h := range names {
		if !isToken(h) {
			v.add(index(path, i), "invalid header name %q", h)
		}
	}
}

// headerMap checks that each key of a map is a header field name.
func (v *validator) headerMap(path string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		if !isToken(k) {
			v.add(field(path, k), "invalid header name %q", k)
		}
	}
}

func (v *validator) server() {
	s := v.c.Server
	v.size("server.max_header_bytes", s.MaxHeaderBytes, 1024)
	v.atLeast("server.max_header_count", s.MaxHeaderCount, 1)
	v.size("server.max_url_bytes", s.MaxURLBytes, 256)
	v.positive("server.read_header_timeout", s.ReadHeaderTimeout)
	v.positive("server.idle_timeout", s.IdleTimeout)
	v.positive("server.slow_client_timeout", s.SlowClientTimeout)
	for i, p := range s.TrustedProxies {
		if err := checkCIDROrIP(p); err != nil {
			v.add(index("server.trusted_proxies", i), "%v", err)
		}
	}
	if s.ProxyProtocol && len(s.TrustedProxies) == 0 {
		// A PROXY header sets the client address; believing it from
		// anyone would let any client claim any address.
		v.add("server.proxy_protocol", "needs server.trusted_proxies: only those peers may send a PROXY header")
	}
}

func (v *validator) observability() {
	c := v.c
	v.headerNames("logging.redact_headers", c.Logging.RedactHeaders)
	if p := c.Metrics.Path; len(p) == 0 || p[0] != '/' {
		v.add("metrics.path", "must start with \"/\", got %q", p)
	}
	if !validEnvName(c.Metrics.TokenEnv) {
		v.add("metrics.token_env", "invalid environment variable name %q", c.Metrics.TokenEnv)
	}
	if c.Tracing != nil && c.Tracing.SampleRatio != nil {
		v.floatRange("tracing.sample_ratio", *c.Tracing.SampleRatio, 0, 1)
	}
	if c.Shutdown.DrainDelay != nil {
		v.nonNegative("shutdown.drain_delay", *c.Shutdown.DrainDelay)
	}
	v.positive("shutdown.grace_period", c.Shutdown.GracePeriod)
	if c.Redis != nil {
		if err := checkHostPort(c.Redis.Address); err != nil {
			v.add("redis.address", "%v", err)
		}
	}
}

// describeRef formats "routes[1] (id "x")" for messages that point at
// another entry.
func describeRef(section string, i int, id string) string {
	return fmt.Sprintf("%s (id %q)", index(section, i), id)
}
