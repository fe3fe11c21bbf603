package e2e

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestSecretsExec runs a real 3-node cluster and a real agent with the
// exec driver: a secret set on an app reaches its instance's environment
// through a new version; a rollback keeps the current secrets; unset
// removes it. No file of any hub or of the agent (Raft log, snapshots,
// the agent's assignments, the exec driver's instance dirs) holds the
// value, nor does any API answer.
func TestSecretsExec(t *testing.T) {
	bin := drivertest.BuildTestApp(t)
	secretsFlow(t, func(dir string) func(string) (driver.Driver, error) {
		return func(hostID string) (driver.Driver, error) {
			return exec.New(exec.Config{HostID: hostID, DataDir: dir, ShimEnv: []string{"GORACE=atexit_sleep_ms=0"}})
		}
	}, apitypes.AppSpec{Name: "hello", Command: []string{bin}})
}

// TestSecretsDocker is the same flow on real containers. The container's
// configuration is Docker's, in Docker's own data dir: what is checked is
// that the hubs' and the agent's files never hold the value.
func TestSecretsDocker(t *testing.T) {
	image := drivertest.BuildTestAppImage(t, dockerDaemon(t).Client())
	secretsFlow(t, func(string) func(string) (driver.Driver, error) {
		return func(hostID string) (driver.Driver, error) {
			return docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
		}
	}, apitypes.AppSpec{Name: "hello", Image: image})
}

