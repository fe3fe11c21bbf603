package logship

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/internal/seglog"
)

// Line is one captured log line (or one piece of an over-long line).
type Line struct {
	Instance string
	// Stream is "stdout", "stderr" or "router" (access lines); the buffer
	// stores any name up to 1 KiB.
	Stream string
	// Seq is per instance, starts at 1, strictly increases in append order
	// and is assigned by the buffer. It is never reused, also across
	// restarts (see doc.go for the one power-loss exception).
	Seq  uint64
	Time time.Time // when captured (Config.Now)
	// Text is the line without its newline (and without a "\r" before it),
	// at most MaxLineBytes bytes. Bytes are stored as captured; they need
	// not be valid UTF-8.
	Text string
	// Partial is true when Text is a piece of a longer line and more pieces
	// follow; the last piece has Partial false. See doc.go.
	Partial bool
}

// DropInfo describes lines removed from disk before the hub acknowledged
// them, because the buffer was full.
type DropInfo struct {
	Count       uint64 // number of lines dropped
	First, Last uint64 // lowest and highest seq dropped
}

// Stats is a snapshot of the buffer's size.
type Stats struct {
	Bytes     int64  // bytes of all segments on disk
	Segments  int    // number of segment files
	Unacked   uint64 // lines on disk not yet acknowledged
	Instances int    // instances known (with an assigned seq)
	Dropped   uint64 // lines dropped and not yet taken by TakeDropped
}

// ErrClosed is returned by operations on a closed Buffer or Writer.
var ErrClosed = errors.New("logship: buffer closed")

type instState struct {
	persisted
	next uint64 // next seq to assign
}

// seen notes a line of stream stamped ns.
func (is *instState) seen(stream string, ns int64) {
	if is.last == nil {
		is.last = map[string]int64{}
	}
	if cur, ok := is.last[stream]; !ok || ns > cur {
		is.last[stream] = ns
	}
}

// cursor is the read position: a segment id and a byte offset in it. A
// cursor whose segment was deleted continues at the next segment's start.
type cursor struct {
	id  uint64
	off int64
}

// Buffer is the durable, bounded, per-agent log buffer. It is safe for
// concurrent use; Read/ReadWait/Rewind share one cursor, so use one reader.
type Buffer struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	closed bool
	err    error // sticky: the active segment may hold garbage past its size
	segs   []*segment
	total  int64
	inst   map[string]*instState
	cur    cursor
	rf     *os.File // read handle of segment rfID
	rfID   uint64
	wbuf   []byte
	ends   []int
	rbuf   []byte
	names  map[string]string // instance and stream names Read interned
	cache  lineCache         // the newest appended lines, for Read
	wlines []Line            // the lines being appended
	dirty  bool              // written since the last fsync
	// stateDirty: acks not yet in the state file (persisted by the sync
	// loop, or at once when a segment can be deleted).
	stateDirty bool
	notify     chan struct{}
	done       chan struct{}
	wg         sync.WaitGroup
}

// Open opens or creates the buffer in cfg.Dir and recovers its state: torn
// segment tails are truncated, per-instance next seqs and acked positions
// are restored, fully acked segments are deleted. The read cursor starts at
// the first unacked line.
func Open(cfg Config) (*Buffer, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("logship: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("logship: create dir: %w", err)
	}
	b := &Buffer{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "logship", "dir", cfg.Dir),
		inst:   map[string]*instState{},
		names:  map[string]string{},
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	if err := b.recover(); err != nil {
		b.closeFiles()
		return nil, fmt.Errorf("logship: open %s: %w", cfg.Dir, err)
	}
	if !cfg.Sync.EveryAppend {
		b.wg.Add(1)
		go b.syncLoop()
	}
	return b, nil
}

