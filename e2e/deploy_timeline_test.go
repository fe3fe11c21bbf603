package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/hub/state"
)

// timeline records when each step of one deploy first happened, from the
// API call on: what the leader's store shows (the app committed, its
// instance placed, each state the agent reported, ready) and what the
// driver did (Start called and returned). BenchmarkDeployLatency reports
// the median of each step, so the gap to a bare `docker run` can be put
// where it is.
type timeline struct {
	mu    sync.Mutex
	start time.Time
	at    map[string]time.Duration
}

// Steps in the order a deploy takes them.
var timelineSteps = []string{"api-answered", "placed", "driver-start", "driver-started", "port-answered", "reported-running", "ready", "client-saw-ready"}

func (t *timeline) reset(start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start, t.at = start, map[string]time.Duration{}
}

// mark records step's first time.
func (t *timeline) mark(step string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.at[step]; !ok && t.at != nil {
		t.at[step] = time.Since(t.start)
	}
}

func (t *timeline) copy() map[string]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]time.Duration, len(t.at))
	for k, v := range t.at {
		out[k] = v
	}
	return out
}

// watch marks the store's steps of the app until ctx ends.
func (t *timeline) watch(ctx context.Context, store *state.Store, tenant, app string) {
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		is, err := store.Snapshot().AppInstances(ws, tenant, app)
		if err != nil {
			return
		}
		for _, i := range is {
			t.mark("placed")
			if i.State == state.InstanceRunning {
				t.mark("reported-running")
			}
			if i.Ready {
				t.mark("ready")
				return
			}
		}
		ws.WatchCtx(ctx)
	}
}

// timedDriver marks when Start is called and returns, and when the
// instance's published port first answers /healthz (polled every 2 ms
// from Start's return, as the bare run's peer polls): the time from there
// to ready is the agent's probing and reporting, the time before it the
// runtime's and the app's.
type timedDriver struct {
	driver.Driver
	tl   *timeline
	port int // the container port polled
}

func (d timedDriver) Start(ctx context.Context, spec driver.Spec) (driver.Status, error) {
	d.tl.mark("driver-start")
	st, err := d.Driver.Start(ctx, spec)
	d.tl.mark("driver-started")
	if hp := st.Ports[d.port]; err == nil && hp != 0 {
		go d.poll(fmt.Sprintf("http://127.0.0.1:%d/healthz", hp))
	}
	return st, err
}

func (d timedDriver) poll(url string) {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				d.tl.mark("port-answered")
				return
			}
		}
	}
}

// reportSteps sets a metric per step: its median time from the API call,
// in ms.
func reportSteps(b *testing.B, order []string, runs []map[string]time.Duration) {
	for _, step := range order {
		var ds []time.Duration
		for _, r := range runs {
			if d, ok := r[step]; ok {
				ds = append(ds, d)
			}
		}
		if len(ds) == 0 {
			continue
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, step+"-ms")
	}
}
