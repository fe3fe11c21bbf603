package docker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
)

// TestStartErrorsClassified: an image the registry does not have is
// ErrImagePull carrying the registry's own error; a spec without an
// image is ErrStartFailed; neither leaves a container behind.
func TestStartErrorsClassified(t *testing.T) {
	cli := daemon(t)
	d := newDriver(t, cli, docker.Config{HostID: drivertest.NewID("host-")})
	image := drivertest.MissingImage(t, "wharf/missing:"+drivertest.NewID("t"))
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Image: image}
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })
	_, err := d.Start(ctx(t), spec)
	if !errors.Is(err, driver.ErrImagePull) || errors.Is(err, driver.ErrStartFailed) {
		t.Fatalf("start from a missing image: %v, want an image pull error", err)
	}
	if !strings.Contains(err.Error(), drivertest.RegistryMessage) || !strings.Contains(err.Error(), image) {
		t.Fatalf("pull error %q lacks the registry's message or the image", err)
	}
	if _, err := d.Inspect(ctx(t), spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("after a failed pull: %v, want no container", err)
	}

	_, err = d.Start(ctx(t), driver.Spec{InstanceID: drivertest.NewID("i-"), Command: []string{"/bin/job"}})
	if !errors.Is(err, driver.ErrStartFailed) {
		t.Fatalf("start without an image: %v, want a start failure", err)
	}
}
