package logbench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind (a sink
// connection, a wait on rsyslogd).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
