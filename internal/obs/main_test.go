package obs

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: Run
// loops and blocked writers must all be stopped by the tests that start
// them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
