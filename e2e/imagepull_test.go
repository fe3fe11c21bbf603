package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestImagePullExplained runs an app whose image the registry does not
// have on a real Docker host: its instances keep their ids while the
// agent retries with backoff, report reason image_pull with the
// registry's error, and the tenant sees exactly one event for it. An app
// with only a command waits, pending, for an exec host.
func TestImagePullExplained(t *testing.T) {
	dockerDaemon(t)
	image := drivertest.MissingImage(t, "wharf/ghost:1")
	c, admin, _ := newCluster(t, hubtest.Options{}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	var mu sync.Mutex
	var drv driver.Driver
	t.Cleanup(func() { // after the agent stops: whatever a failed run leaves, by this host's label only
		mu.Lock()
		defer mu.Unlock()
		if drv != nil {
			if l, err := drv.List(ctx); err == nil {
				for _, st := range l {
					_ = drv.Stop(ctx, st.InstanceID, time.Second)
				}
			}
		}
	})
	runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "d", Drivers: []string{"docker"},
		NewDriver: func(hostID string) (driver.Driver, error) {
			d, err := docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
			if err == nil {
				mu.Lock()
				drv = d
				mu.Unlock()
			}
			return d, err
		}})
	hubtest.WaitFor(t, 20*time.Second, "a ready docker host", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready" && len(hs[0].Drivers) == 1
	})
	w := &client.WriteOptions{Tenant: "acme"}
	q := &client.QueryOptions{Tenant: "acme"}
	if _, err := admin.Apps().Create(ctx, apitypes.AppSpec{Name: "ghost", Image: image, Instances: intp(2)}, w); err != nil {
		t.Fatal(err)
	}
	var first []apitypes.Instance
	hubtest.WaitFor(t, 60*time.Second, "both instances report reason image_pull with the registry's error", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "ghost", q)
		if err != nil || len(is) != 2 {
			return false
		}
		for _, i := range is {
			if i.Reason != apitypes.ReasonImagePull || !strings.Contains(i.Message, drivertest.RegistryMessage) {
				return false
			}
			if strings.Contains(i.Message, "exit code") {
				t.Fatalf("a pull failure reported as exits: %q", i.Message)
			}
		}
		first = is
		return true
	})
	ids := map[string]bool{first[0].ID: true, first[1].ID: true}
	hubtest.WaitFor(t, 60*time.Second, "the agent retried each instance twice more on the same id", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "ghost", q)
		if err != nil {
			return false
		}
		retried := 0
		for _, i := range is {
			if !ids[i.ID] {
				t.Fatalf("instance %s replaced the backing-off ones %v", i.ID, ids)
			}
			if i.State == "failed" {
				t.Fatalf("instance %s reported failed: %s", i.ID, i.Message)
			}
			for _, f := range first {
				if f.ID == i.ID && i.Restarts >= f.Restarts+2 {
					retried++
				}
			}
		}
		return len(is) == 2 && retried == 2
	})
	evs, _, err := admin.Events(ctx, 0, q) // what `wharf events --tenant acme` shows
	if err != nil {
		t.Fatal(err)
	}
	var pulls []apitypes.Event
	for _, e := range evs {
		if e.Type == "app.image_pull" {
			pulls = append(pulls, e)
		}
	}
	if len(pulls) != 1 {
		t.Fatalf("%d image pull events for the tenant, want 1: %+v", len(pulls), pulls)
	}
	if m := pulls[0].Message; !strings.Contains(m, "app ghost version 1") || !strings.Contains(m, image) || !strings.Contains(m, drivertest.RegistryMessage) {
		t.Fatalf("event %q: want the app, version, image and the registry's error", m)
	}

	// Only a command, and the pool says nothing of its drivers: accepted,
	// and pending for want of an exec host.
	if _, err := admin.Apps().Create(ctx, apitypes.AppSpec{Name: "job", Command: []string{"/bin/job"}}, w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 20*time.Second, "the command app pending, naming the exec driver", func() bool {
		a, _, err := admin.Apps().Get(ctx, "job", q)
		return err == nil && strings.Contains(a.Pending, "no host in pools [p] runs exec")
	})
	if is, _, err := admin.Apps().Instances(ctx, "job", q); err != nil || len(is) != 0 {
		t.Fatalf("the command app was placed on a docker host: %+v %v", is, err)
	}
	for _, app := range []string{"ghost", "job"} {
		if err := admin.Apps().Delete(ctx, app, w); err != nil {
			t.Fatal(err)
		}
	}
}
