package config

// Traffic is the traffic plan for one route: a stable/canary split with
// sticky cohorts, an automatic brake, header/cookie cohort routing and
// overload protection. Not supported yet in this release.
type Traffic struct {
	// Route is the id of the route this plan applies to; at most one plan
	// per route. Required.
	Route string `json:"route,omitempty" yaml:"route,omitempty"`
	// StablePool is the id of the stable pool; empty means the route's
	// pool.
	StablePool string `json:"stable_pool,omitempty" yaml:"stable_pool,omitempty"`
	// CanaryPool is the id of the canary pool; empty means no canary.
	CanaryPool string `json:"canary_pool,omitempty" yaml:"canary_pool,omitempty"`
	// CanaryWeight is the percentage sent to the canary, 0-100; above 0
	// needs CanaryPool. Zero means no canary traffic.
	CanaryWeight int `json:"canary_weight,omitempty" yaml:"canary_weight,omitempty"`
	// StickyKey keeps a client on one variant: header:NAME, cookie:NAME or
	// client_ip. Empty means each request is split independently.
	StickyKey string `json:"sticky_key,omitempty" yaml:"sticky_key,omitempty"`
	// AutoBrake stops canary traffic when the canary does worse than
	// stable; nil means off.
	AutoBrake *AutoBrake `json:"auto_brake,omitempty" yaml:"auto_brake,omitempty"`
	// CohortRouting pins named cohorts to pools; nil means off.
	CohortRouting *CohortRouting `json:"cohort_routing,omitempty" yaml:"cohort_routing,omitempty"`
	// OverloadProtection bounds concurrency for the route; nil means
	// unbounded.
	OverloadProtection *OverloadProtection `json:"overload_protection,omitempty" yaml:"overload_protection,omitempty"`
}

// AutoBrake compares canary and stable over a window. Zero fields get the
// defaults named on each field.
type AutoBrake struct {
	// Window is the comparison window. Zero means the default, 30s.
	Window Duration `json:"window,omitempty" yaml:"window,omitempty"`
	// MinRequests per variant before the brake may act. Zero means the
	// default, 50.
	MinRequests int `json:"min_requests,omitempty" yaml:"min_requests,omitempty"`
	// ErrorRateMultiplier brakes when the canary's error rate exceeds
	// stable's times this (and 1%), >= 1. Zero means the default, 2.
	ErrorRateMultiplier float64 `json:"error_rate_multiplier,omitempty" yaml:"error_rate_multiplier,omitempty"`
	// LatencyP95Threshold brakes when the canary's p95 latency exceeds it;
	// zero means no latency brake.
	LatencyP95Threshold Duration `json:"latency_p95_threshold,omitempty" yaml:"latency_p95_threshold,omitempty"`
}

// CohortRouting sends requests to a pool chosen by a header or cookie
// value.
type CohortRouting struct {
	// Header carries the cohort name; exactly one of Header and Cookie.
	Header string `json:"header,omitempty" yaml:"header,omitempty"`
	// Cookie carries the cohort name; exactly one of Header and Cookie.
	Cookie string `json:"cookie,omitempty" yaml:"cookie,omitempty"`
	// Mappings maps a cohort name to a pool id. Required, at least one.
	Mappings map[string]string `json:"mappings,omitempty" yaml:"mappings,omitempty"`
}

// OverloadProtection admits at most MaxConcurrent requests, queues up to
// QueueSize for QueueTimeout, and sheds the rest with 503 overloaded.
type OverloadProtection struct {
	// MaxConcurrent is the in-flight limit, >= 1. Required.
	MaxConcurrent int `json:"max_concurrent,omitempty" yaml:"max_concurrent,omitempty"`
	// QueueSize is how many requests may wait, >= 0. Zero means no queue.
	QueueSize int `json:"queue_size,omitempty" yaml:"queue_size,omitempty"`
	// QueueTimeout is the longest wait in the queue. Zero means the
	// default, 1s.
	QueueTimeout Duration `json:"queue_timeout,omitempty" yaml:"queue_timeout,omitempty"`
	// Adaptive lets the limit follow latency (gradient), never above
	// MaxConcurrent. Default false.
	Adaptive bool `json:"adaptive,omitempty" yaml:"adaptive,omitempty"`
}
