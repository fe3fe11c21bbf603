package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestPrivateRegistries runs one image from a real private registry (the
// CNCF distribution registry with htpasswd users) for three tenants of a
// 3-node hub on a real Docker host: acme, whose developer stored the
// registry's credentials, runs it (the pull really goes to the registry:
// the image is not local before); beta, without credentials, and gamma,
// with a wrong password, get an image pull failure naming the registry in
// the instance's message and in a tenant event, although the image is on
// the host by then; a restarted agent (no credentials on its disk) gets
// them again from the hub; gamma's fixed password reaches the agent and its
// instance runs. The password is in no hub's or agent's data dir, in no
// log and in no API answer.
func TestPrivateRegistries(t *testing.T) {
	probe := dockerDaemon(t)
	cli := probe.Client()
	const password = "e2e-Registry-Passw0rd-7f3a"
	reg := drivertest.StartPrivateRegistry(t, map[string]string{"alice": password})
	ref := reg.Push(t, cli, drivertest.BuildTestAppImage(t, cli), "acme/web:"+drivertest.NewID("v"), "alice", password)

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, admin, _ := newCluster(t, hubtest.Options{Logger: logger}, "p", "acme")
	ctx := context.Background()
	for _, tenant := range []string{"beta", "gamma"} {
		if _, err := admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: tenant}); err != nil {
			t.Fatal(err)
		}
	}
	// acme's developer stores the credentials through a follower.
	tok, err := admin.Tokens().Create(ctx, apitypes.TokenRequest{Name: "dev", Role: apitypes.RoleDeveloper, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	follower := c.Nodes[0]
	if c.Leader() == follower {
		follower = c.Nodes[1]
	}
	dev, _ := client.New(client.Config{Address: follower.URL(), Token: tok.Secret})
	stored, err := dev.Registries().Add(ctx, apitypes.RegistryRequest{Server: reg.Addr, Username: "alice", Password: password}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Server != reg.Addr || stored.Tenant != "acme" {
		t.Fatalf("stored %+v", stored)
	}
	if _, err := admin.Registries().Add(ctx, apitypes.RegistryRequest{Server: reg.Addr, Username: "alice", Password: "not-" + password},
		&client.WriteOptions{Tenant: "gamma"}); err != nil {
		t.Fatal(err)
	}

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
	agentDir := t.TempDir()
	agentCfg := agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: agentDir, Name: "d", Drivers: []string{"docker"}, Logger: logger,
		NewDriver: func(hostID string) (driver.Driver, error) {
			d, err := docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1", Logger: logger})
			if err == nil {
				mu.Lock()
				drv = d
				mu.Unlock()
			}
			return d, err
		}}
	_, stopAgent := runAgent(t, agentCfg)
	hubtest.WaitFor(t, 20*time.Second, "a ready docker host", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready"
	})

	spec := apitypes.AppSpec{Name: "web", Image: ref, Instances: intp(1), Ports: []apitypes.Port{{Name: "http", ContainerPort: 8080}}}
	if _, err := dev.Apps().Create(ctx, spec, nil); err != nil {
		t.Fatal(err)
	}
	acme := &client.QueryOptions{Tenant: "acme"}
	hubtest.WaitFor(t, 90*time.Second, "acme's instance of the private image running", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "web", acme)
		if err == nil && len(is) == 1 && is[0].Reason == apitypes.ReasonImagePull {
			t.Logf("acme's pull: %s", is[0].Message)
		}
		return err == nil && len(is) == 1 && is[0].State == "running"
	})
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		t.Fatalf("the image acme runs is not on the host: %v", err)
	}

	// The agent keeps no credentials on disk: restarted, with its
	// container and the image gone, it pulls again with the credentials
	// the hub sends a new connection.
	is, _, err := admin.Apps().Instances(ctx, "web", acme)
	if err != nil || len(is) != 1 {
		t.Fatalf("acme's instances: %+v %v", is, err)
	}
	stopAgent()
	mu.Lock()
	err = drv.Stop(ctx, is[0].ID, time.Second)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageRemove(ctx, ref, dockerclient.ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	_, stopAgent = runAgent(t, agentCfg)
	hubtest.WaitFor(t, 90*time.Second, "acme's instance running again after the agent's restart", func() bool {
		got, _, err := admin.Apps().Instances(ctx, "web", acme)
		return err == nil && len(got) == 1 && got[0].ID == is[0].ID && got[0].State == "running" && got[0].Restarts > is[0].Restarts
	})
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		t.Fatalf("the image was not pulled again: %v", err)
	}

	// beta has no credentials, gamma a wrong password: the image is on
	// the host, but the registry refuses them.
	for _, tt := range []struct{ tenant, want string }{
		{"beta", "registry " + reg.Addr + " (no credentials for it)"},
		{"gamma", "registry " + reg.Addr + " (as alice)"},
	} {
		if _, err := admin.Apps().Create(ctx, spec, &client.WriteOptions{Tenant: tt.tenant}); err != nil {
			t.Fatal(err)
		}
		q := &client.QueryOptions{Tenant: tt.tenant}
		var msg string
		hubtest.WaitFor(t, 60*time.Second, tt.tenant+"'s instance failing to pull, naming the registry", func() bool {
			is, _, err := admin.Apps().Instances(ctx, "web", q)
			if err != nil || len(is) != 1 {
				return false
			}
			if is[0].State == "running" {
				t.Fatalf("%s runs acme's private image", tt.tenant)
			}
			msg = is[0].Message
			return is[0].Reason == apitypes.ReasonImagePull && strings.Contains(msg, tt.want)
		})
		t.Logf("%s: %s", tt.tenant, msg)
		hubtest.WaitFor(t, 20*time.Second, tt.tenant+"'s image pull event naming the registry", func() bool {
			evs, _, err := admin.Events(ctx, 0, q)
			if err != nil {
				return false
			}
			for _, e := range evs {
				if e.Type == "app.image_pull" && strings.Contains(e.Message, tt.want) && strings.Contains(e.Message, "app web") {
					return true
				}
			}
			return false
		})
	}

	// gamma fixes its password: the hub re-sends the host's assignments
	// with it, and the instance backing off pulls with it.
	if _, err := admin.Registries().Add(ctx, apitypes.RegistryRequest{Server: reg.Addr, Username: "alice", Password: password},
		&client.WriteOptions{Tenant: "gamma"}); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 150*time.Second, "gamma's instance running with the fixed password", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "web", &client.QueryOptions{Tenant: "gamma"})
		return err == nil && len(is) == 1 && is[0].State == "running"
	})

	// No answer shows the password.
	for _, tenant := range []string{"acme", "beta", "gamma"} {
		q := &client.QueryOptions{Tenant: tenant}
		regs, _, err := admin.Registries().List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		is, _, _ := admin.Apps().Instances(ctx, "web", q)
		evs, _, _ := admin.Events(ctx, 0, q)
		for what, v := range map[string]any{"registries": regs, "instances": is, "events": evs} {
			if b := registryJSON(t, v); strings.Contains(b, password) {
				t.Fatalf("GET %s of %s shows the password: %s", what, tenant, b)
			}
		}
	}
	audit, err := admin.Audit(ctx, client.AuditQuery{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := registryJSON(t, audit); strings.Contains(b, password) || !strings.Contains(b, "/v1/registries") {
		t.Fatalf("the audit log shows the password or lacks the registry writes: %s", b)
	}

	for _, tenant := range []string{"acme", "beta", "gamma"} {
		if err := admin.Apps().Delete(ctx, "web", &client.WriteOptions{Tenant: tenant}); err != nil {
			t.Fatal(err)
		}
	}
	hubtest.WaitFor(t, 30*time.Second, "the instances stopped", func() bool {
		mu.Lock()
		defer mu.Unlock()
		l, err := drv.List(ctx)
		running := 0
		for _, st := range l {
			if st.State == driver.StateRunning {
				running++
			}
		}
		return err == nil && running == 0
	})
	stopAgent()

	// Disks and logs: stop the nodes so every buffered write is on disk,
	// then read every file of every hub's and the agent's data dir.
	c.Stop()
	dirs := []string{agentDir}
	for _, n := range c.Nodes {
		dirs = append(dirs, n.DataDir)
	}
	files, plain := 0, 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			if bytes.Contains(b, []byte(reg.Addr)) {
				plain++ // the registry's server, in each hub's Raft log
			}
			if bytes.Contains(b, []byte(password)) {
				t.Errorf("%s holds the password in plain text", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if plain < len(c.Nodes) || files < 6 {
		t.Fatalf("%d files, %d naming the registry: the search would not find a plain password either", files, plain)
	}
	if l := logs.String(); strings.Contains(l, password) {
		t.Fatal("a hub or the agent logged the password")
	} else if !strings.Contains(l, "hub started") || !strings.Contains(l, "pulling image") {
		t.Fatal("the logs were not captured")
	}
}

func registryJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
