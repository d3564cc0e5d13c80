// Package overload bounds the requests a route has in flight (SPEC section
// 7, overload_protection): at most a limit at once, up to a queue of
// waiters served strictly first come first served for at most a timeout,
// and the rest shed at once with ErrOverloaded, which the proxy answers
// with 503 overloaded and a Retry-After header (SPEC section 6). With
// Adaptive set, the limit follows the upstream's latency (a gradient
// limiter in the manner of Netflix concurrency-limits' Gradient2), never
// above the configured maximum.
//
// A Limiter is long-lived runtime state: the proxy keeps one per route in
// a registry, so a config apply calls Update and requests in flight or
// queued keep their places. Acquire and Release run on every request;
// when the limit is not reached they are one CAS each, lock-free and
// allocation-free. Every method is safe for concurrent use.
//
// overload imports no other package of the module.
package overload
