package logstore

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Query selects records of one app.
type Query struct {
	Tenant   string    // required
	App      string    // required
	Since    time.Time // records with Time >= Since; zero = all retained
	Until    time.Time // records with Time < Until; zero = no upper bound
	Instance string    // optional exact filter
	Grep     string    // optional substring filter on Line (case-sensitive)
	AfterPos uint64    // only records with Pos > AfterPos (for follow)
	// Limit is the most records returned; 0 means DefaultQueryLimit. When
	// more match, the newest Limit are returned (tail semantics).
	Limit int
}

// segSnap is what a query needs of a segment, copied under Store.mu. The
// blocks but the last are shared with the segment: they no longer change.
type segSnap struct {
	path   string
	size   int64
	blocks []block // all blocks but the last
	last   block
}

func (s *segSnap) block(i int) block {
	if i < len(s.blocks) {
		return s.blocks[i]
	}
	return s.last
}

func (s *segSnap) blockEnd(i int) int64 {
	if i+1 < len(s.blocks) {
		return s.blocks[i+1].off
	}
	if i+1 == len(s.blocks) {
		return s.last.off
	}
	return s.size
}

// cand is a block a query may have to read.
type cand struct {
	seg      int
	off, end int64
	maxT     int64
	maxPos   uint64
}

// Query returns the records matching q in time order (ties broken by
// Instance, then Seq), and the highest Pos in the store when the query
// started: every record it could return has a Pos at most that, so a
// follower polls (or Waits) with AfterPos set to it. The store's lock is
// held only to copy the app's segment index; files are read without it.
func (s *Store) Query(q Query) ([]Record, uint64, error) {
	if err := checkName("tenant", q.Tenant); err != nil {
		return nil, 0, fmt.Errorf("%w: query: %v", ErrInvalid, err)
	}
	if err := checkName("app", q.App); err != nil {
		return nil, 0, fmt.Errorf("%w: query: %v", ErrInvalid, err)
	}
	if q.Limit < 0 {
		return nil, 0, fmt.Errorf("%w: query: negative limit %d", ErrInvalid, q.Limit)
	}
	qs := querier{
		q:        &q,
		since:    math.MinInt64,
		until:    math.MaxInt64,
		limit:    cmp.Or(q.Limit, DefaultQueryLimit),
		instance: q.Instance,
		grep:     []byte(q.Grep),
	}
	if !q.Since.IsZero() {
		qs.since = clampNs(q.Since)
	}
	if !q.Until.IsZero() {
		qs.until = clampNs(q.Until)
	}

	snaps, last, err := s.snapshot(&qs)
	if err != nil {
		return nil, 0, err
	}
	var cands []cand
	for i := range snaps {
		sn := &snaps[i]
		for j := range len(sn.blocks) + 1 {
			b := sn.block(j)
			if b.maxPos <= q.AfterPos || b.maxT < qs.since || b.minT >= qs.until {
				continue
			}
			cands = append(cands, cand{seg: i, off: b.off, end: sn.blockEnd(j), maxT: b.maxT, maxPos: b.maxPos})
		}
	}
	// Newest first, so a tail stops early: once Limit records are held,
	// a block whose newest record is older than all of them cannot
	// contribute.
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(b.maxT, a.maxT), cmp.Compare(b.maxPos, a.maxPos))
	})
	files := make([]*os.File, len(snaps))
	gone := make([]bool, len(snaps))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	var buf []byte
	for _, c := range cands {
		if len(qs.heap) == qs.limit && c.maxT < qs.slab[qs.heap[0]].t {
			break
		}
		if gone[c.seg] {
			continue
		}
		f := files[c.seg]
		if f == nil {
			f, err = os.Open(snaps[c.seg].path)
			if errors.Is(err, fs.ErrNotExist) {
				gone[c.seg] = true // deleted by retention since the snapshot
				continue
			}
			if err != nil {
				return nil, 0, fmt.Errorf("logstore: query: %w", err)
			}
			files[c.seg] = f
		}
		if _, err := readRecords(f, c.off, c.end, int(c.end-c.off), &buf, qs.visit); err != nil {
			// Only damage on disk gets here: the range held complete
			// records when the snapshot was taken and is never rewritten.
			s.log.Error("query: skipping unreadable block", "path", snaps[c.seg].path, "offset", c.off, "err", err)
		}
	}
	return qs.result(), last, nil
}

