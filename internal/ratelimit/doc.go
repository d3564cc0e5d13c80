// Package ratelimit enforces the policies[].rate_limit blocks of the
// config (SPEC section 3): a rate of requests per second and a burst per
// key, counted on this proxy alone (scope local) or across the fleet in
// Redis (scope global). A denied request gets 429 rate_limited with a
// Retry-After header (SPEC section 6); Allow returns the wait and the
// caller rounds it up to whole seconds.
//
// # Algorithm
//
// Both scopes use GCRA, the generic cell rate algorithm, which is a token
// bucket stored as one number per key: the theoretical arrival time (TAT)
// at which the key's bucket is full again. With emission interval
// T = 1s/rps and tolerance B*T, a request at time now is admitted when
// max(TAT, now) + T - B*T <= now, and then TAT becomes max(TAT, now) + T.
// So a key that has been idle gets B requests at once, then one every T,
// and in any window of length W a key gets at most B + floor(W/T)
// requests. A denied request does not change TAT, and its retry-after is
// the time until one token is back.
//
// # Local scope
//
// Buckets live in a table sharded by key hash; a request takes a shard's
// read lock only to look its key up and then updates TAT with a
// compare-and-swap, so an existing key costs no allocation and concurrent
// requests on different keys do not serialise.
//
// Memory is bounded: a Limiter tracks at most DefaultMaxKeys keys
// (100 000, or WithMaxKeys), about 80 bytes plus the key each; a key
// longer than 256 bytes is replaced by its SHA-256 digest. When a shard is
// full, inserting a new key first drops every key whose bucket is full
// again, which loses nothing: a full bucket and a forgotten key behave the
// same. Only when that frees too little (a flood of distinct keys that all
// still hold state) are the keys closest to full evicted as well, at most
// an eighth of the shard at a time; shards fill unevenly, so this can
// start when the table as a whole is about nine tenths full. Such an early
// eviction makes the limiter more permissive for that key only: it starts
// again with a full bucket, so it gets back at most the tokens it had
// used, never more than Burst. A flood never makes the limiter stricter
// for any key. Stats counts both kinds of eviction.
//
// # Global scope
//
// A Redis (one per Redis server, shared by every global Limiter) runs one
// Lua script per request (EVALSHA, with EVAL when the server's script
// cache is empty) that applies GCRA atomically with the server's own clock,
// so proxies with skewed clocks agree. Each call has a short deadline
// (default 5ms). Redis never fails a request: on an error or a timeout the
// request is decided by the Limiter's local table instead, and Redis is
// marked unhealthy. While unhealthy, no request goes to Redis at all, so an
// outage costs at most one timeout per in-flight request, and Redis.Run
// probes it in the background at most once per ProbeInterval (default 1s)
// until it answers again. During an outage each proxy enforces the limit on
// its own, so a fleet of N proxies admits up to N times the limit. The
// local table counts only the requests it decides, so at the start of an
// outage every key has a full burst on every proxy; a Redis that restarts
// empty likewise gives every key a full burst once. A key's Redis entry
// expires when its bucket is full again, so Redis holds only keys that
// carry state.
//
// ratelimit imports no other package of the module.
package ratelimit
