package traffic

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"
)

// Brake defaults, the same as the config's (config.AutoBrake), so a zero
// BrakeSettings behaves like an empty auto_brake block.
const (
	defaultWindow      = 30 * time.Second
	defaultMinRequests = 50
	defaultMultiplier  = 2
	// minErrorRate is the floor of SPEC's "canary error rate > 2x stable's
	// (and > 1%)": without it a stable pool with no errors at all would
	// brake the canary on its first failure.
	minErrorRate = 0.01
)

// KeyKind says where a request's key (sticky key or cohort name) is read.
// The zero KeyKind means no key.
type KeyKind uint8

// Key kinds.
const (
	// KeyHeader reads the first value of the request header Key.Name.
	KeyHeader KeyKind = iota + 1
	// KeyCookie reads the cookie Key.Name.
	KeyCookie
	// KeyClientIP uses the client address passed to Decide; Name is
	// unused.
	KeyClientIP
)

// Key names where a request's key is read. The zero Key means none, and so
// does a header or cookie key without a Name.
type Key struct {
	Kind KeyKind
	// Name is the header or cookie name. Header names are matched
	// case-insensitively, cookie names exactly.
	Name string
}

// String returns the key in config syntax: "header:NAME", "cookie:NAME",
// "client_ip", or "" for none.
func (k Key) String() string {
	switch k.Kind {
	case KeyHeader:
		return "header:" + k.Name
	case KeyCookie:
		return "cookie:" + k.Name
	case KeyClientIP:
		return "client_ip"
	}
	return ""
}

// ParseKey parses a sticky_key in config syntax: "header:NAME",
// "cookie:NAME" or "client_ip"; "" is the zero Key (none).
func ParseKey(s string) (Key, error) {
	if s == "" {
		return Key{}, nil
	}
	if s == "client_ip" {
		return Key{Kind: KeyClientIP}, nil
	}
	kind, name, _ := strings.Cut(s, ":")
	if name != "" {
		switch kind {
		case "header":
			return Key{Kind: KeyHeader, Name: name}, nil
		case "cookie":
			return Key{Kind: KeyCookie, Name: name}, nil
		}
	}
	return Key{}, fmt.Errorf("invalid key %q: want header:NAME, cookie:NAME or client_ip", s)
}

// BrakeSettings are the knobs of the automatic brake (SPEC section 3,
// auto_brake). A zero field means the default named on it.
type BrakeSettings struct {
	// Window is the rolling window over which both variants are measured,
	// in 10 slots: an outcome stops counting between 90% and 100% of the
	// window after it happened. Zero means 30s.
	Window time.Duration
	// MinRequests is how many canary outcomes the window must hold before
	// the brake may act. Zero means 50.
	MinRequests int
	// ErrorRateMultiplier brakes when the canary's error rate exceeds
	// stable's times this, and 1%. Zero means 2; below 1 means 1.
	ErrorRateMultiplier float64
	// LatencyP95Threshold brakes when the canary's p95 latency in the
	// window exceeds it. Zero means no latency brake.
	LatencyP95Threshold time.Duration
}

// CohortSettings route requests carrying a cohort name to a pool, before
// any split (SPEC section 3, cohort_routing). With neither Header nor
// Cookie set, cohort routing is off.
type CohortSettings struct {
	// Header carries the cohort name. If both Header and Cookie are set,
	// Header is used.
	Header string
	// Cookie carries the cohort name.
	Cookie string
	// Mappings maps a cohort name (matched exactly, case-sensitively) to a
	// pool id. Names not in it fall through to the split.
	Mappings map[string]string
}

// Settings are a route's traffic plan (SPEC section 3,
// traffic_management). The zero Settings sends everything to the route's
// own pool: Decide returns an empty Pool with variant "stable".
type Settings struct {
	// StablePool is the pool of the stable variant; empty means the
	// route's own pool (Decide then returns an empty Pool).
	StablePool string
	// CanaryPool is the pool of the canary variant; empty means no canary,
	// whatever CanaryWeight says.
	CanaryPool string
	// CanaryWeight is the percentage of split requests sent to the canary,
	// 0-100 (values outside are clamped).
	CanaryWeight int
	// Sticky keeps a client on one variant while the weight is unchanged;
	// the zero Key splits each request independently.
	Sticky Key
	// Brake enables the automatic brake; nil means off. Without it the
	// variants are still measured (over 30s) for Stats.
	Brake *BrakeSettings
	// Cohort enables cohort routing; nil means off.
	Cohort *CohortSettings
}

// normalized returns s with defaults applied, ranges clamped, header names
// canonical and the cohort map copied, so that the caller may reuse what
// it passed and two equal plans compare equal.
func (s Settings) normalized() Settings {
	s.CanaryWeight = min(max(s.CanaryWeight, 0), 100)
	if s.Sticky.Kind == KeyHeader {
		s.Sticky.Name = http.CanonicalHeaderKey(s.Sticky.Name)
	}
	switch s.Sticky.Kind {
	case KeyHeader, KeyCookie:
		if s.Sticky.Name == "" {
			s.Sticky = Key{} // no name, no key: an empty cookie name would match "=v"
		}
	case KeyClientIP:
		s.Sticky.Name = ""
	default:
		s.Sticky = Key{}
	}
	if b := s.Brake; b != nil {
		nb := *b
		if nb.Window <= 0 {
			nb.Window = defaultWindow
		}
		if nb.MinRequests <= 0 {
			nb.MinRequests = defaultMinRequests
		}
		if nb.ErrorRateMultiplier <= 0 {
			nb.ErrorRateMultiplier = defaultMultiplier
		}
		nb.ErrorRateMultiplier = max(nb.ErrorRateMultiplier, 1)
		nb.LatencyP95Threshold = max(nb.LatencyP95Threshold, 0)
		s.Brake = &nb
	}
	if c := s.Cohort; c != nil && c.Header == "" && c.Cookie == "" {
		s.Cohort = nil
	}
	if c := s.Cohort; c != nil {
		nc := CohortSettings{Header: http.CanonicalHeaderKey(c.Header), Cookie: c.Cookie,
			Mappings: maps.Clone(c.Mappings)}
		if nc.Header != "" {
			nc.Cookie = ""
		}
		s.Cohort = &nc
	}
	return s
}

// window returns the measuring window of normalized settings.
func (s Settings) window() time.Duration {
	if s.Brake != nil {
		return s.Brake.Window
	}
	return defaultWindow
}

// equal reports whether two normalized plans are the same.
func (s Settings) equal(o Settings) bool {
	if s.StablePool != o.StablePool || s.CanaryPool != o.CanaryPool ||
		s.CanaryWeight != o.CanaryWeight || s.Sticky != o.Sticky {
		return false
	}
	if (s.Brake == nil) != (o.Brake == nil) || (s.Brake != nil && *s.Brake != *o.Brake) {
		return false
	}
	if (s.Cohort == nil) != (o.Cohort == nil) {
		return false
	}
	return s.Cohort == nil || (s.Cohort.Header == o.Cohort.Header &&
		s.Cohort.Cookie == o.Cohort.Cookie && maps.Equal(s.Cohort.Mappings, o.Cohort.Mappings))
}
