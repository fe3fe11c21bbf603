package hub_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub"
	"github.com/wharf-platform/wharf/hub/state"
)

// simulateAgents plays every host's agent through the FSM until ctx ends:
// it reads the instances written since its last look from the leader's
// store and reports, one InstanceUpdate command per host as an agent
// does, new instances running and ready and instances desired stopped as
// stopped (which removes them).
// Reports refused (no leader for a moment, say) are counted in refused
// and made again in the next round, as an agent does.
func simulateAgents(ctx context.Context, b *testing.B, leader *hub.Hub, refused *atomic.Int64) {
	var since uint64
	const reporters = 16
	for ctx.Err() == nil {
		snap := leader.Store().Snapshot()
		var is []*state.Instance
		var readErr error
		changed := func(tenant, app string) {
			all, err := snap.AppInstances(nil, tenant, app)
			readErr = cmp.Or(readErr, err)
			for _, i := range all {
				if i.ModifyIndex > since {
					is = append(is, i)
				}
			}
		}
		known, err := snap.AppsChangedSince(nil, since, changed)
		if err == nil && !known {
			// Too far behind for the log of changed apps: every app, as
			// the planner does.
			var apps []*state.App
			apps, err = snap.Apps(nil, "")
			for _, a := range apps {
				changed(a.Tenant, a.Name)
			}
		}
		if err = cmp.Or(err, readErr); err != nil {
			b.Error(err)
			return
		}
		start := since
		since = snap.LatestIndex()
		byHost := map[string][]state.InstanceUpdate{}
		for _, i := range is {
			switch {
			case i.Desired == state.DesiredRun && i.State == state.InstancePending:
				byHost[i.Host] = append(byHost[i.Host], state.InstanceUpdate{ID: i.ID, State: state.InstanceRunning, Ready: true, Address: "10.0.0.1:8080"})
			case i.Desired == state.DesiredStop && i.State != state.InstanceStopped:
				byHost[i.Host] = append(byHost[i.Host], state.InstanceUpdate{ID: i.ID, State: state.InstanceStopped})
			}
		}
		if len(byHost) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		now := time.Now().UTC()
		var failed atomic.Bool
		work := make(chan []byte)
		var wg sync.WaitGroup
		for w := 0; w < min(reporters, len(byHost)); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for msg := range work {
					actx, cancel := context.WithTimeout(ctx, 15*time.Second)
					_, err := leader.Cluster().Apply(actx, msg)
					cancel()
					if err != nil && ctx.Err() == nil {
						refused.Add(1)
						failed.Store(true)
					}
				}
			}()
		}
		for host, ups := range byHost {
			msg, err := state.Encode(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: host, Updates: ups, Time: now})
			if err != nil {
				b.Error(err)
				break
			}
			work <- msg
		}
		close(work)
		wg.Wait()
		if failed.Load() {
			// Report this round's instances again: start over from
			// where the round started.
			since = start
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// watchers are blocking queries on one app's instances, each remembering
// how many instances its last answer desired to run and when it got it.
type watchers struct {
	count   []atomic.Int64 // instances desired to run in the last answer
	at      []atomic.Int64 // when that answer came (Unix ns)
	answers atomic.Int64   // answers received, in all
}

// startWatchers starts n watchers of url(i) (which names the node watcher
// i asks); they run until ctx ends.
//
// The watchers stand in for clients on other machines, but share this
// process's CPU with the hub nodes: each holds one keep-alive connection
// of its own and reads answers into a buffer it reuses, with none of
// net/http's Transport (two goroutines per connection and hand-offs
// between them, which cost more per answer than the node's side did).
func startWatchers(ctx context.Context, wg *sync.WaitGroup, n int, url func(int) string, token string) *watchers {
	ws := &watchers{count: make([]atomic.Int64, n), at: make([]atomic.Int64, n)}
	for i := 0; i < n; i++ {
		ws.count[i].Store(-1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := neturl.Parse(url(i))
			if err != nil {
				panic(err) // the benchmark's own URL
			}
			c := &watchConn{url: u, token: token}
			defer c.close()
			stop := context.AfterFunc(ctx, c.close)
			defer stop()
			var index uint64
			for ctx.Err() == nil {
				body, idx, err := c.watch(index)
				if err != nil {
					c.close()
					if ctx.Err() == nil {
						// A watcher that fails keeps trying, as clients
						// do; the fan-out times out if it never recovers.
						time.Sleep(100 * time.Millisecond)
					}
					continue
				}
				ws.answers.Add(1)
				index = idx
				// Counted in the JSON rather than decoded: the watchers
				// share the CPU with the hub nodes, and decoding 1,000
				// answers of 50 instances each would take a good share.
				run := int64(bytes.Count(body, []byte(`"desired":"run"`)))
				if run != ws.count[i].Load() {
					ws.at[i].Store(time.Now().UnixNano())
					ws.count[i].Store(run)
				}
			}
		}()
	}
	return ws
}

// watchConn is one watcher's connection: blocking queries of url, one at
// a time, over one keep-alive connection, made again after an error.
type watchConn struct {
	url   *neturl.URL
	token string

	mu   sync.Mutex
	conn net.Conn // nil until dialled, and after close
	br   *bufio.Reader
	req  []byte
	buf  bytes.Buffer // the last answer's body
}

func (c *watchConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// watch makes one blocking query from index and returns the answer's
// body (valid until the next call) and index.
func (c *watchConn) watch(index uint64) ([]byte, uint64, error) {
	u := c.url
	var err error
	c.mu.Lock()
	conn := c.conn
	if conn == nil {
		if conn, err = net.Dial("tcp", u.Host); err != nil {
			c.mu.Unlock()
			return nil, 0, err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 32<<10)
	}
	c.mu.Unlock()
	c.req = fmt.Appendf(c.req[:0], "GET %s&index=%d&wait=30s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", u.RequestURI(), index, u.Host, c.token)
	if _, err := conn.Write(c.req); err != nil {
		return nil, 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	c.buf.Reset()
	if _, err := c.buf.ReadFrom(resp.Body); err != nil {
		return nil, 0, err
	}
	body := c.buf.Bytes()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %d %s", c.url, resp.StatusCode, body)
	}
	if resp.Close {
		c.close()
	}
	idx, err := strconv.ParseUint(resp.Header.Get("X-Wharf-Index"), 10, 64)
	return body, idx, err
}

type fanout struct {
	ok          bool
	first, last time.Duration // from the write to the first and the last watcher's answer
}

// waitAll waits until every watcher's last answer desires want
// instances, and returns when the first and the last of them got it,
// counted from t0.
func (ws *watchers) waitAll(want int, t0 time.Time, timeout time.Duration) fanout {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		all := true
		for i := range ws.count {
			if ws.count[i].Load() != int64(want) {
				all = false
				break
			}
		}
		if all {
			var f fanout
			lo, hi := int64(1<<62), int64(0)
			for i := range ws.at {
				at := ws.at[i].Load()
				lo, hi = min(lo, at), max(hi, at)
			}
			f.ok, f.first, f.last = true, time.Duration(lo-t0.UnixNano()), time.Duration(hi-t0.UnixNano())
			return f
		}
		time.Sleep(time.Millisecond)
	}
	return fanout{}
}

// latencies collects request times and errors from many goroutines.
type latencies struct {
	mu   sync.Mutex
	d    []time.Duration
	errs int
	last error
}

func (l *latencies) add(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs++
		l.last = err
		return
	}
	l.d = append(l.d, d)
}

