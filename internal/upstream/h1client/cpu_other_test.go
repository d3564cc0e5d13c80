//go:build !unix

package h1client

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }
