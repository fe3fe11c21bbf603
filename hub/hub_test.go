package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle client connections' goroutines until closed.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// memberlist's Shutdown does not wait for an in-flight probe, which
		// ends by itself within the probe timeout.
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		// A future Raft never answers because it shut down while the
		// future sat in its queue (see Cluster.await).
		goleak.IgnoreTopFunction("github.com/hashicorp/raft.(*deferError).Error"),
	)
}

// rest is a minimal JSON-over-HTTP caller for tests that exercise the hub
// from outside, the way any client does.
type rest struct {
	hc    *http.Client
	token string
}

func newREST(t testing.TB, token string) *rest {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &rest{hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}, token: token}
}

// call sends method url with body (JSON) and decodes a 2xx answer into out.
// It returns the status code; transport errors are returned as err.
func (r *rest) call(ctx context.Context, method, url string, body, out any) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, err
	}
	if resp.StatusCode/100 != 2 {
		var e apitypes.Error
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, e.Message)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("decode %s: %w", b, err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// must calls and fails the test on any error but a retryable 503.
func (r *rest) must(t testing.TB, method, url string, body, out any) int {
	t.Helper()
	// Like any client, retry while the cluster has no leader (503): a
	// loaded test machine can trigger an election at any time. A write
	// the leader lost while committing may have committed: a create tried
	// again then finds its object (409), which is read back by its name.
	deadline := time.Now().Add(15 * time.Second)
	ambiguous := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		code, hdr, err := r.call(ctx, method, url, body, out)
		cancel()
		if err == nil {
			return code
		}
		if name := nameOf(body); ambiguous && method == http.MethodPost && code == http.StatusConflict && name != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			_, _, gerr := r.call(ctx, http.MethodGet, url+"/"+name, nil, out)
			cancel()
			if gerr == nil {
				return http.StatusCreated
			}
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatal(err)
		}
		ambiguous = ambiguous || hdr.Get("X-Wharf-Not-Submitted") != "true"
		time.Sleep(100 * time.Millisecond)
	}
}

// nameOf returns the "name" of a request body given as a map ("" for
// any other body).
func nameOf(body any) string {
	if m, ok := body.(map[string]any); ok {
		if n, ok := m["name"].(string); ok {
			return n
		}
	}
	return ""
}

// bootstrap hands out the admin token through node 0 and returns a caller
// that uses it.
func bootstrap(t testing.TB, c *hubtest.Cluster) *rest {
	t.Helper()
	var b apitypes.BootstrapResponse
	newREST(t, "").must(t, "POST", c.Nodes[0].URL()+"/v1/bootstrap", nil, &b)
	if b.Token == "" {
		t.Fatal("bootstrap returned no token")
	}
	return newREST(t, b.Token)
}

func intp(n int) *int { return &n }

func TestClusterWritesThroughAnyNodeAndSurvivesLeaderLoss(t *testing.T) {
	c := hubtest.New(t, 3, hubtest.Options{})
	admin := bootstrap(t, c)

	// Writes through every node, followers forwarding to the leader.
	for i, n := range c.Nodes {
		admin.must(t, "POST", n.URL()+"/v1/tenants", apitypes.TenantRequest{Name: fmt.Sprintf("t%d", i)}, nil)
	}
	for i, n := range c.Nodes {
		var app apitypes.App
		code := admin.must(t, "PUT", fmt.Sprintf("%s/v1/apps/web?tenant=t%d", n.URL(), i), apitypes.AppSpec{Name: "web", Image: "web:1", Instances: intp(i + 1)}, &app)
		if code != http.StatusCreated || app.Version != 1 || *app.Instances != i+1 {
			t.Fatalf("node %d: PUT answered %d %+v", i, code, app)
		}
	}
	// Linearizable reads from every node see every acknowledged write.
	for _, n := range c.Nodes {
		var tenants []apitypes.Tenant
		admin.must(t, "GET", n.URL()+"/v1/tenants", nil, &tenants)
		if len(tenants) != 3 {
			t.Fatalf("%s sees %d tenants, want 3", n.URL(), len(tenants))
		}
	}

	// Kill the leader: a new one is elected and no acknowledged write is lost.
	old := c.WaitLeader(5 * time.Second)
	c.Kill(old.Index)
	start := time.Now()
	leader := c.WaitLeader(10 * time.Second)
	t.Logf("new leader hub%d after %s", leader.Index, time.Since(start))
	if leader == old {
		t.Fatal("the killed node is still leader")
	}
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		var apps []apitypes.App
		admin.must(t, "GET", n.URL()+"/v1/apps", nil, &apps)
		if len(apps) != 3 {
			t.Fatalf("after leader loss %s sees %d apps, want 3", n.URL(), len(apps))
		}
		admin.must(t, "POST", n.URL()+"/v1/apps/web/scale?tenant=t0", apitypes.ScaleRequest{Instances: intp(5 + n.Index)}, nil)
	}

	// The killed node restarts from its data dir and catches up.
	c.Restart(old.Index)
	n := c.Nodes[old.Index]
	hubtest.WaitFor(t, 10*time.Second, "the restarted node to catch up", func() bool {
		var app apitypes.App
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _, err := admin.call(ctx, "GET", n.URL()+"/v1/apps/web?tenant=t0&stale", nil, &app)
		return err == nil && app.Instances != nil && *app.Instances >= 5
	})
	var st apitypes.Status
	newREST(t, "").must(t, "GET", n.URL()+"/v1/status", nil, &st)
	if len(st.Peers) != 3 {
		t.Fatalf("restarted node sees peers %+v, want 3", st.Peers)
	}
}