func (b *Buffer) recover() error {
	dir := b.cfg.Dir
	st, err := readState(dir)
	if errors.Is(err, seglog.ErrCorrupt) {
		b.log.Error("state file corrupt; acked lines still on disk will be resent", "err", err)
		st = map[string]persisted{}
	} else if err != nil {
		return err
	}
	if err := seglog.CleanState(filepath.Join(dir, stateName)); err != nil {
		return err
	}
	for name, p := range st {
		b.inst[name] = &instState{persisted: p, next: 1}
	}
	ids, err := seglog.ListSegments(dir)
	if err != nil {
		return err
	}
	for i, id := range ids {
		path := segPath(dir, id)
		res, err := scanSegment(path, id)
		switch {
		case errors.Is(err, errTornHeader):
			b.log.Warn("removing segment with torn header", "segment", path)
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove torn segment: %w", err)
			}
			continue
		case errors.Is(err, errBadHeader):
			b.log.Error("segment has a foreign header; moved aside", "segment", path)
			if err := os.Rename(path, path+".corrupt"); err != nil {
				return fmt.Errorf("move corrupt segment aside: %w", err)
			}
			continue
		case err != nil:
			return err
		}
		if res.torn > 0 {
			b.log.Warn("truncated torn or corrupt segment tail", "segment", path, "bytes", res.torn)
		}
		for name, s := range res.maxSeq {
			is := b.instance(name)
			is.next = max(is.next, s+1)
		}
		for name, streams := range res.last {
			is := b.instance(name)
			for st, ns := range streams {
				is.seen(st, ns)
			}
		}
		if res.records == 0 && i != len(ids)-1 {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove empty segment: %w", err)
			}
			continue
		}
		b.segs = append(b.segs, res.seg)
		b.total += res.seg.size
	}
	for _, is := range b.inst {
		is.next = max(is.next, is.acked+1, is.dropHigh+1)
	}
	if n := len(b.segs); n > 0 && b.segs[n-1].size < b.cfg.SegmentBytes {
		last := b.segs[n-1]
		if last.f, err = os.OpenFile(last.path, os.O_RDWR, 0); err != nil {
			return fmt.Errorf("open active segment: %w", err)
		}
	} else {
		id := uint64(1)
		if n > 0 {
			id = b.segs[n-1].id + 1
		}
		seg, err := createSegment(dir, id)
		if err != nil {
			return err
		}
		b.segs = append(b.segs, seg)
		b.total += seg.size
	}
	b.deleteAcked()
	b.cur = cursor{id: b.segs[0].id, off: segHeaderLen}
	return nil
}

func (b *Buffer) closeFiles() {
	for _, s := range b.segs {
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
	}
	if b.rf != nil {
		b.rf.Close()
		b.rf = nil
	}
}

func (b *Buffer) instance(name string) *instState {
	is := b.inst[name]
	if is == nil {
		is = &instState{next: 1}
		b.inst[name] = is
	}
	return is
}

func (b *Buffer) active() *segment { return b.segs[len(b.segs)-1] }

func checkNames(instance, stream string) error {
	if instance == "" {
		return errors.New("logship: empty instance")
	}
	if len(instance) > maxNameBytes || len(stream) > maxNameBytes {
		return fmt.Errorf("logship: instance or stream name longer than %d bytes", maxNameBytes)
	}
	return nil
}

// Append stores text as one line of instance/stream, splitting it into
// MaxLineBytes pieces when longer (see doc.go). Text is not split on
// newlines. When Append returns nil the line survives a kill -9 of the
// process; with SyncEveryAppend it also survives power loss.
func (b *Buffer) Append(instance, stream, text string) error {
	return b.appendPieces(instance, stream, splitLine(nil, text, b.cfg.MaxLineBytes, false))
}

// piece is one record-to-be. A zero at means now; an empty stream means
// appendPieces' stream.
type piece struct {
	text    string
	partial bool
	stream  string
	at      time.Time
}

// Entry is one line for AppendBatch.
type Entry struct {
	Time   time.Time // when the runtime captured it; zero = now
	Stream string
	Text   string
}

// AppendBatch stores the lines of one instance, each split like Append's,
// with one write per segment touched. Lines keep their own times and
// streams: Last reports, per stream, the newest time stored, so a
// restarted capturer resumes after it.
func (b *Buffer) AppendBatch(instance string, entries []Entry) error {
	var pieces []piece
	for _, e := range entries {
		if err := checkNames(instance, e.Stream); err != nil {
			return err
		}
		n := len(pieces)
		pieces = splitLine(pieces, e.Text, b.cfg.MaxLineBytes, false)
		for i := n; i < len(pieces); i++ {
			pieces[i].stream, pieces[i].at = e.Stream, e.Time
		}
	}
	return b.appendPieces(instance, "", pieces)
}