// snapshot copies the index of the query's app and returns the store's
// highest Pos.
func (s *Store) snapshot(qs *querier) ([]segSnap, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, ErrClosed
	}
	last := s.pos
	t := s.tenants[qs.q.Tenant]
	if t == nil {
		return nil, last, nil
	}
	a := t.apps[qs.q.App]
	if a == nil {
		return nil, last, nil
	}
	snaps := make([]segSnap, 0, len(a.segs))
	for _, seg := range a.segs {
		if seg.records == 0 || seg.maxPos <= qs.q.AfterPos || seg.maxT < qs.since || seg.minT >= qs.until {
			continue
		}
		if qs.instance != "" {
			if _, ok := seg.inst[qs.instance]; !ok {
				continue
			}
		}
		n := len(seg.blocks)
		snaps = append(snaps, segSnap{path: seg.path, size: seg.size, blocks: seg.blocks[: n-1 : n-1], last: seg.blocks[n-1]})
	}
	return snaps, last, nil
}

func clampNs(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// hit is a selected record with its time in Unix ns for fast comparison.
type hit struct {
	t int64
	r Record
}

// querier filters records into a bounded min-heap (oldest on top) that
// keeps the newest limit matches.
type querier struct {
	q            *Query
	since, until int64 // [since, until) in Unix ns
	limit        int
	instance     string
	grep         []byte
	slab         []hit
	heap         []int32 // indexes into slab
	names        map[string]string
}

// newer reports whether the record (t, inst, seq) sorts after h.
func newer(t int64, inst []byte, seq uint64, h *hit) bool {
	if t != h.t {
		return t > h.t
	}
	if c := strings.Compare(string(inst), h.r.Instance); c != 0 {
		return c > 0
	}
	return seq > h.r.Seq
}

func hitCmp(a, b *hit) int {
	return cmp.Or(cmp.Compare(a.t, b.t), strings.Compare(a.r.Instance, b.r.Instance), cmp.Compare(a.r.Seq, b.r.Seq))
}

func (qs *querier) visit(v *view, _ int64) error {
	if v.Pos <= qs.q.AfterPos || v.Time < qs.since || v.Time >= qs.until {
		return nil
	}
	if qs.instance != "" && string(v.Instance) != qs.instance {
		return nil
	}
	full := len(qs.heap) == qs.limit
	if full && !newer(v.Time, v.Instance, v.Seq, &qs.slab[qs.heap[0]]) {
		return nil
	}
	if len(qs.grep) > 0 && !bytes.Contains(v.Text, qs.grep) {
		return nil
	}
	h := hit{t: v.Time, r: Record{
		Time:     time.Unix(0, v.Time),
		Tenant:   qs.q.Tenant,
		App:      qs.q.App,
		Instance: qs.intern(v.Instance),
		Stream:   qs.intern(v.Stream),
		Seq:      v.Seq,
		Line:     string(v.Text),
		Partial:  v.Flags&flagPartial != 0,
		Primary:  v.Flags&flagPrimary != 0,
		Pos:      v.Pos,
	}}
	if full {
		qs.slab[qs.heap[0]] = h
		qs.down(0)
		return nil
	}
	qs.slab = append(qs.slab, h)
	qs.heap = append(qs.heap, int32(len(qs.slab)-1))
	qs.up(len(qs.heap) - 1)
	return nil
}

// intern returns b as a string, shared among the records of one query:
// instance and stream names repeat.
func (qs *querier) intern(b []byte) string {
	if s, ok := qs.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if qs.names == nil {
		qs.names = map[string]string{}
	}
	if len(qs.names) < 4096 {
		qs.names[s] = s
	}
	return s
}

func (qs *querier) less(i, j int) bool {
	return hitCmp(&qs.slab[qs.heap[i]], &qs.slab[qs.heap[j]]) < 0
}

func (qs *querier) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !qs.less(i, p) {
			return
		}
		qs.heap[i], qs.heap[p] = qs.heap[p], qs.heap[i]
		i = p
	}
}

func (qs *querier) down(i int) {
	n := len(qs.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && qs.less(r, l) {
			m = r
		}
		if !qs.less(m, i) {
			return
		}
		qs.heap[i], qs.heap[m] = qs.heap[m], qs.heap[i]
		i = m
	}
}

func (qs *querier) result() []Record {
	slices.SortFunc(qs.heap, func(i, j int32) int { return hitCmp(&qs.slab[i], &qs.slab[j]) })
	out := make([]Record, len(qs.heap))
	for k, i := range qs.heap {
		out[k] = qs.slab[i].r
	}
	return out
}
