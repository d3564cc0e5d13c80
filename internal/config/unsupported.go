package config

// unsupported lists what this release parses and validates but cannot run
// yet. Accepting such a config would silently drop the operator's intent
// (a retry policy that never retries, an mTLS route that admits anyone),
// so Validate rejects it with "not supported yet: <path>". As a feature
// lands, delete its line here (and its mention in docs/CONFIG.md).
func (c *Config) unsupported() Errors {
	var errs Errors
	gate := func(set bool, path string) {
		if set {
			errs.add(path, "not supported yet: %s", path)
		}
	}
	for i, ch := range c.Middleware {
		for j, st := range ch.Stages {
			switch st.Type {
			case StagePlugin:
				p := field(index(field(index("middleware", i), "stages"), j), "type")
				errs.add(p, "not supported yet: %s (%s stages)", p, st.Type)
			}
		}
	}
	gate(len(c.Cache) > 0, "cache")
	gate(len(c.Plugins) > 0, "plugins")
	gate(c.Rollout != nil, "rollout")
	return errs
}
