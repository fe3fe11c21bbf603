package logstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/internal/seglog"
)

// Record is one stored log line (or one piece of an over-long line).
type Record struct {
	Time     time.Time // when the agent captured the line
	Tenant   string
	App      string
	Instance string
	Stream   string // "stdout", "stderr", "router", "event"; any name up to 253 bytes is stored
	// Seq is per instance, from the agent, > 0. Append stores a record only
	// when its Seq is above every Seq already stored for its instance.
	Seq     uint64
	Line    string
	Partial bool // a piece of a longer line (more pieces follow)
	// Primary: this node took the line from its agent (not a copy another
	// node replicated here). Log drains forward primary lines only, so
	// each line is drained once.
	Primary bool
	// Pos is this node's append position, set by the store on Append,
	// unique and increasing across the whole store, also across restarts.
	// It is ignored on input.
	Pos uint64
}

// Retention bounds what the store keeps of one tenant. A zero field takes
// the value of Config.Default.
type Retention struct {
	MaxBytes int64         // bytes of all the tenant's segments
	MaxAge   time.Duration // segments whose newest record is older are deleted
}

// Default retention.
const (
	DefaultMaxBytes     = 1 << 30
	DefaultMaxAge       = 7 * 24 * time.Hour
	DefaultSegmentBytes = 16 << 20
	// MinSegmentBytes is the smallest segment size SegmentBytes is
	// clamped to.
	MinSegmentBytes = 4 << 10
	// DefaultQueryLimit is the Limit of a Query with Limit 0.
	DefaultQueryLimit = 10000
	// enforceInterval is the period of the background retention pass.
	enforceInterval = time.Minute
)

// Config configures a Store. Zero values take the documented defaults.
type Config struct {
	Dir string // where the store lives; created if missing
	// Default is the retention of every tenant; zero fields mean
	// DefaultMaxBytes and DefaultMaxAge.
	Default Retention
	// TenantLimits, if set, returns a tenant's retention; zero fields
	// take Default's. It is called by Enforce, outside the store's lock,
	// never from Append or Query; a tenant first seen by Append has
	// Default's limits until the next Enforce, which Append triggers.
	TenantLimits func(tenant string) Retention
	// SegmentBytes is the size at which a segment is sealed and a new one
	// started; zero means DefaultSegmentBytes. It is clamped to
	// Default.MaxBytes/4, and per tenant to its MaxBytes/4, but never below
	// MinSegmentBytes: retention deletes whole segments.
	SegmentBytes int64
	// Logger receives recovery and background retention reports; nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock for retention by age and instance activity; nil
	// means time.Now.
	Now func() time.Time
}

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("logstore: store closed")

