package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// readLogs reads an app's lines through one hub node's API.
func readLogs(t *testing.T, c *client.Client, app string, o client.LogOptions) []apitypes.LogLine {
	t.Helper()
	var out []apitypes.LogLine
	o.Tenant = "acme"
	if err := c.Apps().Logs(context.Background(), app, o, func(l apitypes.LogLine) error {
		out = append(out, l)
		return nil
	}); err != nil {
		t.Fatalf("logs of %s: %v", app, err)
	}
	return out
}

// numbered returns, for lines "line 00000042 ...", how often each number
// appears, and the highest.
func numbered(lines []apitypes.LogLine) (map[int]int, int) {
	seen, high := map[int]int{}, 0
	for _, l := range lines {
		var n int
		if _, err := fmt.Sscanf(l.Line, "line %d", &n); err == nil {
			seen[n]++
			high = max(high, n)
		}
	}
	return seen, high
}

// TestLogs: an exec instance's stdout and stderr reach the hub through the
// agent's buffer and logs stream; every hub node answers with the lines
// of all (merged, in order, each once); follow streams new lines; grep,
// instance and since filter; a line longer than the agent's limit comes in
// marked pieces; bad queries are refused; after the hub node the agent
// shipped to dies, the lines are still all there (it copied them to a
// second node before acknowledging).
func TestLogs(t *testing.T) {
	for _, kind := range []string{"exec", "docker"} {
		t.Run(kind, func(t *testing.T) { logsFlow(t, kind) })
	}
}

