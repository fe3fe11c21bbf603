package logstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wharf-platform/wharf/internal/seglog"
)

const (
	segSuffix     = seglog.SegmentSuffix
	idxSuffix     = ".idx"
	corruptSuffix = ".corrupt"
	stateName     = "_state"
	lockName      = "_lock"

	// blockBytes is the granularity of the in-memory time/pos index: a
	// query reads whole blocks, so a tail or follow reads about this much
	// per segment it touches instead of the whole segment.
	blockBytes = 64 << 10
	// readChunk is how much recovery reads at a time.
	readChunk = 256 << 10
)

// block summarizes a run of consecutive records of a segment, starting at
// off and ending where the next block starts (or at the segment's size).
type block struct {
	off        int64
	minT, maxT int64 // Unix ns
	maxPos     uint64
}

// segment is one file of an app's log. Its fields are guarded by Store.mu.
// Records are only ever appended; blocks[:len-1] never change once a later
// block exists, so a query may keep reading them after unlocking.
type segment struct {
	id      uint64
	path    string
	hdrLen  int64
	size    int64 // bytes of the header and complete records
	records int64
	minT    int64 // over all records; meaningless while records == 0
	maxT    int64
	maxPos  uint64
	blocks  []block
	inst    map[string]uint64 // instance -> highest seq held
	f       *os.File          // open for writing while active; nil otherwise
}

func segPath(dir string, id uint64) string { return seglog.SegmentPath(dir, id) }

func idxPathOf(segPath string) string {
	return strings.TrimSuffix(segPath, segSuffix) + idxSuffix
}

// add accounts for one record stored at off.
func (s *segment) add(off, t int64, pos uint64) {
	if s.records == 0 {
		s.minT, s.maxT = t, t
	} else {
		s.minT, s.maxT = min(s.minT, t), max(s.maxT, t)
	}
	s.maxPos = max(s.maxPos, pos)
	s.records++
	if n := len(s.blocks); n == 0 || off-s.blocks[n-1].off >= blockBytes {
		s.blocks = append(s.blocks, block{off: off, minT: t, maxT: t, maxPos: pos})
		return
	}
	b := &s.blocks[len(s.blocks)-1]
	b.minT, b.maxT, b.maxPos = min(b.minT, t), max(b.maxT, t), max(b.maxPos, pos)
}

func (s *segment) index() *segIndex {
	return &segIndex{size: s.size, hdrLen: s.hdrLen, records: s.records, blocks: s.blocks, inst: s.inst}
}

func (s *segment) fromIndex(x *segIndex) {
	s.size, s.hdrLen, s.records, s.blocks, s.inst = x.size, x.hdrLen, x.records, x.blocks, x.inst
	s.minT, s.maxT, s.maxPos = 0, 0, 0
	for i, b := range x.blocks {
		if i == 0 {
			s.minT, s.maxT = b.minT, b.maxT
		}
		s.minT, s.maxT, s.maxPos = min(s.minT, b.minT), max(s.maxT, b.maxT), max(s.maxPos, b.maxPos)
	}
}

// writeIndex writes the segment's summary next to it so the next Open need
// not scan it. Not fsynced: a lost or torn index only costs a scan, and an
// index whose size differs from the file's is ignored.
func (s *segment) writeIndex() error {
	if err := os.WriteFile(idxPathOf(s.path), encodeIndex(s.index()), 0o640); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

// createSegment creates a segment file holding only its header. The
// directory is not fsynced: see "Durability" in doc.go.
func createSegment(dir string, id uint64, tenant, app string) (*segment, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create app dir: %w", err)
	}
	path := segPath(dir, id)
	hdr := encodeHeader(tenant, app)
	f, err := seglog.CreateSegment(path, hdr, false)
	if err != nil {
		return nil, err
	}
	return &segment{id: id, path: path, hdrLen: int64(len(hdr)), size: int64(len(hdr)), inst: map[string]uint64{}, f: f}, nil
}