func (c *Config) normalize() error {
	if c.Dir == "" {
		return errors.New("config: empty dir")
	}
	if c.Default.MaxBytes < 0 || c.Default.MaxAge < 0 || c.SegmentBytes < 0 {
		return fmt.Errorf("config: negative limit (max bytes %d, max age %v, segment bytes %d)",
			c.Default.MaxBytes, c.Default.MaxAge, c.SegmentBytes)
	}
	if c.Default.MaxBytes == 0 {
		c.Default.MaxBytes = DefaultMaxBytes
	}
	if c.Default.MaxAge == 0 {
		c.Default.MaxAge = DefaultMaxAge
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	c.SegmentBytes = max(min(c.SegmentBytes, c.Default.MaxBytes/4), MinSegmentBytes)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// limitFor returns a tenant's effective retention. It calls TenantLimits,
// so it must not run under Store.mu.
func (c *Config) limitFor(tenant string) Retention {
	r := c.Default
	if c.TenantLimits != nil {
		o := c.TenantLimits(tenant)
		if o.MaxBytes > 0 {
			r.MaxBytes = o.MaxBytes
		}
		if o.MaxAge > 0 {
			r.MaxAge = o.MaxAge
		}
	}
	return r
}

// tenant is one tenant's part of the store, guarded by Store.mu.
type tenant struct {
	name     string
	dir      string
	apps     map[string]*app
	bytes    int64 // all segments of all apps
	limit    Retention
	segBytes int64
}

func (t *tenant) setLimit(r Retention, segmentBytes int64) {
	t.limit = r
	t.segBytes = max(min(segmentBytes, r.MaxBytes/4), MinSegmentBytes)
}

// app is one app's log: its segments in id (and so append) order. The last
// segment may be the active one, appended to.
type app struct {
	t        *tenant
	name     string
	dir      string
	segs     []*segment
	active   *segment // nil: the next append starts a new segment
	lastUsed uint64   // Store.round of the last append, to close idle files
}

// Store is a hub node's on-disk log store. It is safe for concurrent use.
type Store struct {
	cfg  Config
	log  *slog.Logger
	lock *os.File // flock'ed; nil where unsupported

	enforceMu     sync.Mutex // serializes Enforce; guards pendingDelete
	pendingDelete []string   // segment files dropped from memory, still on disk

	mu      sync.Mutex
	closed  bool
	err     error // sticky: a failed write could not be cut off again
	pos     uint64
	nextID  uint64 // of the next segment; ids are unique in the store, never reused
	tenants map[string]*tenant
	insts   map[instKey]*instState
	waitCh  chan struct{} // closed on the next append; nil when nobody waits
	round   uint64        // Enforce passes, for idle file handles
	wbuf    []byte
	ents    []pending
	runs    []run

	trigger chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
}

// Open opens or creates the store in cfg.Dir and recovers it: torn segment
// tails are truncated, foreign files renamed to *.corrupt, the per-segment
// index, per-instance seqs and the last Pos rebuilt. It starts the
// background retention pass, stopped by Close.
func Open(cfg Config) (*Store, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("logstore: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("logstore: create dir: %w", err)
	}
	lock, err := lockDir(filepath.Join(cfg.Dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("logstore: open %s: %w", cfg.Dir, err)
	}
	s := &Store{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "logstore", "dir", cfg.Dir),
		lock:    lock,
		tenants: map[string]*tenant{},
		insts:   map[instKey]*instState{},
		trigger: make(chan struct{}, 1),
		done:    make(chan struct{}),
		nextID:  1,
	}
	if err := s.load(); err != nil {
		s.closeFiles()
		unlockDir(lock)
		return nil, fmt.Errorf("logstore: open %s: %w", cfg.Dir, err)
	}
	// Recovery needs no Enforce pass of its own: the ticker runs one soon.
	select {
	case <-s.trigger:
	default:
	}
	// Limits are fetched outside any lock; nothing else runs yet.
	for _, t := range s.tenants {
		t.setLimit(cfg.limitFor(t.name), cfg.SegmentBytes)
	}
	s.wg.Add(1)
	go s.enforceLoop()
	return s, nil
}

// load rebuilds the in-memory state from the directory.
func (s *Store) load() error {
	dir := s.cfg.Dir
	st, err := readState(dir)
	if errors.Is(err, seglog.ErrCorrupt) {
		s.log.Error("state file corrupt; seqs of deleted segments are forgotten", "err", err)
		st = &stateFile{}
	} else if err != nil {
		return err
	}
	if err := seglog.CleanState(filepath.Join(dir, stateName)); err != nil {
		return err
	}
	s.pos = st.lastPos
	now := s.cfg.Now().UnixNano()
	tents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read dir: %w", err)
	}
	for _, te := range tents {
		if !te.IsDir() || strings.HasPrefix(te.Name(), "_") {
			continue
		}
		tdir := filepath.Join(dir, te.Name())
		aents, err := os.ReadDir(tdir)
		if err != nil {
			return fmt.Errorf("read dir: %w", err)
		}
		for _, ae := range aents {
			if ae.IsDir() {
				if err := s.loadApp(te.Name(), ae.Name(), filepath.Join(tdir, ae.Name()), now); err != nil {
					return err
				}
			}
		}
		os.Remove(tdir) // only succeeds when empty
	}
	for _, e := range st.insts {
		if e.maxSeq == 0 || checkName("tenant", e.key.tenant) != nil || checkName("app", e.key.app) != nil || checkName("instance", e.key.instance) != nil {
			continue
		}
		if cur := s.insts[e.key]; cur != nil {
			cur.maxSeq = max(cur.maxSeq, e.maxSeq)
			cur.lastActive = max(cur.lastActive, e.lastActive)
		} else {
			s.insts[e.key] = &e
		}
	}
	return nil
}

// loadApp recovers the segments of one app directory.
func (s *Store) loadApp(tdirName, adirName, adir string, now int64) error {
	ids, idx, maxID, err := dirEntries(adir)
	if err != nil {
		return err
	}
	s.nextID = max(s.nextID, maxID+1)
	var a *app
	for i, id := range ids {
		seg, tname, aname, err := s.loadSegment(segPath(adir, id), id, idx[id])
		if err != nil {
			return err
		}
		if seg == nil {
			continue
		}
		if dirName(tname) != tdirName || dirName(aname) != adirName || (a != nil && (a.t.name != tname || a.name != aname)) {
			s.quarantine(seg.path, fmt.Errorf("segment of %s/%s in directory %s/%s", tname, aname, tdirName, adirName))
			continue
		}
		if seg.records == 0 && i < len(ids)-1 {
			// Only the newest segment may be empty (created, nothing
			// appended yet).
			os.Remove(seg.path)
			os.Remove(idxPathOf(seg.path))
			continue
		}
		if a == nil {
			a = s.appFor(tname, aname)
		}
		a.segs = append(a.segs, seg)
		a.t.bytes += seg.size
		s.pos = max(s.pos, seg.maxPos)
		for name, seq := range seg.inst {
			st := s.instFor(instKey{tname, aname, name})
			st.maxSeq = max(st.maxSeq, seq)
			st.lastActive = max(st.lastActive, now)
		}
	}
	if a == nil {
		os.Remove(adir) // only succeeds when empty
		return nil
	}
	// Keep appending to the newest segment; it is opened on first use.
	a.active = a.segs[len(a.segs)-1]
	return nil
}

// loadSegment opens one segment file and summarizes it, from its index
// file when that matches, else by scanning it. A nil segment with a nil
// error means the file was set aside.
func (s *Store) loadSegment(path string, id uint64, hasIdx bool) (*segment, string, string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, "", "", fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	tname, aname, hdrLen, err := readHeader(f)
	switch {
	case errors.Is(err, errTornCreate):
		s.log.Warn("removing segment with torn header", "path", path)
		os.Remove(path)
		os.Remove(idxPathOf(path))
		return nil, "", "", nil
	case errors.Is(err, errForeign):
		s.quarantine(path, err)
		return nil, "", "", nil
	case err != nil:
		return nil, "", "", err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, "", "", fmt.Errorf("stat segment: %w", err)
	}
	seg := &segment{id: id, path: path, hdrLen: hdrLen}
	if hasIdx {
		data, err := os.ReadFile(idxPathOf(path))
		if err == nil {
			x, err := decodeIndex(data)
			if err == nil && x.size == fi.Size() && x.hdrLen == hdrLen {
				seg.fromIndex(x)
				return seg, tname, aname, nil
			}
		}
		// Stale (the segment grew after a clean Close) or damaged.
		os.Remove(idxPathOf(path))
	}
	cut, err := scanSegment(f, seg, fi.Size())
	if err != nil {
		return nil, "", "", fmt.Errorf("scan %s: %w", path, err)
	}
	if cut > 0 {
		s.log.Warn("truncated torn or corrupt segment tail", "path", path, "bytes", cut, "kept", seg.size)
	}
	return seg, tname, aname, nil
}

// quarantine renames a file that is not a valid segment out of the way.
func (s *Store) quarantine(path string, why error) {
	s.log.Error("renaming foreign segment file", "path", path, "err", why)
	if err := os.Rename(path, path+corruptSuffix); err != nil {
		s.log.Error("rename foreign segment file", "path", path, "err", err)
	}
	os.Remove(idxPathOf(path))
}

// appFor returns the app, creating it (in memory only). Callers hold s.mu
// (or run before Open returns).
func (s *Store) appFor(tname, aname string) *app {
	t := s.tenants[tname]
	if t == nil {
		tname = strings.Clone(tname)
		t = &tenant{name: tname, dir: filepath.Join(s.cfg.Dir, dirName(tname)), apps: map[string]*app{}}
		t.setLimit(s.cfg.Default, s.cfg.SegmentBytes)
		s.tenants[tname] = t
		s.kick() // fetch the tenant's limits
	}
	a := t.apps[aname]
	if a == nil {
		aname = strings.Clone(aname)
		a = &app{t: t, name: aname, dir: filepath.Join(t.dir, dirName(aname))}
		t.apps[aname] = a
	}
	return a
}

func (s *Store) instFor(k instKey) *instState {
	st := s.insts[k]
	if st == nil {
		k = instKey{strings.Clone(k.tenant), strings.Clone(k.app), strings.Clone(k.instance)}
		st = &instState{key: k}
		s.insts[k] = st
	}
	return st
}

// kick asks the background loop for an Enforce pass without waiting.
func (s *Store) kick() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Close stops the background retention pass, writes the index of every
// active segment (so the next Open need not scan them) and releases the
// directory. Queries still running finish on their own file handles.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()

	s.enforceMu.Lock()
	defer s.enforceMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.err == nil {
		for _, t := range s.tenants {
			for _, a := range t.apps {
				if a.active != nil && a.active.records > 0 {
					if err := a.active.writeIndex(); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	errs = append(errs, s.closeFiles())
	unlockDir(s.lock)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("logstore: close: %w", err)
	}
	return nil
}

func (s *Store) closeFiles() error {
	var errs []error
	for _, t := range s.tenants {
		for _, a := range t.apps {
			if a.active != nil && a.active.f != nil {
				errs = append(errs, a.active.f.Close())
				a.active.f = nil
			}
		}
	}
	return errors.Join(errs...)
}

// pending is a record staged in Append until its bytes are written.
type pending struct {
	off int64 // in the segment
	t   int64
	pos uint64
}

// run is a staged update of one instance's seq, in Append: consecutive
// records of one instance share a run.
type run struct {
	st     *instState
	oldSeq uint64
	seq    uint64
}

// Append stores the records that are not duplicates and returns how many it
// stored. A record is a duplicate when its Seq is not above the highest Seq
// the store holds (or held) for its instance, including records earlier in
// the same call. Records are validated first (names, Seq > 0, a set Time
// within the Unix nanosecond range, Line and Stream sizes): if any is
// invalid, the call fails with an error wrapping ErrInvalid and stores
// nothing. Input Pos is ignored; stored records get increasing Pos, in
// call order within each app.
//
// The records of each (tenant, app) go to that app's active segment with
// one write(2) (more only when the segment fills up) and no fsync: see
// "Durability" in doc.go. On an I/O error Append returns how many records
// it stored before it, and the error; those records are stored.
func (s *Store) Append(recs []Record) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	// Validate and group by app outside the lock. Most calls carry one
	// app, which needs no grouping.
	var prev *Record
	single := true
	for i := range recs {
		r := &recs[i]
		if err := validate(r, prev); err != nil {
			return 0, fmt.Errorf("%w: record %d (instance %.64q seq %d): %v", ErrInvalid, i, r.Instance, r.Seq, err)
		}
		if r.Tenant != recs[0].Tenant || r.App != recs[0].App {
			single = false
		}
		prev = r
	}
	var groups [][]int32
	if !single {
		groups = groupByApp(recs)
	}
	now := s.cfg.Now().UnixNano()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if s.err != nil {
		return 0, s.err
	}
	stored := 0
	var err error
	if single {
		stored, err = s.appendApp(recs, nil, now)
	} else {
		for _, g := range groups {
			var n int
			n, err = s.appendApp(recs, g, now)
			stored += n
			if err != nil {
				break
			}
		}
	}
	if stored > 0 && s.waitCh != nil {
		close(s.waitCh)
		s.waitCh = nil
	}
	if err != nil {
		return stored, fmt.Errorf("logstore: append: %w", err)
	}
	return stored, nil
}

// groupByApp returns the indexes of recs grouped by (tenant, app), groups
// in order of first appearance, indexes ascending within a group.
func groupByApp(recs []Record) [][]int32 {
	type key struct{ tenant, app string }
	byKey := map[key]int{}
	var groups [][]int32
	for i := range recs {
		k := key{recs[i].Tenant, recs[i].App}
		g, ok := byKey[k]
		if !ok {
			g = len(groups)
			byKey[k] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], int32(i))
	}
	return groups
}

// appendApp stores the records of one app: recs[idx...], or all of recs
// when idx is nil. Called with s.mu held.
func (s *Store) appendApp(recs []Record, idx []int32, now int64) (int, error) {
	n := len(recs)
	if idx != nil {
		n = len(idx)
	}
	at := func(i int) *Record {
		if idx != nil {
			return &recs[idx[i]]
		}
		return &recs[i]
	}
	if s.pos > math.MaxUint64-uint64(n) {
		// Only a damaged (or hostile) segment can get here.
		return 0, errors.New("positions exhausted")
	}
	first := at(0)
	a := s.appFor(first.Tenant, first.App)
	t := a.t
	a.lastUsed = s.round

	stored := 0
	buf := s.wbuf[:0]
	s.ents, s.runs = s.ents[:0], s.runs[:0]
	var seg *segment
	var st *instState
	posBefore := s.pos
	for i := range n {
		r := at(i)
		if st == nil || r.Instance != st.key.instance {
			st = s.instFor(instKey{t.name, a.name, r.Instance})
			st.lastActive = now
		}
		if r.Seq <= st.maxSeq {
			continue // duplicate
		}
		size := recordSize(r, s.pos+1)
		if seg == nil || (seg.size+int64(len(buf))+int64(size) > t.segBytes && seg.size+int64(len(buf)) > seg.hdrLen) {
			if seg != nil && len(buf) > 0 {
				if err := s.flush(a, seg, buf, posBefore, now); err != nil {
					s.wbuf = buf
					return stored, err
				}
				stored += len(s.ents)
				buf, s.ents, s.runs = buf[:0], s.ents[:0], s.runs[:0]
				posBefore = s.pos
			}
			var err error
			if seg, err = s.activeSegment(a, int64(size)); err != nil {
				s.wbuf = buf
				return stored, err
			}
		}
		s.pos++
		s.ents = append(s.ents, pending{off: seg.size + int64(len(buf)), t: r.Time.UnixNano(), pos: s.pos})
		if k := len(s.runs); k > 0 && s.runs[k-1].st == st {
			s.runs[k-1].seq = r.Seq
		} else {
			s.runs = append(s.runs, run{st: st, oldSeq: st.maxSeq, seq: r.Seq})
		}
		st.maxSeq = r.Seq
		buf = appendRecord(buf, r, s.pos)
	}
	if len(buf) > 0 {
		if err := s.flush(a, seg, buf, posBefore, now); err != nil {
			s.wbuf = buf
			return stored, err
		}
		stored += len(s.ents)
	}
	if cap(buf) <= 4<<20 {
		s.wbuf = buf[:0] // keep a typical batch's buffer, not a huge one
	} else {
		s.wbuf = nil
	}
	if t.bytes > t.limit.MaxBytes {
		s.kick()
	}
	return stored, nil
}

// activeSegment returns the segment the next record of size bytes goes to,
// sealing a full active segment and creating a new one as needed.
func (s *Store) activeSegment(a *app, size int64) (*segment, error) {
	if seg := a.active; seg != nil {
		if seg.size+size <= a.t.segBytes || seg.size == seg.hdrLen {
			if seg.f == nil {
				f, err := os.OpenFile(seg.path, os.O_WRONLY, 0)
				if err != nil {
					return nil, fmt.Errorf("open segment: %w", err)
				}
				seg.f = f
			}
			return seg, nil
		}
		s.seal(a)
	}
	seg, err := createSegment(a.dir, s.nextID, a.t.name, a.name)
	if errors.Is(err, os.ErrExist) {
		// Only a file put there behind the store's back: skip past it.
		_, _, maxID, derr := dirEntries(a.dir)
		if derr != nil {
			return nil, derr
		}
		s.nextID = max(s.nextID+1, maxID+1)
		seg, err = createSegment(a.dir, s.nextID, a.t.name, a.name)
	}
	if err != nil {
		return nil, err
	}
	s.nextID++
	a.segs = append(a.segs, seg)
	a.active = seg
	a.t.bytes += seg.size
	return seg, nil
}

// seal closes the active segment for good and writes its index.
func (s *Store) seal(a *app) {
	seg := a.active
	a.active = nil
	if err := seg.writeIndex(); err != nil {
		s.log.Warn("sealing segment", "path", seg.path, "err", err)
	}
	if seg.f != nil {
		if err := seg.f.Close(); err != nil {
			s.log.Warn("closing sealed segment", "path", seg.path, "err", err)
		}
		seg.f = nil
	}
}

// flush writes buf, the staged records s.ents and s.runs, at the end of seg
// and commits them; on failure it rolls them back and cuts the file.
func (s *Store) flush(a *app, seg *segment, buf []byte, posBefore uint64, now int64) error {
	if _, err := seg.f.WriteAt(buf, seg.size); err != nil {
		for i := len(s.runs) - 1; i >= 0; i-- {
			s.runs[i].st.maxSeq = s.runs[i].oldSeq
		}
		s.pos = posBefore
		werr := fmt.Errorf("write segment %s: %w", seg.path, err)
		if terr := seg.f.Truncate(seg.size); terr != nil {
			// Complete records might follow seg.size on disk; storing
			// more could let a restart resurrect them after their seqs
			// and positions were handed out again.
			s.err = fmt.Errorf("logstore: refusing appends after failed write and truncate: %w", errors.Join(werr, terr))
			s.log.Error("segment damaged", "path", seg.path, "err", s.err)
			return s.err
		}
		return werr
	}
	for _, e := range s.ents {
		seg.add(e.off, e.t, e.pos)
	}
	for _, r := range s.runs {
		seg.inst[r.st.key.instance] = r.seq
	}
	seg.size += int64(len(buf))
	a.t.bytes += int64(len(buf))
	return nil
}

// Wait blocks until the store's highest Pos exceeds pos, ctx ends (its
// error is returned) or the store is closed (ErrClosed).
func (s *Store) Wait(ctx context.Context, pos uint64) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.pos > pos {
			s.mu.Unlock()
			return nil
		}
		if s.waitCh == nil {
			s.waitCh = make(chan struct{})
		}
		ch := s.waitCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrClosed
		}
	}
}

// Stats is a snapshot of the store's size.
type Stats struct {
	Bytes       int64            // all segments, headers included
	Segments    int              // segment files
	Records     int64            // records in all segments
	Instances   int              // instances with a remembered seq
	LastPos     uint64           // highest Pos handed out
	TenantBytes map[string]int64 // Bytes per tenant
}

// Stats returns the store's current size.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Instances: len(s.insts), LastPos: s.pos, TenantBytes: make(map[string]int64, len(s.tenants))}
	for name, t := range s.tenants {
		st.Bytes += t.bytes
		st.TenantBytes[name] = t.bytes
		for _, a := range t.apps {
			st.Segments += len(a.segs)
			for _, seg := range a.segs {
				st.Records += seg.records
			}
		}
	}
	return st
}
