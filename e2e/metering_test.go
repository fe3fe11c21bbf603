package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestMeteringExactlyOnce runs apps on a 3-node hub for many short hours
// (4 s) while the leader is killed and restarted again and again and a
// node is partitioned: every closed hour equals a reference computed from
// the instances' lifetimes as the committed status reports tell them
// (replayed from the Raft log), with no hour missing or counted twice;
// every node holds the same usage, byte for byte, including nodes that
// restarted from a snapshot; the requests routed are committed once each
// and survive the leader kills.
func TestMeteringExactlyOnce(t *testing.T) {
	const hour = 4 * time.Second
	c, _, token := newCluster(t, hubtest.Options{SuspectAfter: time.Second, DownAfter: 3 * time.Second, MeterHour: hour, SnapshotThreshold: 64}, "p", "acme")
	ctx := context.Background()
	// A client of the leader, else of any running node (not of a node cut
	// off, which cannot reach a leader).
	api := func() *client.Client {
		n := c.Leader()
		for _, o := range c.Nodes {
			if n == nil && o.Running() {
				n = o
			}
		}
		if n == nil {
			t.Fatal("no node runs")
		}
		cl, _ := client.New(client.Config{Address: n.URL(), Token: token})
		return cl
	}
	jt := joinToken(t, api(), apitypes.JoinTokenRequest{Pool: "p"})
	var agents []*agent.Agent
	for _, name := range []string{"a", "b"} {
		a, _ := runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: name, DrainDelay: -1,
			NewDriver: fakeDriver(fake.NewHost()), RouterHTTPAddr: "127.0.0.1:0"})
		agents = append(agents, a)
	}
	hubtest.WaitFor(t, 20*time.Second, "two ready hosts", func() bool {
		hs, _, err := api().Hosts().List(ctx, nil)
		return err == nil && len(hs) == 2 && hs[0].State == "ready" && hs[1].State == "ready" && hs[0].MemoryBytes > 0 && hs[1].MemoryBytes > 0
	})
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	for _, s := range []apitypes.AppSpec{
		{Name: "web", Image: "web:1", Instances: intp(2), CPU: 250, Memory: 128, Ports: []apitypes.Port{{ContainerPort: 8080}}},
		{Name: "api", Image: "api:1", Instances: intp(1), CPU: 100, Memory: 64},
	} {
		hubtest.WaitUntil(t, 10*time.Second, "app "+s.Name+" created", func() error {
			_, err := api().Apps().Create(ctx, s, w)
			if apitypes.StatusOf(err) == http.StatusConflict {
				return nil
			}
			return err
		})
	}
	running := func(app string, n int) {
		t.Helper()
		hubtest.WaitUntil(t, 30*time.Second, fmt.Sprintf("%d running instances of %s", n, app), func() error {
			is, _, err := api().Apps().Instances(ctx, app, q)
			if err != nil {
				return err
			}
			k := 0
			for _, i := range is {
				if i.Desired == "run" && i.State == "running" {
					k++
				}
			}
			if k != n {
				return fmt.Errorf("%d running", k)
			}
			return nil
		})
	}
	running("web", 2)
	running("api", 1)

	// Requests go through agent a's router to web.
	routerAddr, _ := agents[0].RouterAddrs()
	load := &routedLoad{t: t, addr: routerAddr, host: "web.acme.localhost"}
	hubtest.WaitFor(t, 20*time.Second, "the router to route web", load.get)
	committed := func() (int64, error) {
		us, err := api().Usage(ctx, client.UsageQuery{App: "web", From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Group: apitypes.UsageByApp}, q)
		if err != nil {
			return 0, err
		}
		var n int64
		for _, u := range us {
			n += u.Requests
		}
		return n, nil
	}
	waitRequests := func(what string) {
		t.Helper()
		hubtest.WaitUntil(t, 30*time.Second, what, func() error {
			n, err := committed()
			if err != nil {
				return err
			}
			if n != load.sent {
				return fmt.Errorf("%d requests committed, %d sent", n, load.sent)
			}
			return nil
		})
	}
	scale := func(app string, n int) {
		t.Helper()
		hubtest.WaitUntil(t, 20*time.Second, fmt.Sprintf("scale %s to %d", app, n), func() error {
			_, err := api().Apps().Scale(ctx, app, n, w)
			return err
		})
	}

	for round, n := range []int{3, 1, 2} {
		load.send(20)
		waitRequests(fmt.Sprintf("round %d: the requests committed", round))
		leader := c.WaitLeader(15 * time.Second)
		c.Kill(leader.Index)
		c.WaitLeader(15 * time.Second)
		n2, err := committed()
		if err != nil || n2 != load.sent {
			t.Fatalf("after killing the leader: %d requests committed (%v), %d sent", n2, err, load.sent)
		}
		scale("web", n)
		time.Sleep(hour) // an hour passes, to be closed by the next leader
		c.Restart(leader.Index)
		running("web", n)
	}
	// A follower cut off for two hours, then back. Not the node agent a
	// (whose router the requests go through) talks to: the death of that
	// node is TestUsageExactlyOnceThroughNodeDeath's.
	leader := c.WaitLeader(15 * time.Second)
	var viaNode string
	hubtest.WaitFor(t, 10*time.Second, "agent a's hub node", func() bool {
		h, _, err := api().Hosts().Get(ctx, agents[0].HostID(), nil)
		if err == nil {
			viaNode = h.HubNode
		}
		return viaNode != ""
	})
	cut := -1
	for _, n := range c.Nodes {
		if n != leader && fmt.Sprintf("hub%d", n.Index) != viaNode {
			cut = n.Index
		}
	}
	c.Partition(cut)
	load.send(10)
	hubtest.WaitUntil(t, 20*time.Second, "delete app api", func() error {
		if err := api().Apps().Delete(ctx, "api", w); apitypes.StatusOf(err) != http.StatusNotFound {
			return err
		}
		return nil
	})
	time.Sleep(2 * hour)
	c.Heal()
	waitRequests("the requests committed after the partition")

	// Wait until the hours up to end are closed on every node.
	end := time.Now().Truncate(hour).Add(2 * hour)
	var rows [][]byte
	hubtest.WaitUntil(t, 60*time.Second, "every node closed the hours up to "+end.Format(time.RFC3339), func() error {
		rows = rows[:0]
		for _, n := range c.Nodes {
			h := n.Hub()
			if h == nil {
				return fmt.Errorf("hub%d stopped", n.Index)
			}
			snap := h.Store().Snapshot()
			closed, _, err := snap.MeterState()
			if err != nil || closed < end.Unix() {
				return fmt.Errorf("hub%d closed through %d (%v)", n.Index, closed, err)
			}
			us, err := snap.ClosedUsage(nil, "", 0, end.Unix())
			if err != nil {
				return err
			}
			b, _ := json.Marshal(us)
			rows = append(rows, b)
		}
		return nil
	})
	for i := range rows {
		if string(rows[i]) != string(rows[0]) {
			t.Fatalf("hub%d's closed usage differs from hub0's:\n%s\n%s", i, rows[i], rows[0])
		}
	}
	var got []*state.UsageRow
	if err := json.Unmarshal(rows[0], &got); err != nil {
		t.Fatal(err)
	}
	if n, err := committed(); err != nil || n != load.sent {
		t.Fatalf("%d requests committed (%v), %d sent", n, err, load.sent)
	}
	// The reference, from the last leader's Raft log.
	last := c.WaitLeader(15 * time.Second)
	c.Stop()
	want, first, trace := referenceUsage(t, filepath.Join(last.DataDir, "raft", "wal"), int64(hour/time.Second), end.Unix())
	gotKeys := map[string]*state.UsageRow{}
	for _, r := range got {
		gotKeys[fmt.Sprintf("%s/%s@%d", r.Tenant, r.App, r.Start)] = r
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, w := gotKeys[k], want[k]
		if g == nil {
			t.Errorf("%s: no closed row, the reference has %+v", k, *w)
			continue
		}
		if [3]int64{g.InstanceSeconds, g.CPUMilliSeconds, g.MemoryMBSeconds} != [3]int64{w.InstanceSeconds, w.CPUMilliSeconds, w.MemoryMBSeconds} {
			t.Errorf("%s: closed %d s, %d m·s, %d MB·s; the reference %d s, %d m·s, %d MB·s", k,
				g.InstanceSeconds, g.CPUMilliSeconds, g.MemoryMBSeconds, w.InstanceSeconds, w.CPUMilliSeconds, w.MemoryMBSeconds)
			if app := w.Tenant + "/" + w.App; trace[app] != nil {
				t.Logf("how the log metered %s:\n%s", app, strings.Join(trace[app], "\n"))
				delete(trace, app)
			}
		}
	}
	for k, g := range gotKeys {
		if want[k] == nil && g.InstanceSeconds != 0 {
			t.Errorf("%s: closed %+v, the reference has nothing", k, *g)
		}
	}
	t.Logf("%d closed rows over %d hours, %d requests", len(got), (end.Unix()-first)/int64(hour/time.Second), load.sent)
}

