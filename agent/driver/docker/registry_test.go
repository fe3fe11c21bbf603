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

// TestPullFromPrivateRegistry pulls from a real registry that asks for a
// password: without credentials and with a wrong password the start is an
// image pull failure naming the registry (and nothing is left behind);
// with the right ones the image is pulled and the instance runs; and the
// pulled image does not run for a spec without them that must pull.
func TestPullFromPrivateRegistry(t *testing.T) {
	cli := daemon(t)
	const password = "pull-test-password"
	reg := drivertest.StartPrivateRegistry(t, map[string]string{"alice": password})
	ref := reg.Push(t, cli, drivertest.BuildTestAppImage(t, cli), "team/app:"+drivertest.NewID("v"), "alice", password)
	d := newDriver(t, cli, docker.Config{HostID: drivertest.NewID("host-"), PublishIP: "127.0.0.1"})

	for _, tt := range []struct {
		name string
		auth *driver.RegistryAuth
		want []string // in the error
	}{
		{"no credentials", nil, []string{reg.Addr, "no credentials for it"}},
		{"wrong password", &driver.RegistryAuth{Server: reg.Addr, Username: "alice", Password: "wrong"}, []string{"registry " + reg.Addr + " (as alice)"}},
		{"unknown user", &driver.RegistryAuth{Server: reg.Addr, Username: "mallory", Password: password}, []string{"registry " + reg.Addr + " (as mallory)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Image: ref, RegistryAuth: tt.auth, Ports: []driver.Port{{ContainerPort: 8080}}}
			t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })
			_, err := d.Start(ctx(t), spec)
			if !errors.Is(err, driver.ErrImagePull) {
				t.Fatalf("start: %v, want an image pull failure", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("pull error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("pull error %q shows the password", err)
			}
			if _, err := d.Inspect(ctx(t), spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("after a failed pull: %v, want no container", err)
			}
		})
	}

	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Image: ref, Ports: []driver.Port{{ContainerPort: 8080}},
		RegistryAuth: &driver.RegistryAuth{Server: reg.Addr, Username: "alice", Password: password}}
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })
	st, err := d.Start(ctx(t), spec)
	if err != nil {
		t.Fatalf("start with the registry's credentials: %v", err)
	}
	if st.State != driver.StateRunning {
		t.Fatalf("status %+v, want running", st)
	}
	if _, err := cli.ImageInspect(ctx(t), ref); err != nil {
		t.Fatalf("the pulled image is not local: %v", err)
	}

	// The image is on the host now; a container of a private registry's
	// image without the credentials (another tenant's) still goes through
	// the registry, and is refused.
	other := driver.Spec{InstanceID: drivertest.NewID("i-"), Image: ref, AlwaysPull: true, Ports: []driver.Port{{ContainerPort: 8080}}}
	t.Cleanup(func() { _ = d.Stop(context.Background(), other.InstanceID, time.Second) })
	if _, err := d.Start(ctx(t), other); !errors.Is(err, driver.ErrImagePull) || !strings.Contains(err.Error(), reg.Addr) {
		t.Fatalf("start of the local private image without credentials: %v, want a pull failure naming %s", err, reg.Addr)
	}
}
