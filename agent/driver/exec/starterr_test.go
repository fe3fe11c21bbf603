package exec_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
)

// TestStartErrorsClassified: a spec without a command and a command that
// does not exist are ErrStartFailed, with the runtime's own words.
func TestStartErrorsClassified(t *testing.T) {
	h := &hosts{iso: exec.IsolationNone}
	d := h.newExec(t, drivertest.NewID("host-"))
	_, err := d.Start(ctx(t), driver.Spec{InstanceID: drivertest.NewID("i-"), Image: "web:1"})
	if !errors.Is(err, driver.ErrStartFailed) || !strings.Contains(err.Error(), "command required") {
		t.Fatalf("start without a command: %v, want a start failure", err)
	}
	s := driver.Spec{InstanceID: drivertest.NewID("i-"), Command: []string{"/nonexistent/wharf-job"}, Ports: []driver.Port{{Name: "http"}}}
	t.Cleanup(func() { _ = d.Stop(context.Background(), s.InstanceID, time.Second) })
	_, err = d.Start(ctx(t), s)
	if !errors.Is(err, driver.ErrStartFailed) || errors.Is(err, driver.ErrImagePull) || !strings.Contains(err.Error(), "/nonexistent/wharf-job") {
		t.Fatalf("start of a missing command: %v, want a start failure naming it", err)
	}
}
