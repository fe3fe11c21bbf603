// Package audit keeps the audit log: every mutating API request, who made
// it, what it acted on and how it ended, committed through Raft before the
// request is answered, so that no acknowledged request can go unrecorded.
//
// A write can carry its request's entry in its own Raft entry (Fold), so
// that one commit holds both. Other entries of concurrent requests share
// one Raft entry (group commit): a request waits for the commit that
// carries its entry, never for a timer.
// Refused requests without a valid token (401s, and refusals of the public
// routes) are rate-limited per hub node so that an unauthenticated flood
// cannot fill Raft; those beyond the limit are counted in
// wharf_audit_entries_total{result="dropped"} and logged, not recorded.
// The log keeps the newest Keep entries (10,000 by default; it may grow 1%
// past Keep before the oldest are cut).
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Committer commits a state command through Raft.
type Committer interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
	// EntryFormat is the newest log entry format every voter reads
	// (state.EntryFormat).
	EntryFormat() int
}

// Config configures a Recorder.
type Config struct {
	// Cluster commits the entries. Required.
	Cluster Committer
	// Keep is how many entries the log keeps, the oldest dropped first.
	// Zero means state.DefaultAuditKeep.
	Keep int
	// AnonymousRate is how many refused requests without a valid token
	// are recorded per second on this node, after a burst of
	// AnonymousBurst. Zero means 1 a second; the burst's zero means 20.
	AnonymousRate  float64
	AnonymousBurst int
	// CommitTimeout bounds one commit. Zero means 10 s.
	CommitTimeout time.Duration
	// Now is the limiter's clock. Nil means time.Now.
	Now func() time.Time
	// Logger: nil discards.
	Logger *slog.Logger
	// Registry, when set, receives the recorder's metrics.
	Registry prometheus.Registerer
}

// Recorder commits audit entries.
type Recorder struct {
	cfg     Config
	log     *slog.Logger
	entries *prometheus.CounterVec

	mu       sync.Mutex
	open     *batch // entries waiting for the next commit
	flushing bool   // a goroutine is committing batches
	tokens   float64
	filled   time.Time
}

type batch struct {
	entries []state.AuditEntry
	done    chan struct{}
	err     error
}

// New returns a Recorder.
func New(cfg Config) (*Recorder, error) {
	if cfg.Cluster == nil {
		return nil, errors.New("audit: Cluster is required")
	}
	if cfg.Keep == 0 {
		cfg.Keep = state.DefaultAuditKeep
	}
	if cfg.Keep < 0 {
		return nil, fmt.Errorf("audit: Keep %d is negative", cfg.Keep)
	}
	if cfg.AnonymousRate == 0 {
		cfg.AnonymousRate = 1
	}
	if cfg.AnonymousBurst == 0 {
		cfg.AnonymousBurst = 20
	}
	if cfg.CommitTimeout == 0 {
		cfg.CommitTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger, tokens: float64(cfg.AnonymousBurst)}
	r.entries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wharf_audit_entries_total",
		Help: "Audit entries by result: recorded, dropped (anonymous refusals over the rate limit) or failed (not committed).",
	}, []string{"result"})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(r.entries); err != nil {
			return nil, fmt.Errorf("audit metrics: %w", err)
		}
	}
	return r, nil
}

// Record commits e and returns once it is committed. A refused request
// without a valid token over the rate limit is dropped (nil error).
func (r *Recorder) Record(ctx context.Context, e apitypes.AuditEntry) error {
	anonymous := e.ActorID == "" && e.Status >= 400
	r.mu.Lock()
	if anonymous && !r.take() {
		r.mu.Unlock()
		r.entries.WithLabelValues("dropped").Inc()
		r.log.Debug("audit entry dropped: anonymous refusals over the rate limit", "method", e.Method, "path", e.Path, "status", e.Status)
		return nil
	}
	if r.open == nil {
		r.open = &batch{done: make(chan struct{})}
	}
	b := r.open
	b.entries = append(b.entries, entryIn(e))
	if !r.flushing {
		r.flushing = true
		go r.flush()
	}
	r.mu.Unlock()
	select {
	case <-b.done:
	case <-ctx.Done():
		return fmt.Errorf("audit: %w", ctx.Err())
	}
	if b.err != nil {
		r.entries.WithLabelValues("failed").Inc()
		return b.err
	}
	r.entries.WithLabelValues("recorded").Inc()
	return nil
}

// Fold returns command (a state log entry made for format, the
// cluster's EntryFormat) with e in it, so that the write and its entry
// commit together (state.AuditedRequest), and true. It returns false when
// format predates such entries (a voter would not read it), or e is a
// refusal without a valid token (rate-limited, so recorded on its own).
// After the folded command committed, the caller counts it with Folded.
func (r *Recorder) Fold(format int, command []byte, e apitypes.AuditEntry) ([]byte, bool) {
	if e.ActorID == "" && e.Status >= 400 {
		return nil, false
	}
	if format < state.FormatAudited {
		return nil, false
	}
	b, err := state.EncodeAudited(command, entryIn(e), r.cfg.Keep)
	if err != nil {
		return nil, false
	}
	return b, true
}

// Folded counts an entry that committed with its write.
func (r *Recorder) Folded() { r.entries.WithLabelValues("recorded").Inc() }

// take spends one token of the anonymous limiter; r.mu is held.
func (r *Recorder) take() bool {
	now := r.cfg.Now()
	if !r.filled.IsZero() {
		r.tokens = min(float64(r.cfg.AnonymousBurst), r.tokens+now.Sub(r.filled).Seconds()*r.cfg.AnonymousRate)
	}
	r.filled = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// flush commits the open batches one after the other until none is left.
func (r *Recorder) flush() {
	for {
		r.mu.Lock()
		b := r.open
		r.open = nil
		if b == nil {
			r.flushing = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		b.err = r.commit(b.entries)
		close(b.done)
	}
}

func (r *Recorder) commit(entries []state.AuditEntry) error {
	msg, err := state.EncodeFor(r.cfg.Cluster.EntryFormat(), state.AuditRecordType, &state.AuditRecordRequest{Entries: entries, Keep: r.cfg.Keep})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CommitTimeout)
	defer cancel()
	if _, err := r.cfg.Cluster.Apply(ctx, msg); err != nil {
		r.log.Warn("audit entries not committed", "entries", len(entries), "err", err)
		return fmt.Errorf("commit audit entries: %w", err)
	}
	return nil
}

func entryIn(e apitypes.AuditEntry) state.AuditEntry {
	return state.AuditEntry{Time: e.Time.UTC(), Actor: e.Actor, ActorID: e.ActorID, Role: e.Role, Tenant: e.Tenant,
		Method: e.Method, Path: e.Path, Status: e.Status, Object: e.Object, Node: e.Node}
}

// Out converts a stored entry to the API's shape.
func Out(e *state.AuditEntry) apitypes.AuditEntry {
	return apitypes.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, ActorID: e.ActorID, Role: e.Role, Tenant: e.Tenant,
		Method: e.Method, Path: e.Path, Status: e.Status, Object: e.Object, Node: e.Node}
}