// dirEntries lists the segment ids of an app directory, ascending, the ids
// that have an index file, and the highest id seen in any file name.
func dirEntries(dir string) (segs []uint64, idx map[uint64]bool, maxID uint64, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read dir: %w", err)
	}
	idx = map[uint64]bool{}
	for _, e := range ents {
		id, suffix, ok := seglog.ParseName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		switch suffix {
		case segSuffix:
			segs = append(segs, id)
		case idxSuffix:
			idx[id] = true
		case segSuffix + corruptSuffix:
		default:
			continue
		}
		maxID = max(maxID, id)
	}
	slices.Sort(segs)
	return segs, idx, maxID, nil
}

// errForeign marks a file that is not a segment of this store (bad magic or
// header, or names that do not belong in its directory).
var errForeign = errors.New("not a segment")

// readHeader reads and checks the header of the segment file f.
func readHeader(f *os.File) (tenant, app string, hdrLen int64, err error) {
	buf := make([]byte, maxHeaderLen)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return "", "", 0, fmt.Errorf("read segment header: %w", err)
	}
	tenant, app, hl, err := decodeHeader(buf[:n])
	if err != nil {
		if seglog.TornHeader(buf[:n], segMagic) {
			return "", "", 0, errTornCreate
		}
		return "", "", 0, fmt.Errorf("%w: %v", errForeign, err)
	}
	return tenant, app, int64(hl), nil
}

// errTornCreate marks a segment whose creation was cut short before its
// magic was complete; it never held records and is deleted.
var errTornCreate = errors.New("torn segment header")

// readRecords reads the records stored in f between off and end (see
// seglog.ReadFrames) and calls fn with each, decoded. It returns the offset
// just past the last record fn accepted; the error wraps seglog.ErrShort
// for a torn tail, seglog.ErrCorrupt for bytes that do not decode, or is
// fn's error or an I/O error.
func readRecords(f io.ReaderAt, off, end int64, chunk int, buf *[]byte, fn func(v *view, off int64) error) (int64, error) {
	var v view
	return seglog.ReadFrames(f, off, end, chunk, maxPayload, buf, func(payload []byte, off int64) error {
		if err := lineFormat.DecodePayload(payload, &v); err != nil {
			return err
		}
		return fn(&v, off)
	})
}

// errOrder marks a record that decodes but breaks the order this package
// writes in (pos increasing per segment, seq increasing per instance): it
// is treated as corruption.
var errOrder = fmt.Errorf("%w: record out of order", seglog.ErrCorrupt)

// scanSegment rebuilds the summary of a segment file from its records and
// truncates anything after the last good one (a torn tail, or corruption).
// It returns the number of bytes cut.
func scanSegment(f *os.File, seg *segment, fileSize int64) (int64, error) {
	seg.size, seg.records, seg.blocks, seg.maxPos = seg.hdrLen, 0, nil, 0
	// Pointers, so updating an instance's seq is a lookup that does not
	// allocate; only a new instance does.
	seqs := map[string]*uint64{}
	var v view
	end, err := seglog.Recover(f, seg.hdrLen, fileSize, readChunk, maxPayload, func(payload []byte, off int64) error {
		if err := lineFormat.DecodePayload(payload, &v); err != nil {
			return err
		}
		if v.Pos <= seg.maxPos {
			return errOrder
		}
		if last := seqs[string(v.Instance)]; last != nil {
			if v.Seq <= *last {
				return errOrder
			}
			*last = v.Seq
		} else {
			seq := v.Seq
			seqs[string(v.Instance)] = &seq
		}
		seg.add(off, v.Time, v.Pos)
		return nil
	})
	seg.inst = make(map[string]uint64, len(seqs))
	for name, seq := range seqs {
		seg.inst[name] = *seq
	}
	if err != nil {
		return 0, err
	}
	seg.size = end
	return fileSize - end, nil
}

// readState loads the state file; a missing file is an empty state.
func readState(dir string) (*stateFile, error) {
	data, err := seglog.ReadState(filepath.Join(dir, stateName))
	if err != nil || data == nil {
		return &stateFile{}, err
	}
	return decodeState(data)
}

// writeState replaces the state file atomically and durably. It runs
// before segments are deleted, so a deletion can never be durable without
// the seqs it held.
func writeState(dir string, data []byte) error {
	return seglog.WriteState(filepath.Join(dir, stateName), data)
}
