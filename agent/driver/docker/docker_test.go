package docker_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.Cleanup()
	os.Exit(code)
}

// daemon returns a client of the local daemon, or skips the test when none
// answers (fails instead with WHARF_REQUIRE_DOCKER=1, as in CI).
func daemon(t *testing.T) *client.Client {
	t.Helper()
	d, err := docker.New(docker.Config{HostID: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := d.Ping(ctx); err != nil {
		if os.Getenv("WHARF_REQUIRE_DOCKER") == "1" {
			t.Fatalf("WHARF_REQUIRE_DOCKER=1 and no daemon: %v", err)
		}
		t.Skipf("no docker daemon: %v", err)
	}
	return d.Client()
}

// newDriver returns a driver for hostID whose containers, whatever a test
// leaves behind, are removed at the end of the test (by the host's label
// only).
func newDriver(t *testing.T, cli *client.Client, cfg docker.Config) *docker.Driver {
	t.Helper()
	d, err := docker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := cli.ContainerList(ctx, client.ContainerListOptions{
			All: true, Filters: make(client.Filters).Add("label", docker.LabelHost+"="+cfg.HostID),
		})
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, c := range res.Items {
			t.Errorf("cleanup: container %s of host %s left behind", c.Names, cfg.HostID)
			_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
		d.Close()
	})
	return d
}

func TestConformance(t *testing.T) {
	cli := daemon(t)
	image := drivertest.BuildTestAppImage(t, cli)
	drivertest.Run(t, func(t *testing.T, hostID string) driver.Driver {
		return newDriver(t, cli, docker.Config{HostID: hostID})
	}, drivertest.AppUnderTest{
		Image:         image,
		ContainerPort: 8080,
		PortEnv:       drivertest.PortEnvContainerPort,
		Hostname:      true,
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestContainer checks what the daemon was asked for: name, hostname,
// labels, limits, and ports published on the configured address.
func TestContainer(t *testing.T) {
	cli := daemon(t)
	image := drivertest.BuildTestAppImage(t, cli)
	host := drivertest.NewID("host-")
	d := newDriver(t, cli, docker.Config{HostID: host, PublishIP: "127.0.0.1"})
	spec := driver.Spec{
		InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: "web", Version: 3,
		Image: image, CPU: 250, Memory: 64,
		Env:   map[string]string{"VERSION": "3"},
		Ports: []driver.Port{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 9090}},
	}
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })
	st, err := d.Start(ctx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Address, "127.0.0.1:") || st.Ports[8080] == 0 || st.Ports[9090] == 0 {
		t.Errorf("status %+v: want both ports published, the first on 127.0.0.1", st)
	}
	res, err := cli.ContainerInspect(ctx(t), "wharf-"+spec.InstanceID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Container
	if c.Config.Hostname != spec.InstanceID {
		t.Errorf("hostname %q", c.Config.Hostname)
	}
	for k, want := range map[string]string{
		docker.LabelInstance: spec.InstanceID, docker.LabelApp: "web", docker.LabelTenant: "acme",
		docker.LabelHost: host, docker.LabelVersion: "3",
	} {
		if got := c.Config.Labels[k]; got != want {
			t.Errorf("label %s=%q, want %q", k, got, want)
		}
	}
	// It boots with a whole core, and gets its own 250m once settled.
	// Under contention it weighs its reservation (1024 shares a core).
	if c.HostConfig.NanoCPUs != driver.BootCPU*1_000_000 || c.HostConfig.Memory != 64<<20 || c.HostConfig.CPUShares != 256 {
		t.Errorf("limits while booting: NanoCPUs %d, Memory %d, CPUShares %d", c.HostConfig.NanoCPUs, c.HostConfig.Memory, c.HostConfig.CPUShares)
	}
	if err := d.Settle(ctx(t), spec.InstanceID, spec.CPU); err != nil {
		t.Fatal(err)
	}
	if res, err = cli.ContainerInspect(ctx(t), "wharf-"+spec.InstanceID, client.ContainerInspectOptions{}); err != nil {
		t.Fatal(err)
	}
	if hc := res.Container.HostConfig; hc.NanoCPUs != 250_000_000 || hc.Memory != 64<<20 || hc.CPUShares != 256 {
		t.Errorf("limits once settled: NanoCPUs %d, Memory %d, CPUShares %d", hc.NanoCPUs, hc.Memory, hc.CPUShares)
	}
	// Started again after an exit (its container kept), it boots with
	// the boost again.
	if _, err := cli.ContainerKill(ctx(t), "wharf-"+spec.InstanceID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, err := d.Inspect(ctx(t), spec.InstanceID); err == nil && st.State != driver.StateRunning {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the killed container still runs after 20s")
		}
	}
	if _, err := d.Start(ctx(t), spec); err != nil {
		t.Fatal(err)
	}
	if res, err = cli.ContainerInspect(ctx(t), "wharf-"+spec.InstanceID, client.ContainerInspectOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := res.Container.HostConfig.NanoCPUs; got != driver.BootCPU*1_000_000 {
		t.Errorf("restarted: NanoCPUs %d, want the boost", got)
	}
	if err := d.Settle(ctx(t), "no-such-instance", 250); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("settle of an unknown instance: %v", err)
	}
	for port, bs := range c.NetworkSettings.Ports {
		for _, b := range bs {
			if b.HostIP != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("port %s published on %s, want 127.0.0.1 only", port, b.HostIP)
			}
		}
	}
}

// TestExec: a command runs inside the instance's container and its exit
// code comes back (command health checks); another host's instance is not
// found.
func TestExec(t *testing.T) {
	cli := daemon(t)
	image := drivertest.BuildTestAppImage(t, cli)
	d := newDriver(t, cli, docker.Config{HostID: drivertest.NewID("host-"), PublishIP: "127.0.0.1"})
	other := newDriver(t, cli, docker.Config{HostID: drivertest.NewID("host-"), PublishIP: "127.0.0.1"})
	for _, tt := range []struct {
		env  map[string]string
		want int
	}{{nil, 0}, {map[string]string{"FAIL_HEALTH": "1"}, 1}} {
		spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Image: image, Env: tt.env, Ports: []driver.Port{{ContainerPort: 8080}}}
		t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })
		st, err := d.Start(ctx(t), spec)
		if err != nil {
			t.Fatal(err)
		}
		drivertest.WaitFor(t, 10*time.Second, func() (bool, string) {
			resp, err := http.Get("http://" + st.Address + "/")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return true, ""
		})
		code, err := d.Exec(ctx(t), spec.InstanceID, []string{"/testapp", "check"})
		if err != nil || code != tt.want {
			t.Fatalf("exec with env %v: code %d err %v, want %d", tt.env, code, err, tt.want)
		}
		if _, err := other.Exec(ctx(t), spec.InstanceID, []string{"/testapp", "check"}); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("another host's driver ran a command in this instance: %v", err)
		}
	}
}