// Last returns, per stream, the time of the newest line of instance the
// buffer stored (also across restarts: it is kept in the state file, which
// is written before any segment is deleted). A capturer that resumes after
// these times neither loses nor repeats lines.
func (b *Buffer) Last(instance string) map[string]time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]time.Time{}
	if is := b.inst[instance]; is != nil {
		for st, ns := range is.last {
			out[st] = time.Unix(0, ns)
		}
	}
	return out
}

func (b *Buffer) appendPieces(instance, stream string, pieces []piece) error {
	if err := checkNames(instance, stream); err != nil {
		return err
	}
	if len(pieces) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.err != nil {
		return b.err
	}
	is := b.instance(instance)
	now := b.cfg.Now()
	base := is.next
	b.wbuf, b.ends, b.wlines = b.wbuf[:0], b.ends[:0], b.wlines[:0]
	for i, p := range pieces {
		l := Line{Instance: instance, Stream: stream, Seq: base + uint64(i), Time: now, Text: p.text, Partial: p.partial}
		if p.stream != "" {
			l.Stream = p.stream
		}
		if !p.at.IsZero() {
			l.Time = p.at
		}
		l.Time = time.Unix(0, l.Time.UnixNano()) // as Read decodes it
		is.seen(l.Stream, l.Time.UnixNano())
		b.wbuf = appendRecord(b.wbuf, &l)
		b.wlines = append(b.wlines, l)
		b.ends = append(b.ends, len(b.wbuf))
	}
	start := func(i int) int {
		if i == 0 {
			return 0
		}
		return b.ends[i-1]
	}
	for i := 0; i < len(pieces); {
		act := b.active()
		j := i
		for j < len(pieces) {
			fits := act.size+int64(b.ends[j]-start(i)) <= b.cfg.SegmentBytes
			if !fits && (j > i || act.size > segHeaderLen) {
				break
			}
			j++
		}
		if j == i {
			if err := b.rotate(); err != nil {
				return err
			}
			continue
		}
		data := b.wbuf[start(i):b.ends[j-1]]
		rotated, err := b.makeRoom(int64(len(data)))
		if err != nil {
			return err
		}
		if rotated {
			continue
		}
		at := act.size
		if err := b.write(act, is, instance, data, base+uint64(i), base+uint64(j-1)); err != nil {
			return err
		}
		for k := i; k < j; k++ {
			off := at + int64(start(k)-start(i))
			b.cache.add(cursor{id: act.id, off: off}, int64(b.ends[k]-start(k)), b.wlines[k])
		}
		clear(b.wlines[i:j]) // the cache holds them; drop these references
		i = j
	}
	if b.cfg.Sync.EveryAppend {
		if err := b.active().f.Sync(); err != nil {
			return fmt.Errorf("logship: sync: %w", err)
		}
	} else {
		b.dirty = true
	}
	select {
	case b.notify <- struct{}{}:
	default:
	}
	return nil
}

// write appends complete records holding seqs first..last of one instance
// to the active segment.
func (b *Buffer) write(act *segment, is *instState, instance string, data []byte, first, last uint64) error {
	if _, err := act.f.WriteAt(data, act.size); err != nil {
		// Cut any partial record so recovery and later writes never see it.
		if terr := act.f.Truncate(act.size); terr != nil {
			b.err = fmt.Errorf("logship: segment %s unusable after failed write: %w", act.path, errors.Join(err, terr))
		}
		return fmt.Errorf("logship: append: %w", err)
	}
	act.size += int64(len(data))
	b.total += int64(len(data))
	r := act.ranges[instance]
	if r.first == 0 {
		r.first = first
	}
	r.last = last
	act.ranges[instance] = r
	is.next = last + 1
	return nil
}

