package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestAuditSurvivesLeaderKill: a session of mutating calls spread over the
// three nodes, with the leader killed in the middle. Every call that was
// acknowledged is in the audit log exactly once with its fields; the
// secrets the session sent or received appear in no answer and nowhere in
// the nodes' data dirs.
func TestAuditSurvivesLeaderKill(t *testing.T) {
	c, _, token := newCluster(t, hubtest.Options{}, "p", "acme")
	ctx := context.Background()
	clientOf := func(i int, tok string) *client.Client {
		cl, _ := client.New(client.Config{Address: c.Nodes[i].URL(), Token: tok})
		return cl
	}
	admin0 := clientOf(0, token)
	dev, err := admin0.Tokens().Create(ctx, apitypes.TokenRequest{Name: "dev", Role: apitypes.RoleDeveloper, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := admin0.Tokens().Create(ctx, apitypes.TokenRequest{Name: "view", Role: apitypes.RoleViewer, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	const bodySecret = "s3cr3t-in-a-refused-body"
	type acked struct {
		method, path, object string
		status               int
	}
	var done []acked
	attempts := map[acked]int{} // by call, whatever its status
	w := &client.WriteOptions{Tenant: "acme"}
	// call runs one step on a running node (round robin), retrying on
	// another node while the cluster elects; it keeps what was
	// acknowledged. A retry refused with 404 or 409 means an earlier try
	// was applied though not acknowledged: the step is over, unacknowledged.
	step := 0
	call := func(method, path, object string, status int, f func(dev *client.Client) error) {
		t.Helper()
		key := acked{method, path, object, status}
		deadline := time.Now().Add(30 * time.Second)
		for try := 1; ; {
			step++
			i := step % 3
			if !c.Nodes[i].Running() {
				continue
			}
			attempts[acked{method, path, object, 0}]++
			err := f(clientOf(i, dev.Secret))
			var ae *apitypes.Error
			switch {
			case err == nil && status/100 == 2, errors.As(err, &ae) && ae.Status == status:
				done = append(done, key)
				return
			case try > 1 && errors.As(err, &ae) && (ae.Status == 409 || ae.Status == 404):
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			try++
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := range 12 {
		name := fmt.Sprintf("a%d", i)
		if i == 6 {
			leader := c.WaitLeader(10 * time.Second)
			c.Kill(leader.Index)
		}
		call("POST", "/v1/apps", name, 201, func(d *client.Client) error {
			_, err := d.Apps().Create(ctx, apitypes.AppSpec{Name: name, Image: "img:1", Instances: intp(0)}, w)
			return err
		})
		call("POST", "/v1/apps/"+name+"/scale", name, 200, func(d *client.Client) error {
			_, err := d.Apps().Scale(ctx, name, 1, w)
			return err
		})
		call("POST", "/v1/apps/"+name+"/restart", name, 200, func(d *client.Client) error {
			_, err := d.Apps().Restart(ctx, name, w)
			return err
		})
		call("POST", "/v1/apps/"+name+"/stop", name, 200, func(d *client.Client) error {
			_, err := d.Apps().Stop(ctx, name, w)
			return err
		})
		call("POST", "/v1/apps/"+name+"/stop", name, 409, func(d *client.Client) error {
			_, err := d.Apps().Stop(ctx, name, w)
			return err
		})
		call("DELETE", "/v1/apps/"+name, name, 204, func(d *client.Client) error {
			return d.Apps().Delete(ctx, name, w)
		})
	}
	// Refused requests whose bodies carry a secret: recorded, the body not.
	call("POST", "/v1/apps", "", 403, func(*client.Client) error {
		v := clientOf(firstRunning(c), viewer.Secret)
		_, err := v.Apps().Create(ctx, apitypes.AppSpec{Name: "leak", Image: "i", Env: map[string]string{"PASSWORD": bodySecret}}, w)
		return err
	})
	call("POST", "/v1/apps", "", 400, func(d *client.Client) error {
		_, err := d.Apps().Create(ctx, apitypes.AppSpec{Name: "Bad Name", Image: "i", Env: map[string]string{"PASSWORD": bodySecret}}, w)
		return err
	})

	leader := c.WaitLeader(10 * time.Second)
	admin, _ := client.New(client.Config{Address: leader.URL(), Token: token})
	es, err := admin.Audit(ctx, client.AuditQuery{Limit: 10000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	count := map[acked]int{}
	for _, e := range es {
		if e.ActorID == dev.ID || e.ActorID == viewer.ID {
			count[acked{e.Method, e.Path, e.Object, e.Status}]++
			count[acked{e.Method, e.Path, e.Object, 0}]++
			if e.Tenant != "acme" || e.Time.IsZero() || e.Node == "" {
				t.Errorf("entry %+v: want tenant acme, a time and the node", e)
			}
		}
	}
	retried := 0
	for _, a := range done {
		// Each try is recorded at most once; a call tried once, exactly once.
		call := acked{a.method, a.path, a.object, 0}
		switch n := count[a]; {
		case n == 0:
			t.Errorf("acknowledged %s %s (%s, %d) is not in the audit log", a.method, a.path, a.object, a.status)
		case count[call] > attempts[call]:
			t.Errorf("%s %s (%s) is in the audit log %d times after %d tries", a.method, a.path, a.object, count[call], attempts[call])
		}
		if attempts[call] > 1 {
			retried++
		}
	}
	t.Logf("%d calls acknowledged (%d after retries), %d audit entries in all", len(done), retried, len(es))

	// The secrets: none in any answer, none at rest.
	raw := fmt.Sprint(es)
	for _, s := range []string{bodySecret, dev.Secret, viewer.Secret, token} {
		if strings.Contains(raw, s) {
			t.Fatalf("the audit answer holds a secret (%.12s...)", s)
		}
	}
	for _, n := range c.Nodes {
		err := filepath.WalkDir(n.DataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil // a file removed meanwhile
			}
			for _, s := range []string{bodySecret, dev.Secret, viewer.Secret, token} {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds a secret in plain text (%.12s...)", path, s)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func firstRunning(c *hubtest.Cluster) int {
	for i, n := range c.Nodes {
		if n.Running() {
			return i
		}
	}
	return 0
}