type latencySummary struct {
	n, errs       int
	p50, p99, max time.Duration
	lastErr       error
}

func (s latencySummary) String() string {
	e := ""
	if s.lastErr != nil {
		e = fmt.Sprintf(" (last: %v)", s.lastErr)
	}
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s errors=%d%s", s.n, s.p50.Round(10*time.Microsecond), s.p99.Round(10*time.Microsecond), s.max.Round(10*time.Microsecond), s.errs, e)
}

func (l *latencies) summary() latencySummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := latencySummary{n: len(l.d), errs: l.errs, lastErr: l.last}
	if len(l.d) == 0 {
		return s
	}
	d := slices.Clone(l.d)
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	s.p50, s.p99, s.max = at(0.50), at(0.99), d[len(d)-1]
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// heapBytes returns the live heap after a collection.
func heapBytes() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// rssBytes returns this process's resident set size (0 where /proc has
// none).
func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// fileSink is a raft.SnapshotSink over a plain file.
type fileSink struct{ *os.File }

func (s *fileSink) ID() string { return "churn" }

func (s *fileSink) Cancel() error {
	return errors.Join(s.File.Close(), os.Remove(s.File.Name()))
}

func (s *fileSink) Close() error {
	return errors.Join(s.File.Sync(), s.File.Close())
}

// sameFile reports whether two files hold the same bytes, and their sizes.
func sameFile(a, b string) (bool, [2]int, error) {
	x, err := os.ReadFile(a)
	if err != nil {
		return false, [2]int{}, err
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return false, [2]int{}, err
	}
	return bytes.Equal(x, y), [2]int{len(x), len(y)}, nil
}
