package h1client

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: body
// writers must end with their round trips, and test servers with tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