func TestNodeAddedLaterGetsFullState(t *testing.T) {
	c := hubtest.New(t, 3, hubtest.Options{SnapshotThreshold: 16})
	admin := bootstrap(t, c)
	url := c.Nodes[0].URL()
	admin.must(t, "POST", url+"/v1/tenants", apitypes.TenantRequest{Name: "acme"}, nil)
	admin.must(t, "POST", url+"/v1/pools", apitypes.PoolRequest{Name: "aws-bj", Datacenter: "dc1"}, nil)
	for i := 0; i < 40; i++ { // enough to force snapshots and log compaction
		admin.must(t, "PUT", url+fmt.Sprintf("/v1/apps/app%d?tenant=acme", i%10), apitypes.AppSpec{Name: fmt.Sprintf("app%d", i%10), Image: fmt.Sprintf("img:%d", i)}, nil)
	}
	// The planner may still be recording why these apps (with no host
	// anywhere) are pending: wait until that settles.
	var want []apitypes.App
	hubtest.WaitFor(t, 10*time.Second, "every app's pending reason recorded", func() bool {
		admin.must(t, "GET", url+"/v1/apps", nil, &want)
		for _, a := range want {
			if a.Pending == "" {
				return false
			}
		}
		return true
	})

	n := c.Add()
	hubtest.WaitFor(t, 20*time.Second, "the new node to be a voter with the full state", func() bool {
		var st apitypes.Status
		var got []apitypes.App
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, _, err := admin.call(ctx, "GET", n.URL()+"/v1/status", nil, &st); err != nil || len(st.Peers) != 4 {
			return false
		}
		if _, _, err := admin.call(ctx, "GET", n.URL()+"/v1/apps?stale", nil, &got); err != nil {
			return false
		}
		return appsEqual(got, want)
	})
}

func appsEqual(a, b []apitypes.App) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestLeaderCreatesAgentCAAndJoinTokensPinIt(t *testing.T) {
	c := hubtest.New(t, 3, hubtest.Options{})
	admin := bootstrap(t, c)
	url := c.Nodes[1].URL()
	admin.must(t, "POST", url+"/v1/pools", apitypes.PoolRequest{Name: "aws-bj", Datacenter: "dc1"}, nil)
	var jt apitypes.JoinToken
	hubtest.WaitFor(t, 10*time.Second, "a join token (the agent CA exists)", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _, err := admin.call(ctx, "POST", url+"/v1/join-tokens", apitypes.JoinTokenRequest{Pool: "aws-bj", TTL: apitypes.Duration(time.Hour), Uses: 1}, &jt)
		return err == nil
	})
	// Every node holds the same CA, and the token pins it.
	var fps []string
	for _, n := range c.Nodes {
		ca, err := n.Hub().Store().Snapshot().AgentCA(nil)
		if err != nil || ca == nil {
			t.Fatalf("hub%d has no agent CA: %v", n.Index, err)
		}
		fps = append(fps, ca.Fingerprint)
	}
	if fps[0] != fps[1] || fps[1] != fps[2] {
		t.Fatalf("nodes disagree on the agent CA: %v", fps)
	}
	if !strings.Contains(jt.Token, strings.TrimPrefix(fps[0], "sha256:")) {
		t.Fatalf("join token %q does not carry the CA fingerprint %s", jt.Token, fps[0])
	}
	// A new leader keeps the CA.
	c.Kill(c.WaitLeader(5 * time.Second).Index)
	l := c.WaitLeader(10 * time.Second)
	ca, _ := l.Hub().Store().Snapshot().AgentCA(nil)
	if ca == nil || ca.Fingerprint != fps[0] {
		t.Fatal("the agent CA changed with the leader")
	}
}

// TestFollowersForwardWritesToTheLeader: a write sent to a follower is
// answered by the leader (the follower proxies it over the internal RPC),
// while reads are answered where they are sent.
func TestFollowersForwardWritesToTheLeader(t *testing.T) {
	c := hubtest.New(t, 3, hubtest.Options{})
	admin := bootstrap(t, c)
	leader := c.WaitLeader(5 * time.Second)
	var follower *hubtest.Node
	for _, n := range c.Nodes {
		if n != leader {
			follower = n
			break
		}
	}
	ctx := context.Background()
	_, hdr, err := admin.call(ctx, "POST", follower.URL()+"/v1/tenants", apitypes.TenantRequest{Name: "fwd"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("X-Wharf-Node"); got != leader.Hub().Name() {
		t.Fatalf("write through %s answered by %q, want the leader %s", follower.Hub().Name(), got, leader.Hub().Name())
	}
	_, hdr, err = admin.call(ctx, "GET", follower.URL()+"/v1/tenants/fwd", nil, nil)
	if err != nil || hdr.Get("X-Wharf-Node") != follower.Hub().Name() {
		t.Fatalf("read through the follower: %v, answered by %q", err, hdr.Get("X-Wharf-Node"))
	}
}