func secretsFlow(t *testing.T, newDrivers func(dataDir string) func(string) (driver.Driver, error), spec apitypes.AppSpec) {
	const plain = "e2e-Secret-VALUE-5b8c1d9e"
	c, admin, token := newCluster(t, hubtest.Options{SuspectAfter: time.Second, DownAfter: 3 * time.Second, SnapshotThreshold: 16}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	dir := t.TempDir()
	newDriver := newDrivers(dir)
	var ag *agent.Agent
	stopStrays(t, func() []string { return []string{dir} })
	stopLeftovers(t, func() []driver.Driver {
		if ag == nil || ag.HostID() == "" {
			return nil
		}
		d, err := newDriver(ag.HostID())
		if err != nil {
			return nil
		}
		return []driver.Driver{d}
	})
	ag, _ = runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: "a", NewDriver: newDriver})
	hubtest.WaitFor(t, 20*time.Second, "a ready host", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready" && hs[0].MemoryBytes > 0
	})
	w := &client.WriteOptions{Tenant: "acme"}
	q := &client.QueryOptions{Tenant: "acme"}
	spec.Instances, spec.Env = intp(1), map[string]string{"MODE": "e2e"}
	spec.Ports = []apitypes.Port{{ContainerPort: 8080}}
	spec.Health = &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}
	if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	// env is the instance's variable k ("" when unset or unreachable) and
	// whether the instance answered.
	env := func(addr, k string) (string, bool) {
		resp, err := hc.Get("http://" + addr + "/env?k=" + k)
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusNotFound {
			return "", true
		}
		return string(b), resp.StatusCode == http.StatusOK
	}
	// serving is the one instance meant to run, ready at version v, with
	// DB_PASSWORD as want in its environment.
	serving := func(v int, want string) bool {
		is, _, err := admin.Apps().Instances(ctx, "hello", q)
		if err != nil {
			return false
		}
		n := 0
		for _, i := range is {
			if i.Desired != "run" {
				continue
			}
			if i.Version != v || !i.Ready {
				return false
			}
			got, ok := env(i.Address, "DB_PASSWORD")
			if mode, _ := env(i.Address, "MODE"); !ok || got != want || mode != "e2e" {
				return false
			}
			n++
		}
		return n == 1
	}
	hubtest.WaitFor(t, 60*time.Second, "version 1 serving without the secret", func() bool { return serving(1, "") })

	s, err := admin.Apps().SetSecrets(ctx, "hello", apitypes.SecretsRequest{"DB_PASSWORD": plain}, w)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 2 || strings.Join(s.Names, ",") != "DB_PASSWORD" {
		t.Fatalf("set: %+v, want version 2 with DB_PASSWORD", s)
	}
	hubtest.WaitFor(t, 60*time.Second, "version 2 serving with the secret in its environment", func() bool { return serving(2, plain) })

	// A rollback to version 1 keeps the current secrets.
	if a, err := admin.Apps().Rollback(ctx, "hello", 1, w); err != nil || a.Version != 1 {
		t.Fatalf("rollback: %+v %v", a, err)
	}
	hubtest.WaitFor(t, 60*time.Second, "version 1 serving again, with the current secret", func() bool { return serving(1, plain) })

	// Some hub has a Raft snapshot with the app's secrets in it (their names
	// are plain there): the walk below covers snapshots too.
	hubtest.WaitFor(t, 120*time.Second, "a Raft snapshot holding the app's secrets", func() bool {
		found := false
		for _, n := range c.Nodes {
			_ = filepath.WalkDir(n.DataDir, func(path string, e fs.DirEntry, err error) error {
				if err == nil && !e.IsDir() && strings.Contains(path, "snapshots") && filepath.Base(path) == "state.bin" {
					if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte("DB_PASSWORD")) {
						found = true
					}
				}
				return nil
			})
		}
		return found
	})
	noPlainInFiles(t, plain, append(dataDirs(c), dir)...)
	noPlainInAnswers(t, plain, c.Nodes[0].URL(), token, []string{
		"/v1/apps?tenant=acme", "/v1/apps/hello?tenant=acme", "/v1/apps/hello/versions?tenant=acme", "/v1/apps/hello/history?tenant=acme",
		"/v1/apps/hello/instances?tenant=acme", "/v1/apps/hello/secrets?tenant=acme", "/v1/events?tenant=acme", "/v1/audit",
		"/v1/apps/hello/logs?tenant=acme&since=1h",
	})
	var audited int
	es, err := admin.Audit(ctx, client.AuditQuery{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Method == "PUT" && e.Path == "/v1/apps/hello/secrets" && e.Status == 200 {
			audited++
		}
	}
	if audited != 1 {
		t.Fatalf("the audit log has %d entries of the secret's PUT, want 1", audited)
	}

	// Unset: a new version whose instance lacks the variable.
	if err := admin.Apps().UnsetSecret(ctx, "hello", "DB_PASSWORD", w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 60*time.Second, "version 3 serving without the secret", func() bool { return serving(3, "") })
	noPlainInFiles(t, plain, append(dataDirs(c), dir)...)

	if err := admin.Apps().Delete(ctx, "hello", w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 30*time.Second, "every process stopped", func() bool {
		d, err := newDriver(ag.HostID())
		if err != nil {
			return false
		}
		l, err := d.List(ctx)
		if cl, ok := d.(interface{ Close() error }); ok {
			cl.Close()
		}
		return err == nil && len(l) == 0
	})
}

func dataDirs(c *hubtest.Cluster) []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.DataDir)
	}
	return out
}

// noPlainInFiles fails if any file under dirs holds plain.
func noPlainInFiles(t *testing.T, plain string, dirs ...string) {
	t.Helper()
	files := 0
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil // removed while walking (an instance dir, a compacted segment)
				}
				return err
			}
			if !e.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			files++
			if bytes.Contains(b, []byte(plain)) {
				t.Errorf("%s holds the secret's value", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files == 0 {
		t.Fatal("no file walked")
	}
}

// noPlainInAnswers fails if any GET of paths answers with plain in it.
func noPlainInAnswers(t *testing.T, plain, base, token string, paths []string) {
	t.Helper()
	for _, p := range paths {
		req, _ := http.NewRequest("GET", base+p, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, b)
		}
		if bytes.Contains(b, []byte(plain)) {
			t.Fatalf("GET %s shows the secret's value: %s", p, b)
		}
	}
}
