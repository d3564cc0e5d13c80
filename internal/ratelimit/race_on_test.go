//go:build race

package ratelimit

// raceDetector is true under -race, where every atomic costs the detector a
// sync object: the biggest tests scale down to keep the package quick.
const raceDetector = true
