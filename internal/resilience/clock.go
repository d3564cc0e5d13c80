package resilience

import "time"

// monotonic returns a clock reading the monotonic time elapsed since the
// call. Each object gets its own origin: readings are only ever compared
// with readings of the same clock, and starting at zero keeps slot numbers
// small and non-negative.
func monotonic() func() int64 {
	start := time.Now()
	return func() int64 { return int64(time.Since(start)) }
}