// makeRoom drops the oldest segments until n more bytes fit in MaxBytes.
// It reports whether it rotated the active segment.
func (b *Buffer) makeRoom(n int64) (rotated bool, err error) {
	for b.total+n > b.cfg.MaxBytes {
		switch {
		case len(b.segs) > 1:
			b.dropOldest()
		case b.segs[0].size > segHeaderLen:
			if err := b.rotate(); err != nil {
				return rotated, err
			}
			rotated = true
		default:
			return rotated, nil // a lone record larger than MaxBytes
		}
	}
	return rotated, nil
}

// rotate makes a new active segment; the old one is fsynced and closed.
func (b *Buffer) rotate() error {
	old := b.active()
	seg, err := createSegment(b.cfg.Dir, old.id+1)
	if err != nil {
		return fmt.Errorf("logship: rotate: %w", err)
	}
	b.segs = append(b.segs, seg)
	b.total += seg.size
	if err := old.f.Sync(); err != nil {
		b.log.Error("fsync of finished segment failed", "segment", old.path, "err", err)
	}
	if err := old.f.Close(); err != nil {
		b.log.Error("close of finished segment failed", "segment", old.path, "err", err)
	}
	old.f = nil
	if b.fullyAcked(old) {
		b.removeSeg(len(b.segs) - 2)
	}
	return nil
}

// dropOldest deletes the oldest segment although not all of it is acked,
// recording the unacked lines it held as dropped.
func (b *Buffer) dropOldest() {
	s := b.segs[0]
	for name, r := range s.ranges {
		is := b.inst[name]
		from := max(r.first, is.acked+1)
		if from > r.last {
			continue
		}
		n := r.last - from + 1
		if is.drop.Count == 0 {
			is.drop.First = from
		}
		is.drop.Count += n
		is.drop.Last = max(is.drop.Last, r.last)
		is.dropHigh = max(is.dropHigh, r.last)
		b.log.Warn("buffer full: dropped unacked log lines", "instance", name, "count", n, "first", from, "last", r.last)
	}
	// Persist dropHigh before the lines leave the disk so a restart never
	// reuses their seqs; on failure dropping still goes on (the disk is
	// likely full) and the error is logged.
	if err := b.saveState(); err != nil {
		b.log.Error("persisting drop state failed", "err", err)
	}
	b.removeSeg(0)
}

func (b *Buffer) removeSeg(i int) {
	s := b.segs[i]
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if b.rf != nil && b.rfID == s.id {
		b.rf.Close()
		b.rf = nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		b.log.Error("removing segment failed", "segment", s.path, "err", err)
	}
	b.total -= s.size
	b.segs = slices.Delete(b.segs, i, i+1)
}

func (b *Buffer) fullyAcked(s *segment) bool {
	for name, r := range s.ranges {
		if r.last > b.inst[name].acked {
			return false
		}
	}
	return true
}

// deleteAcked removes every fully acked segment except the active one.
func (b *Buffer) deleteAcked() {
	for i := 0; i < len(b.segs)-1; {
		if b.fullyAcked(b.segs[i]) {
			b.removeSeg(i)
			continue
		}
		i++
	}
}

func (b *Buffer) saveState() error {
	b.stateDirty = false
	st := make(map[string]persisted, len(b.inst))
	for name, is := range b.inst {
		st[name] = is.persisted
	}
	// Maps are shared with the live state: writeState encodes them before
	// this returns, under b.mu.
	return writeState(b.cfg.Dir, st)
}

// Ack records that the hub acknowledged, per instance, every seq <= n. The
// state is persisted (atomically, fsynced) before fully acked segments are
// deleted. Acks beyond the last assigned seq are clamped; unknown
// instances and lower acks are ignored.
func (b *Buffer) Ack(acks map[string]uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	changed := false
	for name, n := range acks {
		is := b.inst[name]
		if is == nil {
			b.log.Warn("ack for unknown instance ignored", "instance", name, "seq", n)
			continue
		}
		if n >= is.next {
			b.log.Warn("ack beyond last assigned seq clamped", "instance", name, "seq", n, "last", is.next-1)
			n = is.next - 1
		}
		if n > is.acked {
			is.acked = n
			changed = true
		}
	}
	if !changed {
		return nil
	}
	// The state file must say a segment's lines were acked before the
	// segment goes (else their seqs could be handed out again). Other acks
	// are persisted by the sync loop: a crash before that resends lines
	// the hub has, which it drops by (instance, seq).
	if !b.cfg.Sync.EveryAppend && !b.deletable() {
		b.stateDirty = true
		return nil
	}
	if err := b.saveState(); err != nil {
		return fmt.Errorf("logship: persist acks: %w", err)
	}
	b.deleteAcked()
	return nil
}

