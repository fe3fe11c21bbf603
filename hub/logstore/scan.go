package logstore

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"time"
)

// errScanFull stops a scan's block read once it holds Limit records.
var errScanFull = errors.New("scan full")

// Scan returns, oldest first (in Pos order, which is append order), up to
// limit records of one app with Pos > afterPos (only primary ones when
// primaryOnly), and the highest Pos in the store when it began: what a
// reader that must see every record once and in order (a log drain)
// calls with the Pos of the last record it handled. Records deleted by
// retention meanwhile are skipped.
func (s *Store) Scan(tenant, app string, afterPos uint64, primaryOnly bool, limit int) ([]Record, uint64, error) {
	if err := checkName("tenant", tenant); err != nil {
		return nil, 0, fmt.Errorf("%w: scan: %v", ErrInvalid, err)
	}
	if err := checkName("app", app); err != nil {
		return nil, 0, fmt.Errorf("%w: scan: %v", ErrInvalid, err)
	}
	if limit <= 0 {
		limit = DefaultQueryLimit
	}
	q := Query{Tenant: tenant, App: app, AfterPos: afterPos}
	qs := querier{q: &q, since: math.MinInt64, until: math.MaxInt64}
	snaps, last, err := s.snapshot(&qs) // in segment (hence Pos) order
	if err != nil {
		return nil, 0, err
	}
	var out []Record
	var buf []byte
	visit := func(v *view, _ int64) error {
		if v.Pos <= afterPos || (primaryOnly && v.Flags&flagPrimary == 0) {
			return nil
		}
		out = append(out, toRecord(v, tenant, app))
		if len(out) == limit {
			return errScanFull
		}
		return nil
	}
	for i := range snaps {
		sn := &snaps[i]
		f, err := os.Open(sn.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted by retention since the snapshot
		}
		if err != nil {
			return nil, 0, fmt.Errorf("logstore: scan: %w", err)
		}
		for j := range len(sn.blocks) + 1 {
			b := sn.block(j)
			if b.maxPos <= afterPos {
				continue
			}
			_, err := readRecords(f, b.off, sn.blockEnd(j), int(sn.blockEnd(j)-b.off), &buf, visit)
			if errors.Is(err, errScanFull) {
				f.Close()
				return out, last, nil
			}
			if err != nil {
				s.log.Error("scan: skipping unreadable block", "path", sn.path, "offset", b.off, "err", err)
			}
		}
		f.Close()
	}
	return out, last, nil
}

// StartAt returns the afterPos from which a reader that wants every record
// of one app stamped at or after since begins its Scans: the Pos just
// before the first such record, or the store's highest Pos when there is
// none yet. Records are in append order, not time order, so the Scans
// that follow may also return a few older records appended after that
// first one; none stamped at or after since is missed.
func (s *Store) StartAt(tenant, app string, since time.Time) (uint64, error) {
	if err := checkName("tenant", tenant); err != nil {
		return 0, fmt.Errorf("%w: start: %v", ErrInvalid, err)
	}
	if err := checkName("app", app); err != nil {
		return 0, fmt.Errorf("%w: start: %v", ErrInvalid, err)
	}
	q := Query{Tenant: tenant, App: app}
	qs := querier{q: &q, since: clampNs(since), until: math.MaxInt64}
	snaps, last, err := s.snapshot(&qs) // in segment (hence Pos) order
	if err != nil {
		return 0, err
	}
	var first uint64
	var buf []byte
	visit := func(v *view, _ int64) error {
		if v.Time < qs.since {
			return nil
		}
		first = v.Pos
		return errScanFull
	}
	for i := range snaps {
		sn := &snaps[i]
		f, err := os.Open(sn.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted by retention since the snapshot
		}
		if err != nil {
			return 0, fmt.Errorf("logstore: start: %w", err)
		}
		for j := range len(sn.blocks) + 1 {
			b := sn.block(j)
			if b.maxT < qs.since {
				continue
			}
			_, err := readRecords(f, b.off, sn.blockEnd(j), int(sn.blockEnd(j)-b.off), &buf, visit)
			if errors.Is(err, errScanFull) {
				f.Close()
				return first - 1, nil
			}
			if err != nil {
				f.Close()
				return 0, fmt.Errorf("logstore: start: %s at %d: %w", sn.path, b.off, err)
			}
		}
		f.Close()
	}
	return last, nil
}
