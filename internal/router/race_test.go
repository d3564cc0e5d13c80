//go:build race

package router

// raceEnabled reports a -race build: the race detector makes sync.Pool drop
// items at random, so code that pools (regexp's matchers) allocates then.
const raceEnabled = true
