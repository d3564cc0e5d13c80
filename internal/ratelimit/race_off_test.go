//go:build !race

package ratelimit

// raceDetector is true under -race; see race_on_test.go.
const raceDetector = false
