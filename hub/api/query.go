package api

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
)

// queryFn reads from a snapshot, registering what it read in ws, and
// returns the answer and the index of the tables it read.
type queryFn func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error)

// query serves a read: linearizable unless ?stale, blocking when ?index=N
// (until the answer's index exceeds N or ?wait passes), with X-Wharf-Index.
func (s *Server) query(w http.ResponseWriter, r *http.Request, fn queryFn) error {
	q := r.URL.Query()
	var minIndex uint64
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return apitypes.FieldError("index", "index must be a non-negative integer")
		}
		minIndex = n
	}
	wait := defaultWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return apitypes.FieldError("wait", "wait must be a duration such as 30s")
		}
		wait = min(d, maxWait)
	}
	ctx := r.Context()
	if !q.Has("stale") {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.reads.wait(cctx)
		cancel()
		if err != nil {
			return err
		}
	}
	if minIndex > 0 {
		// Spread the wake-ups of many watchers, as Consul does.
		wait += time.Duration(rand.Int64N(int64(wait/16) + 1))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	var out any
	idx, err := s.cfg.Store.Blocking(ctx, minIndex, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
		var idx uint64
		var err error
		out, idx, err = fn(ws, snap)
		return idx, err
	})
	if err != nil {
		return err
	}
	if r.Context().Err() != nil {
		return nil // the client went away
	}
	w.Header().Set("X-Wharf-Index", strconv.FormatUint(max(idx, 1), 10))
	if b, ok := out.(encodedJSON); ok {
		w.Header().Set("Content-Type", "application/json")
		// Its length, known: net/http then sends it as is, where a body
		// past its 2 KB buffer without one goes out in chunks.
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(b)
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// apply commits a command and waits until the local store has applied it,
// so the caller can read back what it wrote.
func (s *Server) apply(ctx context.Context, t state.MessageType, req any) (uint64, error) {
	msg, err := state.EncodeFor(s.cfg.Cluster.EntryFormat(), t, req)
	if err != nil {
		return 0, err
	}
	return s.commit(ctx, msg, nil)
}

// applyAudited is apply for a handler that answers status when the
// command succeeds: the request's audit entry (as it will be when the
// answer is status, its object named object and, for an admin, its tenant
// tenant) is committed with the command when the cluster can read such an
// entry, so that the answer waits for one commit instead of two.
func (s *Server) applyAudited(w http.ResponseWriter, r *http.Request, status int, tenant, object string, t state.MessageType, req any) (uint64, error) {
	format := s.cfg.Cluster.EntryFormat()
	msg, err := state.EncodeFor(format, t, req)
	if err != nil {
		return 0, err
	}
	aw, _ := w.(*auditWriter)
	if aw == nil || aw.done || aw.folded != nil {
		return s.commit(r.Context(), msg, nil)
	}
	e := s.auditEntry(aw, r, status, tenant, object)
	folded, ok := s.cfg.Audit.Fold(format, msg, e)
	if !ok {
		return s.commit(r.Context(), msg, nil)
	}
	return s.commit(r.Context(), folded, func() { aw.folded = &e })
}

// commit commits msg and waits until the local store has applied it;
// committed, when set, runs once the FSM accepted the command.
func (s *Server) commit(ctx context.Context, msg []byte, committed func()) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	idx, err := s.cfg.Cluster.Apply(ctx, msg)
	if err != nil {
		return idx, err
	}
	if committed != nil {
		committed()
	}
	return idx, s.cfg.Store.WaitIndex(ctx, idx)
}