// TestImages: a local image is used as it is, even under a registry's name
// (no registry answers here, so a pull would fail); a missing one is pulled
// (and here fails to be).
func TestImages(t *testing.T) {
	cli := daemon(t)
	image := drivertest.BuildTestAppImage(t, cli)
	remote := "registry.invalid/wharf/testapp:" + drivertest.NewID("t")
	if _, err := cli.ImageTag(ctx(t), client.ImageTagOptions{Source: image, Target: remote}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = cli.ImageRemove(context.Background(), remote, client.ImageRemoveOptions{}) })
	d := newDriver(t, cli, docker.Config{HostID: drivertest.NewID("host-")})

	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Image: remote, Ports: []driver.Port{{ContainerPort: 8080}}}
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })
	if st, err := d.Start(ctx(t), spec); err != nil || st.State != driver.StateRunning {
		t.Fatalf("start from a local image under a registry name: %+v, %v", st, err)
	}

	missing := driver.Spec{InstanceID: drivertest.NewID("i-"), Image: "registry.invalid/wharf/missing:v0"}
	t.Cleanup(func() { _ = d.Stop(context.Background(), missing.InstanceID, time.Second) })
	if _, err := d.Start(ctx(t), missing); err == nil || !strings.Contains(err.Error(), "pull") {
		t.Errorf("start from a missing image: %v, want a pull error", err)
	}
}
