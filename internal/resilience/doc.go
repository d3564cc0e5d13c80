// Package resilience holds the hot-path state machines behind SPEC section 7:
// the circuit breaker (Breaker), the retry budget (Budget), the rolling
// window of counts both are built on (Window) and the jittered retry delay
// (Backoff).
//
// Breakers and budgets are long-lived: the proxy keeps them in registries
// keyed by stable ids so that a config apply updates their settings (Update)
// without forgetting their state. The request path calls them on every
// request, so the common cases (a closed breaker, counting a success,
// granting a retry) use atomics only and never allocate; a mutex is taken
// only for the rare state transitions of a breaker. Every method is safe for
// concurrent use.
//
// Time comes from an injected clock, a func() int64 returning monotonic
// nanoseconds (nil means the real monotonic clock), so tests drive it by
// hand instead of sleeping. A clock must never go backwards.
//
// resilience imports no other package of the module.
package resilience