// deletable reports whether a segment other than the active one is fully
// acked.
func (b *Buffer) deletable() bool {
	for _, s := range b.segs[:len(b.segs)-1] {
		if b.fullyAcked(s) {
			return true
		}
	}
	return false
}

// Dropped returns, per instance, the lines dropped because the buffer was
// full since the last TakeDropped (also across restarts).
func (b *Buffer) Dropped() map[string]DropInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped(false)
}

// TakeDropped is Dropped that also resets the reported drops.
func (b *Buffer) TakeDropped() map[string]DropInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.dropped(true)
	if len(m) > 0 && !b.closed {
		if err := b.saveState(); err != nil {
			b.log.Error("persisting taken drops failed; they may be reported again after a restart", "err", err)
		}
	}
	return m
}

// AckDropped forgets drops once reported: for each instance, the drops of
// a report got from Dropped. Drops counted after that report stay (their
// first seq is moved past the report's last).
func (b *Buffer) AckDropped(reported map[string]DropInfo) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	changed := false
	for name, r := range reported {
		is := b.inst[name]
		if is == nil || is.drop.Count == 0 || r.Count == 0 {
			continue
		}
		changed = true
		if is.drop.Count <= r.Count {
			is.drop = DropInfo{}
			continue
		}
		is.drop.Count -= r.Count
		is.drop.First = max(is.drop.First, r.Last+1)
	}
	if !changed {
		return nil
	}
	return b.saveState()
}

func (b *Buffer) dropped(take bool) map[string]DropInfo {
	m := map[string]DropInfo{}
	for name, is := range b.inst {
		if is.drop.Count > 0 {
			m[name] = is.drop
			if take {
				is.drop = DropInfo{}
			}
		}
	}
	return m
}

// Stats returns a snapshot of the buffer's size.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Stats{Bytes: b.total, Segments: len(b.segs), Instances: len(b.inst)}
	for _, seg := range b.segs {
		for name, r := range seg.ranges {
			if from := max(r.first, b.inst[name].acked+1); from <= r.last {
				s.Unacked += r.last - from + 1
			}
		}
	}
	for _, is := range b.inst {
		s.Dropped += is.drop.Count
	}
	return s
}

// Sync fsyncs the active segment now.
func (b *Buffer) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if err := b.active().f.Sync(); err != nil {
		return fmt.Errorf("logship: sync: %w", err)
	}
	b.dirty = false
	return nil
}

func (b *Buffer) syncLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.Sync.Interval)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
		}
		b.mu.Lock()
		if b.stateDirty && !b.closed {
			if err := b.saveState(); err != nil {
				b.log.Error("persisting acks failed; acked lines may be resent after a restart", "err", err)
				b.stateDirty = true
			}
		}
		if !b.dirty || b.closed {
			b.mu.Unlock()
			continue
		}
		f := b.active().f
		b.dirty = false
		b.mu.Unlock()
		// Outside the lock so appends go on; a concurrent rotation fsyncs
		// and closes f itself (then Sync reports os.ErrClosed).
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			b.log.Error("background fsync failed", "err", err)
			b.mu.Lock()
			b.dirty = true
			b.mu.Unlock()
		}
	}
}

// Close fsyncs and closes the buffer and persists its state. Writers still
// open get ErrClosed.
func (b *Buffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()
	b.wg.Wait()

	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	if f := b.active().f; f != nil {
		if err := f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("sync: %w", err))
		}
	}
	b.closeFiles()
	if err := b.saveState(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("logship: close: %w", err)
	}
	return nil
}
