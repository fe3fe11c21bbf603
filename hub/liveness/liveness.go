// Package liveness decides, on the leader, whether hosts are ready, suspect
// or down from the heartbeats every hub node's gateway receives (DESIGN.md
// section 3, "Host liveness and failover"). State changes go through Raft.
package liveness

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// Config configures a tracker.
type Config struct {
	SuspectAfter time.Duration
	DownAfter    time.Duration
	Store        *state.Store
	// Apply commits a state command (the tracker runs on the leader).
	Apply func(ctx context.Context, msg []byte) (uint64, error)
	// Now: nil means time.Now. Every time the tracker compares is its own.
	Now    func() time.Time
	Logger *slog.Logger
}

// Tracker merges heartbeat reports and moves host states.
type Tracker struct {
	cfg  Config
	mu   sync.Mutex
	seen map[string]time.Time // host id -> last heartbeat, on this node's clock
}

// New returns a tracker.
func New(cfg Config) *Tracker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Tracker{cfg: cfg, seen: map[string]time.Time{}}
}

// Report is what a hub node sends the leader: for each host connected to
// it, how long ago (ms, on the sender's clock) its last heartbeat arrived.
// Ages, not timestamps, so hub nodes' clocks need not agree.
type Report struct {
	AgesMs map[string]int64 `json:"ages_ms"`
}

// Observe merges a report received now.
func (t *Tracker) Observe(r Report) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, age := range r.AgesMs {
		at := now.Add(-time.Duration(age) * time.Millisecond)
		if at.After(t.seen[id]) {
			t.seen[id] = at
		}
	}
}

// Handler serves reports posted by hub nodes (over the internal RPC).
func (t *Tracker) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep Report
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		t.Observe(rep)
		w.Write([]byte("{}"))
	})
}

// Next returns the state a host should be in, silent for since. Only the
// heartbeat-driven states move; draining and drained are the admin's.
func Next(current string, since, suspectAfter, downAfter time.Duration) string {
	switch current {
	case state.HostReady, state.HostSuspect, state.HostDown:
	default:
		return current
	}
	switch {
	case since >= downAfter:
		return state.HostDown
	case since >= suspectAfter:
		if current == state.HostDown {
			return state.HostDown // back only with a fresh heartbeat
		}
		return state.HostSuspect
	}
	return state.HostReady
}

// Run evaluates hosts until ctx ends (the leader's term). A new term starts
// by crediting every host with a heartbeat now, so a leader change never
// marks hosts down by itself.
func (t *Tracker) Run(ctx context.Context) {
	start := t.cfg.Now()
	hosts, _ := t.cfg.Store.Snapshot().Hosts(nil)
	t.mu.Lock()
	for _, h := range hosts {
		if start.After(t.seen[h.ID]) && h.State != state.HostDown {
			t.seen[h.ID] = start
		}
	}
	t.mu.Unlock()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.evaluate(ctx)
	}
}

func (t *Tracker) evaluate(ctx context.Context) {
	hosts, err := t.cfg.Store.Snapshot().Hosts(nil)
	if err != nil {
		return
	}
	now := t.cfg.Now()
	for _, h := range hosts {
		t.mu.Lock()
		seen, ok := t.seen[h.ID]
		t.mu.Unlock()
		if !ok {
			seen = h.EnrolledAt // enrolled, never heard from
		}
		since := now.Sub(seen)
		next := Next(h.State, since, t.cfg.SuspectAfter, t.cfg.DownAfter)
		if next == h.State {
			continue
		}
		reason := "heartbeats resumed"
		if next != state.HostReady {
			reason = "no heartbeat for " + since.Round(100*time.Millisecond).String()
		}
		msg, err := state.Encode(state.HostStateType, &state.HostStateRequest{ID: h.ID, State: next, Disconnected: h.Disconnected, Reason: reason, Time: now.UTC()})
		if err != nil {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = t.cfg.Apply(actx, msg)
		cancel()
		if err != nil {
			t.cfg.Logger.Warn("host state", "host", h.ID, "to", next, "err", err)
			continue
		}
		t.cfg.Logger.Info("host state", "host", h.Name, "from", h.State, "to", next, "reason", reason)
	}
}
