package logstore

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"time"
)

// enforceLoop runs Enforce every enforceInterval and whenever kicked (a
// tenant passed its MaxBytes, or a new tenant needs its limits).
func (s *Store) enforceLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(enforceInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
		case <-s.trigger:
		}
		if err := s.Enforce(); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Error("enforcing retention", "err", err)
		}
	}
}

// victim is a segment chosen for deletion.
type victim struct {
	a   *app
	seg *segment
}

// Enforce applies retention now: it refreshes every tenant's limits from
// Config.TenantLimits, then per tenant deletes whole segments whose newest
// record is older than MaxAge, then the oldest remaining segments (by
// newest record) until the tenant's segments total at most MaxBytes. The
// highest seq of every instance, and the last Pos, are written to the
// state file (fsynced) before any segment file is removed, so a deletion
// never lets old seqs in again. Instances with no records left and no
// Append for longer than their tenant's MaxAge are forgotten.
func (s *Store) Enforce() error {
	s.enforceMu.Lock()
	defer s.enforceMu.Unlock()

	// TenantLimits may be slow or take locks of its own: call it without
	// holding s.mu.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	names := map[string]bool{}
	for name := range s.tenants {
		names[name] = true
	}
	for k := range s.insts {
		names[k.tenant] = true
	}
	s.mu.Unlock()
	limits := make(map[string]Retention, len(names))
	for name := range names {
		limits[name] = s.cfg.limitFor(name)
	}
	now := s.cfg.Now().UnixNano()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.round++
	var victims []victim
	for name, t := range s.tenants {
		if l, ok := limits[name]; ok {
			t.setLimit(l, s.cfg.SegmentBytes)
		}
		victims = s.pickVictims(t, now, victims)
	}
	for _, v := range victims {
		s.drop(v)
	}
	pruned := s.prune(now, limits)
	s.closeIdle()
	var st *stateFile
	if len(victims) > 0 || pruned > 0 || len(s.pendingDelete) > 0 {
		st = &stateFile{lastPos: s.pos, insts: make([]instState, 0, len(s.insts))}
		for _, e := range s.insts {
			if e.maxSeq > 0 {
				st.insts = append(st.insts, *e)
			}
		}
	}
	s.mu.Unlock()

	paths := s.pendingDelete
	s.pendingDelete = nil
	for _, v := range victims {
		paths = append(paths, v.seg.path)
	}
	if st != nil {
		if err := writeState(s.cfg.Dir, encodeState(st)); err != nil {
			// The segments are out of the index but stay on disk until
			// the seqs they hold are safe; retried on the next pass.
			s.pendingDelete = paths
			return fmt.Errorf("logstore: enforce: %w", err)
		}
	}
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.pendingDelete = append(s.pendingDelete, p)
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(idxPathOf(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(victims) > 0 {
		s.log.Info("retention deleted segments", "segments", len(victims), "instances_forgotten", pruned)
		s.removeEmptyDirs(victims)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("logstore: enforce: %w", err)
	}
	return nil
}

// cutoff is now - d, saturating.
func cutoff(now int64, d time.Duration) int64 {
	if now < math.MinInt64+int64(d) {
		return math.MinInt64
	}
	return now - int64(d)
}

// pickVictims appends to vs the segments of t that retention deletes.
func (s *Store) pickVictims(t *tenant, now int64, vs []victim) []victim {
	old := cutoff(now, t.limit.MaxAge)
	bytes := t.bytes
	var keep []victim
	for _, a := range t.apps {
		for _, seg := range a.segs {
			switch {
			case seg.records == 0:
				// A new, empty active segment: nothing to free.
			case seg.maxT < old:
				vs = append(vs, victim{a, seg})
				bytes -= seg.size
			default:
				keep = append(keep, victim{a, seg})
			}
		}
	}
	if bytes <= t.limit.MaxBytes {
		return vs
	}
	slices.SortFunc(keep, func(x, y victim) int {
		return cmp.Or(cmp.Compare(x.seg.maxT, y.seg.maxT), cmp.Compare(x.seg.maxPos, y.seg.maxPos))
	})
	for _, v := range keep {
		if bytes <= t.limit.MaxBytes {
			break
		}
		vs = append(vs, v)
		bytes -= v.seg.size
	}
	return vs
}

// drop removes a segment from the index; its file is removed later.
func (s *Store) drop(v victim) {
	a, seg := v.a, v.seg
	a.segs = slices.DeleteFunc(a.segs, func(x *segment) bool { return x == seg })
	a.t.bytes -= seg.size
	if a.active == seg {
		a.active = nil
	}
	if seg.f != nil {
		seg.f.Close()
		seg.f = nil
	}
	if len(a.segs) == 0 {
		delete(a.t.apps, a.name)
		if len(a.t.apps) == 0 {
			delete(s.tenants, a.t.name)
		}
	}
}

// prune forgets instances that hold no records and were not named by an
// Append for longer than their tenant's MaxAge: a resend of such old lines
// would be deleted by age anyway. It returns how many it forgot.
func (s *Store) prune(now int64, limits map[string]Retention) int {
	n := 0
	for k, st := range s.insts {
		maxAge := s.cfg.Default.MaxAge
		if t := s.tenants[k.tenant]; t != nil {
			maxAge = t.limit.MaxAge
		} else if l, ok := limits[k.tenant]; ok {
			maxAge = l.MaxAge
		}
		if st.lastActive >= cutoff(now, maxAge) || s.hasRecords(k) {
			continue
		}
		delete(s.insts, k)
		n++
	}
	return n
}

func (s *Store) hasRecords(k instKey) bool {
	t := s.tenants[k.tenant]
	if t == nil {
		return false
	}
	a := t.apps[k.app]
	if a == nil {
		return false
	}
	for _, seg := range a.segs {
		if _, ok := seg.inst[k.instance]; ok {
			return true
		}
	}
	return false
}

// closeIdle closes the file of active segments not appended to since the
// previous pass, so idle apps hold no file descriptor.
func (s *Store) closeIdle() {
	for _, t := range s.tenants {
		for _, a := range t.apps {
			if seg := a.active; seg != nil && seg.f != nil && a.lastUsed+1 < s.round {
				if err := seg.f.Close(); err != nil {
					s.log.Warn("closing idle segment", "path", seg.path, "err", err)
				}
				seg.f = nil
			}
		}
	}
}

// removeEmptyDirs removes the directories of apps and tenants that lost
// their last segment. Under s.mu, so no Append creates a segment there
// meanwhile; a directory still holding files (a .corrupt) stays.
func (s *Store) removeEmptyDirs(victims []victim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range victims {
		a := v.a
		if t := s.tenants[a.t.name]; t != nil && t.apps[a.name] != nil {
			continue
		}
		os.Remove(a.dir)
		if s.tenants[a.t.name] == nil {
			os.Remove(a.t.dir)
		}
	}
}
