// Package traffic splits a route's requests between a stable and a canary
// pool (SPEC section 3, traffic_management): header or cookie cohorts
// first, then an exact weighted split, sticky per client when a key is
// configured, and an automatic brake that sends everything back to stable
// when the canary does measurably worse than stable.
//
// A Split is long-lived runtime state: the proxy keeps one per route in a
// registry, so a config apply calls Update instead of building a new one,
// and the canary's counters and a brake survive applies that do not change
// the route's plan. Decide and Record run on every request; they are
// lock-free and allocation-free. Every method is safe for concurrent use.
//
// Time comes from an injected clock, a func() int64 returning monotonic
// nanoseconds (nil means the real monotonic clock), so tests drive it by
// hand. A clock must never go backwards.
//
// traffic imports no other package of the module.
package traffic