// referenceUsage replays a Raft log into a fresh FSM and meters what the
// committed status reports say of the instances, by the rules, on its
// own: an instance counts while desired to run and reported running,
// from the command that makes it so until the one that ends it; a host
// marked down stops its instances until each reports running again. It
// returns the rows of the hours before end (by "tenant/app@start"), the
// first hour, and per "tenant/app" a trace of the commands that started
// or stopped a count, in the reference or in the FSM (an instance's
// MeteredSince), with the hours closed between them.
func referenceUsage(t *testing.T, dir string, hour, end int64) (map[string]*state.UsageRow, int64, map[string][]string) {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	logs, err := wal.Open(dir, wal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { logs.Close(); meta.Close() }()
	firstIdx, _ := logs.FirstIndex()
	lastIdx, _ := logs.LastIndex()
	if firstIdx != 1 {
		t.Fatalf("the Raft log starts at %d: compacted, no reference", firstIdx)
	}
	store, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	fsm := state.NewFSM(store, nil)
	type inst struct {
		tenant, app string
		cpu, mem    int
		since       int64
	}
	counting := map[string]*inst{}
	lost := map[string]bool{}
	rows := map[string]*state.UsageRow{}
	var first int64
	trace := map[string][]string{}
	var closedLines []string    // every CloseHour, in order
	inTrace := map[string]int{} // how many of closedLines each trace holds
	note := func(key, line string) {
		trace[key] = append(trace[key], closedLines[inTrace[key]:]...)
		inTrace[key] = len(closedLines)
		trace[key] = append(trace[key], line)
	}
	closes, batches, retried := 0, 0, 0
	hours, lastSeq := map[int64]bool{}, map[string]uint64{}
	add := func(i *inst, to int64) {
		for s := i.since; s < min(to, end); s++ {
			h := s - s%hour
			if first == 0 || h < first {
				first = h
			}
			k := fmt.Sprintf("%s/%s@%d", i.tenant, i.app, h)
			r := rows[k]
			if r == nil {
				r = &state.UsageRow{Tenant: i.tenant, App: i.app, Start: h, End: h + hour}
				rows[k] = r
			}
			r.InstanceSeconds++
			r.CPUMilliSeconds += int64(i.cpu)
			r.MemoryMBSeconds += int64(i.mem)
		}
	}
	for idx := firstIdx; idx <= lastIdx; idx++ {
		var l raft.Log
		if err := logs.GetLog(idx, &l); err != nil {
			t.Fatal(err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		_, req, err := state.Decode(l.Data)
		if err != nil {
			t.Fatalf("entry %d: %v", idx, err)
		}
		// An API write (an app's delete) comes wrapped with its audit
		// entry: it meters as the command it carries.
		if a, ok := req.(*state.AuditedRequest); ok {
			if _, req, err = state.Decode(a.Command); err != nil {
				t.Fatalf("entry %d: audited command: %v", idx, err)
			}
		}
		switch r := req.(type) {
		case *state.CloseHourRequest:
			closes++
			hours[r.From.Unix()] = true
			closedLines = append(closedLines, fmt.Sprintf("  %d close [%d, %d)", idx, r.From.Unix(), r.To.Unix()))
		case *state.UsageCountersRequest:
			batches++
			if r.Seq <= lastSeq[r.Node] {
				retried++
			}
			lastSeq[r.Node] = max(lastSeq[r.Node], r.Seq)
		}
		// A command stamped before the last close counts from that close
		// (the closed hours counted the instances as they were).
		closed, _, _ := store.Snapshot().MeterState()
		hostsBefore := map[string]string{}
		hs, _ := store.Snapshot().Hosts(nil)
		for _, h := range hs {
			hostsBefore[h.ID] = h.State
		}
		metered := map[string]*state.Instance{}
		isBefore, _ := store.Snapshot().Instances(nil)
		for _, i := range isBefore {
			metered[i.ID] = i
		}
		fsm.Apply(&l)
		var at time.Time
		switch r := req.(type) {
		case *state.InstanceUpdateRequest:
			at = r.Time
			for _, u := range r.Updates {
				if u.State == state.InstanceRunning {
					lost[u.ID] = false
				}
			}
		case *state.PlanApplyRequest:
			at = r.Time
		case *state.AppDeleteRequest:
			at = r.Time
		case *state.HostDeleteRequest:
			at = r.Time
		case *state.HostStateRequest:
			at = r.Time
			if r.State == state.HostDown && hostsBefore[r.ID] != state.HostDown {
				is, _ := store.Snapshot().HostInstances(nil, r.ID)
				for _, i := range is {
					lost[i.ID] = true
				}
			}
		default:
			continue
		}
		now := map[string]bool{}
		is, _ := store.Snapshot().Instances(nil)
		what := fmt.Sprintf("  %d %T at=%d closed=%d:", idx, req, at.Unix(), closed)
		for _, i := range is {
			key := i.Tenant + "/" + i.App
			var was int64
			if b := metered[i.ID]; b != nil {
				was = b.MeteredSince
			}
			if i.MeteredSince != was {
				note(key, fmt.Sprintf("%s fsm %s metered since %d -> %d (%s, desired %s)", what, i.ID, was, i.MeteredSince, i.State, i.Desired))
			}
			delete(metered, i.ID)
			if i.Desired != state.DesiredRun || i.State != state.InstanceRunning || lost[i.ID] {
				continue
			}
			now[i.ID] = true
			if counting[i.ID] == nil {
				counting[i.ID] = &inst{tenant: i.Tenant, app: i.App, cpu: i.CPU, mem: i.Memory, since: max(at.Unix(), closed)}
				note(key, fmt.Sprintf("%s ref %s counts from %d", what, i.ID, counting[i.ID].since))
			}
		}
		for id, b := range metered {
			if b.MeteredSince != 0 {
				note(b.Tenant+"/"+b.App, fmt.Sprintf("%s fsm %s dropped, metered since %d", what, id, b.MeteredSince))
			}
		}
		for id, i := range counting {
			if !now[id] {
				add(i, max(at.Unix(), closed))
				note(i.tenant+"/"+i.app, fmt.Sprintf("%s ref %s counted [%d, %d)", what, id, i.since, max(at.Unix(), closed)))
				delete(counting, id)
			}
		}
	}
	for _, i := range counting {
		add(i, end)
	}
	if len(rows) == 0 {
		t.Fatal("the reference metered nothing")
	}
	t.Logf("the log: %d entries, %d CloseHour for %d hours, %d counter batches (%d sent again)", lastIdx, closes, len(hours), batches, retried)
	return rows, first, trace
}
