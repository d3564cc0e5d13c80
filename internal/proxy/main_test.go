package proxy_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: the
// forwarder's upgrade copiers and the transports' body writers must all
// end with their request.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
