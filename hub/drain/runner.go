package drain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/atomicfile"
)

// Log drains: each hub node forwards, per drain, the lines it took from its
// own agents (primary records in its log store; the copies other nodes
// replicated to it are theirs to drain, so a line is drained once), oldest
// first, from a cursor it keeps on disk (<data-dir>/drains/<id>): a
// restarted node goes on where it stopped. A drain that fails is retried
// with backoff, its failures recorded as events. Delivery is at least once:
// a crash between a send and the cursor's write sends that batch again
// (Elasticsearch drops it by _id; Loki by identical entry).
const (
	drainBatchLines = 1000
	drainBackoffMin = 500 * time.Millisecond
	drainBackoffMax = 30 * time.Second
	// drainEventEvery bounds the events one failing drain records.
	drainEventEvery = time.Minute
)

// Snapshotter hands out read-only views of the state store (*state.Store).
type Snapshotter interface {
	// Watch returns a view and adds to ws a channel that fires when the
	// store's database is replaced by a restore.
	Watch(ws memdb.WatchSet) *state.Snapshot
}

// Lines is this node's log store, as the drains read it.
type Lines interface {
	// Scan returns, oldest first, up to limit records of an app after
	// afterPos (primary ones only when primaryOnly), and the highest
	// position in the store when it began.
	Scan(tenant, app string, afterPos uint64, primaryOnly bool, limit int) ([]logstore.Record, uint64, error)
	// Wait blocks until the store holds a record after pos, ctx ends or
	// the store is closed (logstore.ErrClosed).
	Wait(ctx context.Context, pos uint64) error
	// StartAt tells where a drain new on this node starts: before the
	// first of the app's records stamped at or after since.
	StartAt(tenant, app string, since time.Time) (uint64, error)
}

// Events records an event through Raft, best effort.
type Events interface {
	Record(ctx context.Context, ev state.Event)
}

// RunnerConfig is what a node's drain runner needs; every field is
// required but Options and Logger.
type RunnerConfig struct {
	State  Snapshotter
	Lines  Lines
	Events Events
	// Dir holds the cursors, one file per drain.
	Dir string
	// Options are the senders' (TLS config of syslog+tls and https
	// drains; zero: the system roots).
	Options Options
	// Logger: nil discards.
	Logger *slog.Logger
}

// Runner keeps a worker per log drain on this node.
type Runner struct {
	cfg  RunnerConfig
	log  *slog.Logger
	dir  string  // cursors
	opts Options // TLS config of syslog+tls and https drains (nil: the system roots)

	mu      sync.Mutex
	workers map[string]*drainWorker // by drain id
}

type drainWorker struct {
	d         state.LogDrain
	target    Target
	stop      context.CancelFunc
	done      chan struct{}
	lastEvent atomic.Int64 // Unix ns of the last event recorded
}

// NewRunner returns a node's drain runner.
func NewRunner(cfg RunnerConfig) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, log: cfg.Logger, dir: cfg.Dir, opts: cfg.Options, workers: map[string]*drainWorker{}}
}

// Run keeps a worker per drain in the state until ctx ends.
func (d *Runner) Run(ctx context.Context) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("drain cursors: %w", err)
	}
	defer d.stopAll()
	for {
		ws := memdb.NewWatchSet()
		drains, err := d.cfg.State.Watch(ws).LogDrains(ws)
		if err != nil {
			return err
		}
		d.reconcile(ctx, drains)
		if err := ws.WatchCtx(ctx); err != nil {
			return nil
		}
	}
}

func (d *Runner) reconcile(ctx context.Context, drains []*state.LogDrain) {
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
	// Cursors of drains that are gone.
	if entries, err := os.ReadDir(d.dir); err == nil {
		for _, e := range entries {
			if want[e.Name()] == nil {
				os.Remove(filepath.Join(d.dir, e.Name()))
			}
		}
	}
	for id, dr := range want {
		if d.workers[id] != nil {
			continue
		}
		t, err := Parse(dr.URL)
		if err != nil { // the API validated it; a newer URL syntax, say
			d.log.Warn("log drain URL refused", "drain", id, "err", err)
			continue
		}
		wctx, stop := context.WithCancel(ctx)
		w := &drainWorker{d: *dr, target: t, stop: stop, done: make(chan struct{})}
		d.workers[id] = w
		go func() { defer close(w.done); d.work(wctx, w) }()
	}
}