func logsFlow(t *testing.T, kind string) {
	var spec apitypes.AppSpec
	dir := t.TempDir()
	newDriver := func(hostID string) (driver.Driver, error) {
		return exec.New(exec.Config{HostID: hostID, DataDir: dir, ShimEnv: []string{"GORACE=atexit_sleep_ms=0"}})
	}
	if kind == "docker" {
		spec.Image = drivertest.BuildTestAppImage(t, dockerDaemon(t).Client())
		newDriver = func(hostID string) (driver.Driver, error) {
			return docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
		}
	} else {
		spec.Command = []string{drivertest.BuildTestApp(t)}
	}
	c, admin, token := newCluster(t, hubtest.Options{}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	var a *agent.Agent
	stopStrays(t, func() []string { return []string{dir} })
	stopLeftovers(t, func() []driver.Driver {
		if a == nil || a.HostID() == "" {
			return nil
		}
		d, err := newDriver(a.HostID())
		if err != nil {
			return nil
		}
		return []driver.Driver{d}
	})
	a, _ = runAgent(t, agent.Config{Hubs: hubs(c)[:1], Token: jt.Token, DataDir: dir, Name: "l", NewDriver: newDriver})
	w := &client.WriteOptions{Tenant: "acme"}
	const total = 300
	spec.Name, spec.Instances, spec.Ports = "talk", intp(1), []apitypes.Port{{ContainerPort: 8080}}
	spec.Env, spec.Health = map[string]string{"TESTAPP_PRINT": "200", "TESTAPP_PRINT_COUNT": fmt.Sprint(total)},
		&apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}
	hubtest.WaitFor(t, 20*time.Second, "app created", func() bool {
		_, err := admin.Apps().Create(ctx, spec, w)
		return err == nil
	})
	t.Cleanup(func() {
		admin, _ := client.New(client.Config{Address: c.Nodes[len(c.Nodes)-1].URL(), Token: token}) // node 0 is killed below
		scaleToZero(t, admin, "talk")
	})
	inst := onlyInstance(t, admin, "talk")
	nodes := make([]*client.Client, len(c.Nodes))
	for i, n := range c.Nodes {
		nodes[i], _ = client.New(client.Config{Address: n.URL(), Token: token})
	}
	// Every node serves the lines from its own store; each gets them by
	// replication, at its own pace.
	hubtest.WaitFor(t, 30*time.Second, "every numbered line readable on every node", func() bool {
		for _, n := range nodes {
			if seen, _ := numbered(readLogs(t, n, "talk", client.LogOptions{})); len(seen) != total {
				return false
			}
		}
		return true
	})
	for i, n := range nodes {
		lines := readLogs(t, n, "talk", client.LogOptions{})
		seen, high := numbered(lines)
		if len(seen) != total || high != total {
			t.Fatalf("node %d: %d distinct numbers, highest %d; want %d", i, len(seen), high, total)
		}
		for num, k := range seen {
			if k != 1 {
				t.Fatalf("node %d: line %d appears %d times", i, num, k)
			}
		}
		for j := 1; j < len(lines); j++ {
			if lines[j].Time.Before(lines[j-1].Time) {
				t.Fatalf("node %d: lines out of time order at %d", i, j)
			}
		}
		if lines[0].Instance != inst.ID || lines[0].Stream != "stdout" || lines[0].Seq == 0 {
			t.Fatalf("node %d: first line %+v", i, lines[0])
		}
	}

	// Follow: lines written after the follow started arrive, stderr too.
	fctx, cancel := context.WithCancel(ctx)
	got := make(chan apitypes.LogLine, 100)
	done := make(chan error, 1)
	go func() {
		// Since covers the time the follow takes to start on a slow
		// machine: the lines said before it is live come from the store.
		done <- nodes[1].Apps().Logs(fctx, "talk", client.LogOptions{Tenant: "acme", Follow: true, Since: time.Minute}, func(l apitypes.LogLine) error {
			got <- l
			return nil
		})
	}()
	say := func(line, stream string) {
		t.Helper()
		resp, err := http.Get("http://" + inst.Address + "/log?stream=" + stream + "&line=" + url.QueryEscape(line))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	say("followed-out", "stdout")
	say("followed-err", "stderr")
	want := map[string]string{"followed-out": "stdout", "followed-err": "stderr"}
	timeout := time.After(deadline.Scale(20 * time.Second))
	for len(want) > 0 {
		select {
		case l := <-got:
			if s, ok := want[l.Line]; ok {
				if l.Stream != s {
					t.Fatalf("%q on stream %s, want %s", l.Line, l.Stream, s)
				}
				delete(want, l.Line)
			}
		case <-timeout:
			t.Fatalf("follow: still waiting for %v", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}

	// Filters.
	if g := readLogs(t, nodes[0], "talk", client.LogOptions{Grep: "followed-"}); len(g) != 2 {
		t.Fatalf("grep: %d lines: %+v", len(g), g)
	}
	if g := readLogs(t, nodes[0], "talk", client.LogOptions{Instance: "nope"}); len(g) != 0 {
		t.Fatalf("instance filter: %d lines", len(g))
	}
	if g := readLogs(t, nodes[0], "talk", client.LogOptions{Instance: inst.ID, Grep: "line 00000007 "}); len(g) != 1 {
		t.Fatalf("instance+grep: %d lines", len(g))
	}
	if g := readLogs(t, nodes[0], "talk", client.LogOptions{Limit: 5}); len(g) != 5 || g[4].Line != "followed-err" && g[4].Line != "followed-out" {
		t.Fatalf("tail 5: %+v", g)
	}

	// A line longer than the agent's 16 KiB limit: pieces, marked (Docker's
	// own 16 KiB frames are joined by the driver first).
	long := strings.Repeat("0123456789", 4000) // 40,000 bytes
	say(long, "stdout")
	var pieces []apitypes.LogLine
	hubtest.WaitFor(t, 20*time.Second, "the long line's pieces", func() bool {
		pieces = readLogs(t, nodes[0], "talk", client.LogOptions{Grep: "0123456789012345"})
		return len(pieces) > 0 && !pieces[len(pieces)-1].Partial
	})
	var joined strings.Builder
	for i, p := range pieces {
		if p.Partial != (i < len(pieces)-1) || len(p.Line) > 16<<10 {
			t.Fatalf("piece %d: partial %v, %d bytes", i, p.Partial, len(p.Line))
		}
		joined.WriteString(p.Line)
	}
	if len(pieces) != 3 || joined.String() != long {
		t.Fatalf("long line came back as %d pieces, %d bytes", len(pieces), joined.Len())
	}

	// Bad queries change nothing and say why.
	for _, bad := range []string{"since=yesterday", "since=-5m", "limit=0", "limit=1000001", "follow=maybe"} {
		resp, err := http.Get(c.Nodes[0].URL() + "/v1/apps/talk/logs?tenant=acme&" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized { // no token: refused before anything else
			t.Fatalf("%s without a token: %d", bad, resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", c.Nodes[0].URL()+"/v1/apps/talk/logs?tenant=acme&"+bad, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400", bad, resp.StatusCode)
		}
	}
	if err := nodes[0].Apps().Logs(ctx, "nosuch", client.LogOptions{Tenant: "acme"}, func(apitypes.LogLine) error { return nil }); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("logs of a missing app: %v", err)
	}

	// The hubs count what they took in, and show their internals
	// (Prometheus /metrics).
	sum := func(name string) float64 {
		var v float64
		for _, n := range c.Nodes {
			v += scrape(t, n.URL(), name)
		}
		return v
	}
	// A loaded machine may be between leaders for a moment: the gauges are
	// read again until they agree, the counters only grow.
	hubtest.WaitUntil(t, 10*time.Second, "the hubs' metrics", func() error {
		var bad []string
		for name, min := range map[string]float64{"wharf_hub_log_lines_accepted_total": total, "wharf_hub_log_batches_replicated_total": 1,
			"wharf_raft_leader": 1, "wharf_raft_term": 3, "wharf_raft_applied_index": 30, "wharf_gateway_agents": 1, "wharf_gateway_heartbeats_total": 1,
			"wharf_gateway_log_batches_total": 1, "wharf_planner_instances_placed_total": 1, "wharf_planner_rounds_total": 1, "wharf_hub_log_store_bytes": 1} {
			if v := sum(name); v < min {
				bad = append(bad, fmt.Sprintf("%s summed over the nodes is %v, want at least %v", name, v, min))
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return fmt.Errorf("/metrics: %s", strings.Join(bad, "; "))
		}
		return nil
	})

	// The node the agent shipped to dies: every line is on another node.
	if a.Hubs()[0] != c.Nodes[0].QUICAddr() {
		t.Fatalf("agent ships to %v, the test expects node 0", a.Hubs())
	}
	c.Kill(0)
	seen, _ := numbered(readLogs(t, nodes[1], "talk", client.LogOptions{}))
	if len(seen) != total {
		t.Fatalf("after losing the agent's hub node: %d of %d numbered lines", len(seen), total)
	}
}

func isStatus(err error, code int) bool {
	var e *apitypes.Error
	return errors.As(err, &e) && e.Status == code
}

// scrape returns the value of an unlabelled counter or gauge on a hub
// node's /metrics (0 when absent).
func scrape(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f := fams[name]
	if f == nil || len(f.Metric) == 0 {
		return 0
	}
	m := f.Metric[0]
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestLogsDroppedReported: an agent cut off from the hub while its
// instance floods a small log buffer drops the oldest lines; once it is
// back, the loss reaches the tenant as a logs.dropped event naming the
// instance and the seqs, and what survived is readable.
func TestLogsDroppedReported(t *testing.T) {
	c, admin, _ := newCluster(t, hubtest.Options{}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	dir := t.TempDir()
	a, _ := runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: "small", LogBufferBytes: 256 << 10, NewDriver: execDriver(t, dir)})
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	const total = 20000 // 2 MB of lines into a 256 KiB buffer
	spec := apitypes.AppSpec{Name: "flood", Command: []string{drivertest.BuildTestApp(t)}, Instances: intp(1), Ports: []apitypes.Port{{ContainerPort: 8080}},
		Env: map[string]string{"TESTAPP_PRINT": "2000", "TESTAPP_PRINT_COUNT": fmt.Sprint(total), "TESTAPP_PRINT_SIZE": "100"}}
	t.Cleanup(func() {
		a.CutHub(false)
		scaleToZero(t, admin, "flood")
	})
	// 10 s of lines; the agent is cut off as soon as the instance runs.
	if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 30*time.Second, "the instance running", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "flood", q)
		return err == nil && len(is) == 1 && is[0].State == "running"
	})
	a.CutHub(true)
	hubtest.WaitFor(t, 30*time.Second, "the instance's last line captured", func() bool {
		return a.LogsCaptured() >= total
	})
	a.CutHub(false)
	tenant, _ := client.New(client.Config{Address: c.Nodes[1].URL(), Token: tenantToken(t, admin, "acme")})
	var drop apitypes.Event
	hubtest.WaitFor(t, 30*time.Second, "a logs.dropped event", func() bool {
		evs, _, _ := tenant.Events(ctx, 0, nil)
		for _, e := range evs {
			if e.Type == "logs.dropped" && e.Subject == "acme/flood" {
				drop = e
				return true
			}
		}
		return false
	})
	var n, first, last uint64
	if _, err := fmt.Sscanf(drop.Message[strings.Index(drop.Message, "dropped "):], "dropped %d log lines", &n); err != nil || n == 0 {
		t.Fatalf("event %q: %v", drop.Message, err)
	}
	if i := strings.Index(drop.Message, "(seq "); i < 0 {
		t.Fatalf("event %q names no seqs", drop.Message)
	} else if _, err := fmt.Sscanf(drop.Message[i:], "(seq %d-%d)", &first, &last); err != nil || last-first+1 != n {
		t.Fatalf("event %q: seqs %d-%d for %d lines (%v)", drop.Message, first, last, n, err)
	}
	hubtest.WaitFor(t, 30*time.Second, "the survivors readable", func() bool {
		seen, high := numbered(readLogs(t, admin, "flood", client.LogOptions{Limit: apitypes.MaxLogLimit}))
		return high == total && len(seen)+int(n) >= total
	})
	t.Logf("dropped %d of %d lines (seqs %d-%d), reported", n, total, first, last)
}
