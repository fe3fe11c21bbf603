package hub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/drain"
	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/state"
)

// Log drains: each hub node forwards the lines its own agents ship (not
// the copies replicated to it, so a line is drained once) to the app's
// drains, from a bounded queue per drain. A drain that fails is retried
// with backoff; its failures, and lines dropped because its queue filled
// while it failed, are recorded as events.
const (
	drainQueueLines = 200_000 // per drain, on this node
	drainBatchLines = 1000
	drainBackoffMin = 500 * time.Millisecond
	drainBackoffMax = 30 * time.Second
	// drainEventEvery bounds the events one failing drain records.
	drainEventEvery = time.Minute
)

type drainer struct {
	h *Hub
	// TLS, when set, is the TLS config of syslog+tls and https drains
	// (tests trust their own CA); nil: the system roots.
	opts drain.Options

	mu      sync.Mutex
	workers map[string]*drainWorker   // by drain id
	byApp   map[string][]*drainWorker // by "tenant/app"
}

type drainWorker struct {
	d      state.LogDrain
	target drain.Target
	q      chan []drain.Line
	queued atomic.Int64 // lines in q
	stop   context.CancelFunc
	done   chan struct{}

	dropped   atomic.Uint64 // lines dropped since the last event
	lastEvent atomic.Int64  // Unix ns of the last event recorded
}

func newDrainer(h *Hub) *drainer {
	return &drainer{h: h, workers: map[string]*drainWorker{}, byApp: map[string][]*drainWorker{}}
}

// run keeps a worker per drain in the state until ctx ends.
func (d *drainer) run(ctx context.Context) error {
	defer d.stopAll()
	for {
		ws := memdb.NewWatchSet()
		snap := d.h.store.Snapshot()
		drains, err := snap.LogDrains(ws)
		if err != nil {
			return err
		}
		d.reconcile(ctx, drains)
		if err := ws.WatchCtx(ctx); err != nil {
			return nil
		}
	}
}

func (d *drainer) reconcile(ctx context.Context, drains []*state.LogDrain) {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := map[string]*state.LogDrain{}
	for _, dr := range drains {
		want[dr.ID] = dr
	}
	for id, w := range d.workers {
		if want[id] == nil || want[id].URL != w.d.URL {
			w.stop()
			<-w.done
			delete(d.workers, id)
		}
	}
	for id, dr := range want {
		if d.workers[id] != nil {
			continue
		}
		t, err := drain.Parse(dr.URL)
		if err != nil { // the API validated it; a newer URL syntax, say
			d.h.log.Warn("log drain URL refused", "drain", id, "err", err)
			continue
		}
		wctx, stop := context.WithCancel(ctx)
		w := &drainWorker{d: *dr, target: t, q: make(chan []drain.Line, 4096), stop: stop, done: make(chan struct{})}
		d.workers[id] = w
		go func() { defer close(w.done); d.work(wctx, w) }()
	}
	d.byApp = map[string][]*drainWorker{}
	for _, w := range d.workers {
		k := w.d.Tenant + "/" + w.d.App
		d.byApp[k] = append(d.byApp[k], w)
	}
}

func (d *drainer) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, w := range d.workers {
		w.stop()
		<-w.done
		delete(d.workers, id)
	}
	d.byApp = map[string][]*drainWorker{}
}

// offer queues lines this node accepted from its agents for their apps'
// drains; it never blocks.
func (d *drainer) offer(recs []logstore.Record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.byApp) == 0 {
		return
	}
	groups := map[string][]drain.Line{}
	for _, r := range recs {
		k := r.Tenant + "/" + r.App
		if len(d.byApp[k]) == 0 {
			continue
		}
		groups[k] = append(groups[k], drain.Line{Time: r.Time, Tenant: r.Tenant, App: r.App, Instance: r.Instance, Stream: r.Stream, Seq: r.Seq, Line: r.Line})
	}
	for k, lines := range groups {
		for _, w := range d.byApp[k] {
			if w.queued.Load()+int64(len(lines)) > drainQueueLines {
				w.dropped.Add(uint64(len(lines)))
				continue
			}
			select {
			case w.q <- lines:
				w.queued.Add(int64(len(lines)))
			default:
				w.dropped.Add(uint64(len(lines)))
			}
		}
	}
}

// work sends one drain's queue, in order, retrying each batch until it is
// delivered (or refused for good).
func (d *drainer) work(ctx context.Context, w *drainWorker) {
	s, err := drain.New(w.target, d.opts)
	if err != nil {
		d.event(ctx, w, "drain.failed", fmt.Sprintf("log drain %s (%s) of app %s: %v", w.d.ID, w.target, w.d.App, err), true)
		return
	}
	defer s.Close()
	for {
		var batch []drain.Line
		select {
		case <-ctx.Done():
			return
		case lines := <-w.q:
			batch = lines
		}
	more:
		for len(batch) < drainBatchLines {
			select {
			case lines := <-w.q:
				batch = append(batch, lines...)
			default:
				break more
			}
		}
		w.queued.Add(-int64(len(batch)))
		d.deliver(ctx, w, s, batch)
		if n := w.dropped.Swap(0); n > 0 {
			d.event(ctx, w, "drain.dropped", fmt.Sprintf("log drain %s (%s) of app %s dropped %d lines: its queue on this hub node was full", w.d.ID, w.target, w.d.App, n), true)
		}
	}
}

func (d *drainer) deliver(ctx context.Context, w *drainWorker, s drain.Sender, batch []drain.Line) {
	backoff := drainBackoffMin
	for attempt := 1; ctx.Err() == nil; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Send(actx, batch)
		cancel()
		if err == nil {
			return
		}
		if errors.Is(err, drain.ErrPermanent) {
			d.event(ctx, w, "drain.failed", fmt.Sprintf("log drain %s (%s) of app %s refused %d lines for good: %v", w.d.ID, w.target, w.d.App, len(batch), err), true)
			return
		}
		d.event(ctx, w, "drain.failed", fmt.Sprintf("log drain %s (%s) of app %s: attempt %d: %v (retrying)", w.d.ID, w.target, w.d.App, attempt, err), false)
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(sleep):
		}
		backoff = min(backoff*2, drainBackoffMax)
	}
}

// event records a drain's trouble, at most once per drainEventEvery unless
// always.
func (d *drainer) event(ctx context.Context, w *drainWorker, typ, msg string, always bool) {
	now := time.Now().UnixNano()
	last := w.lastEvent.Load()
	if !always && now-last < int64(drainEventEvery) {
		return
	}
	w.lastEvent.Store(now)
	d.h.log.Warn("log drain", "drain", w.d.ID, "msg", msg)
	go d.h.recordEvent(context.WithoutCancel(ctx), state.Event{Type: typ, Subject: w.d.Tenant + "/" + w.d.App, Message: msg})
}