func (d *Runner) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, w := range d.workers {
		w.stop()
		<-w.done
		delete(d.workers, id)
	}
}

// cursor returns the Pos of the last line a drain handled on this node; a
// drain new here starts with the app's lines stamped at or after the
// drain's creation (a committed time, the same on every node), so lines
// that reach this node before its runner sees the drain are not skipped.
func (d *Runner) cursor(dr *state.LogDrain) (uint64, error) {
	id := dr.ID
	b, err := os.ReadFile(filepath.Join(d.dir, id))
	if errors.Is(err, os.ErrNotExist) {
		start, err := d.cfg.Lines.StartAt(dr.Tenant, dr.App, dr.CreatedAt)
		if err != nil {
			return 0, err
		}
		return start, d.saveCursor(id, start)
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func (d *Runner) saveCursor(id string, pos uint64) error {
	path := filepath.Join(d.dir, id)
	return atomicfile.Write(path, []byte(strconv.FormatUint(pos, 10)+"\n"), 0o600)
}

// work forwards one drain's lines, in order, each batch retried until it
// is delivered (or refused for good).
func (d *Runner) work(ctx context.Context, w *drainWorker) {
	fail := func(err error) {
		d.event(ctx, w, fmt.Sprintf("log drain %s (%s) of app %s: %v", w.d.ID, w.target, w.d.App, err), true)
	}
	s, err := New(w.target, d.opts)
	if err != nil {
		fail(err)
		return
	}
	defer s.Close()
	pos, err := d.cursor(&w.d)
	for err != nil { // a broken cursor file or disk: say so, keep trying
		fail(fmt.Errorf("cursor: %w", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(drainBackoffMax):
		}
		pos, err = d.cursor(&w.d)
	}
	for ctx.Err() == nil {
		recs, last, err := d.cfg.Lines.Scan(w.d.Tenant, w.d.App, pos, true, drainBatchLines)
		if err != nil {
			if !errors.Is(err, logstore.ErrClosed) {
				fail(err)
			}
			return
		}
		if len(recs) == 0 {
			if err := d.cfg.Lines.Wait(ctx, last); err != nil {
				return
			}
			continue
		}
		batch := make([]Line, len(recs))
		for i, r := range recs {
			batch[i] = Line{Time: r.Time, Tenant: r.Tenant, App: r.App, Instance: r.Instance, Stream: r.Stream, Seq: r.Seq, Line: r.Line}
		}
		if !d.deliver(ctx, w, s, batch) {
			return
		}
		pos = recs[len(recs)-1].Pos
		if err := d.saveCursor(w.d.ID, pos); err != nil {
			fail(fmt.Errorf("cursor: %w (lines may be sent again after a restart)", err))
		}
	}
}

// deliver sends a batch until it is delivered or refused for good (true),
// or ctx ends (false); each attempt is bounded by the sender's timeout.
func (d *Runner) deliver(ctx context.Context, w *drainWorker, s Sender, batch []Line) bool {
	err := Deliver(ctx, s, batch, drainBackoffMin, drainBackoffMax, func(attempt int, err error) {
		if !errors.Is(err, ErrPermanent) && ctx.Err() == nil {
			d.event(ctx, w, fmt.Sprintf("log drain %s (%s) of app %s: attempt %d: %v (retrying)", w.d.ID, w.target, w.d.App, attempt, err), false)
		}
	})
	if errors.Is(err, ErrPermanent) {
		d.event(ctx, w, fmt.Sprintf("log drain %s (%s) of app %s refused %d lines for good: %v", w.d.ID, w.target, w.d.App, len(batch), err), true)
		return true
	}
	return err == nil
}

// event records a drain.failed event, at most once per drainEventEvery
// unless always.
func (d *Runner) event(ctx context.Context, w *drainWorker, msg string, always bool) {
	now := time.Now().UnixNano()
	if !always && now-w.lastEvent.Load() < int64(drainEventEvery) {
		return
	}
	w.lastEvent.Store(now)
	d.log.Warn("log drain", "drain", w.d.ID, "msg", msg)
	go d.cfg.Events.Record(context.WithoutCancel(ctx), state.Event{Type: "drain.failed", Subject: w.d.Tenant + "/" + w.d.App, Message: msg})
}
