package gateway

import (
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/wire"
)

func TestReasonOf(t *testing.T) {
	tests := []struct {
		in   wire.Reason
		want string
	}{
		{wire.Reason_REASON_NONE, ""},
		{wire.Reason_REASON_IMAGE_PULL, state.ReasonImagePull},
		{wire.Reason_REASON_START_FAILED, state.ReasonStartFailed},
		{wire.Reason_REASON_CRASH_LOOP, state.ReasonCrashLoop},
		{wire.Reason_REASON_UNHEALTHY, state.ReasonUnhealthy},
		{wire.Reason(99), ""}, // a newer agent's: dropped, the message still says it
	}
	for _, tt := range tests {
		if got := reasonOf(tt.in); got != tt.want {
			t.Errorf("reasonOf(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
