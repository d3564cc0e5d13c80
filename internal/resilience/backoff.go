package resilience

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff defaults, the config's (retries.backoff).
const (
	defaultBackoffBase = 25 * time.Millisecond
	defaultBackoffMax  = 250 * time.Millisecond
)

// Backoff returns how long to wait before retry number attempt (1 for the
// first retry): a uniformly random delay in [0, cap], where cap is
// base*2^(attempt-1) capped at maxDelay. This is "full jitter": spreading
// delays over the whole range, rather than around the cap, is what keeps
// clients that failed together from retrying together.
//
// base <= 0 means 25ms and maxDelay <= 0 means 250ms; a maxDelay below base
// caps every delay at maxDelay; attempt < 1 counts as 1. rand(n) must
// return a uniform value in [0, n), like rand.Int64N; nil means
// math/rand/v2's. Backoff is safe for concurrent use if rand is.
func Backoff(attempt int, base, maxDelay time.Duration, rand func(n int64) int64) time.Duration {
	if base <= 0 {
		base = defaultBackoffBase
	}
	if maxDelay <= 0 {
		maxDelay = defaultBackoffMax
	}
	limit := min(base, maxDelay)
	for i := 1; i < attempt && limit < maxDelay; i++ {
		if limit > maxDelay/2 {
			limit = maxDelay // doubling would pass it (or overflow)
			break
		}
		limit *= 2
	}
	if rand == nil {
		rand = defaultRand
	}
	n := int64(limit)
	if n < math.MaxInt64 {
		n++ // the cap itself is a possible delay
	}
	return time.Duration(rand(n))
}

func defaultRand(n int64) int64 { return rand.Int64N(n) }
