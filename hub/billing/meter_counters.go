package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// CounterConfig configures a Counter.
type CounterConfig struct {
	// Node is this hub node's name, unique in the cluster (required): it
	// names the node's batches.
	Node string
	// State is this node's replica (required): where a restarted node
	// finds the last batch it committed.
	State State
	// Commit commits a batch (required); a follower forwards it to the
	// leader.
	Commit Committer
	// Hour is the metered hour, as in MeterConfig. Zero means time.Hour.
	Hour time.Duration
	// Every is how often the node commits a batch. Zero means 3 s (a
	// quarter of Hour when that is shorter).
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger: nil discards.
	Logger *slog.Logger
}

// maxBatchCounts bounds the counts of one batch; more wait for the next.
const maxBatchCounts = 20_000

// Counter sums what this node's agents report of requests, egress and log
// bytes per tenant, app and hour, and commits the sums through Raft in
// batches (UsageCounters), one at a time: a batch is kept, and retried
// with the same sequence number, until it is committed.
type Counter struct {
	cfg CounterConfig
	log *slog.Logger

	mu       sync.Mutex
	pending  map[countKey]*state.UsageCount
	inflight *state.UsageCountersRequest
	seq      uint64 // the last sequence number used; 0 until the first batch
}

type countKey struct {
	tenant, app string
	hour        int64
}

// NewCounter returns a node's counter.
func NewCounter(cfg CounterConfig) (*Counter, error) {
	if cfg.Node == "" || cfg.State == nil || cfg.Commit == nil {
		return nil, errors.New("billing: the counter needs the node's name, the state and a committer")
	}
	if cfg.Hour == 0 {
		cfg.Hour = time.Hour
	}
	if cfg.Hour < time.Second || cfg.Hour%time.Second != 0 {
		return nil, fmt.Errorf("billing: hour %s is not a whole number of seconds", cfg.Hour)
	}
	if cfg.Every <= 0 {
		cfg.Every = max(min(3*time.Second, cfg.Hour/4), 100*time.Millisecond)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Counter{cfg: cfg, log: cfg.Logger, pending: map[countKey]*state.UsageCount{}}, nil
}

// Add counts requests, response bytes and log bytes of one app at a time
// (zero: now).
func (c *Counter) Add(tenant, app string, at time.Time, requests, egress, logBytes int64) {
	if tenant == "" || app == "" || (requests <= 0 && egress <= 0 && logBytes <= 0) {
		return
	}
	if at.IsZero() {
		at = c.cfg.Now()
	}
	hour := int64(c.cfg.Hour / time.Second)
	h := at.Unix() - mod(at.Unix(), hour)
	k := countKey{tenant, app, h}
	c.mu.Lock()
	defer c.mu.Unlock()
	x := c.pending[k]
	if x == nil {
		x = &state.UsageCount{Tenant: tenant, App: app, Start: time.Unix(h, 0).UTC()}
		c.pending[k] = x
	}
	x.Requests += max(requests, 0)
	x.EgressBytes += max(egress, 0)
	x.LogBytes += max(logBytes, 0)
}

// Run commits a batch every Every until ctx ends.
func (c *Counter) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := c.Flush(ctx); err != nil && ctx.Err() == nil {
			failures++
			if failures == 1 || failures%20 == 0 {
				c.log.Warn("commit usage counts (kept, retried)", "err", err, "failures", failures)
			}
		} else {
			failures = 0
		}
	}
}

// Flush commits the batch in flight, or a new one from what was counted
// since, and returns once it is committed (or with why not: the batch is
// then kept for the next Flush).
func (c *Counter) Flush(ctx context.Context) error {
	req, err := c.batch()
	if err != nil || req == nil {
		return err
	}
	msg, err := state.Encode(state.UsageCountersType, req)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = c.cfg.Commit.Apply(cctx, msg)
	if err != nil && state.KindOf(err) != state.KindInvalid {
		return err
	}
	c.mu.Lock()
	c.inflight = nil
	c.mu.Unlock()
	if err != nil { // the FSM refused it: retrying would not help
		c.log.Error("usage counts refused, dropped", "seq", req.Seq, "counts", len(req.Counts), "err", err)
	}
	return nil
}

// batch returns the batch in flight, or makes one of the pending counts
// (nil when there are none).
func (c *Counter) batch() (*state.UsageCountersRequest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight != nil {
		return c.inflight, nil
	}
	if len(c.pending) == 0 {
		return nil, nil
	}
	if c.seq == 0 {
		// Above every batch this node committed before a restart, and above
		// one it may have left in a leader's log.
		last, err := c.cfg.State.Snapshot().UsageBatchSeq(c.cfg.Node)
		if err != nil {
			return nil, err
		}
		c.seq = max(last, uint64(max(c.cfg.Now().UnixNano(), 0)))
	}
	keys := make([]countKey, 0, len(c.pending))
	for k := range c.pending {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.hour != b.hour {
			return a.hour < b.hour
		}
		if a.tenant != b.tenant {
			return a.tenant < b.tenant
		}
		return a.app < b.app
	})
	if len(keys) > maxBatchCounts {
		keys = keys[:maxBatchCounts]
	}
	c.seq++
	req := &state.UsageCountersRequest{Node: c.cfg.Node, Seq: c.seq, Time: c.cfg.Now().UTC()}
	for _, k := range keys {
		req.Counts = append(req.Counts, *c.pending[k])
		delete(c.pending, k)
	}
	c.inflight = req
	return req, nil
}

// Pending returns how many counts wait for a batch, the one in flight
// included (for tests and metrics).
func (c *Counter) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.pending)
	if c.inflight != nil {
		n += len(c.inflight.Counts)
	}
	return n
}
