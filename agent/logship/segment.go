package logship

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wharf-platform/wharf/internal/seglog"
)

const (
	segSuffix = seglog.SegmentSuffix
	stateName = "state"
	// readChunkRecover is how much recovery reads of a segment at a time.
	readChunkRecover = 256 << 10
)

// seqRange is the contiguous range of one instance's seqs held by a segment.
// Seqs are assigned in append order and segments hold contiguous runs of
// the append order, so each instance's seqs in a segment form one range.
type seqRange struct{ first, last uint64 }

// segment is one file of the log. Only the active (last) segment has f set.
type segment struct {
	id     uint64
	path   string
	size   int64 // bytes of complete records plus the header
	ranges map[string]seqRange
	f      *os.File
}

func segPath(dir string, id uint64) string { return seglog.SegmentPath(dir, id) }

// scanResult is what recovery learns from one segment file.
type scanResult struct {
	seg     *segment
	maxSeq  map[string]uint64
	last    map[string]map[string]int64 // instance → stream → newest time (ns)
	torn    int64                       // bytes cut from the tail
	records int
}

var (
	// errBadHeader marks a file that does not start with the segment magic.
	errBadHeader = errors.New("bad segment header")
	// errTornHeader marks a file whose creation was cut short: shorter
	// than the magic and a prefix of it.
	errTornHeader = errors.New("torn segment header")
	// errOrder marks a valid record that breaks seq order: it cannot come
	// from this package, so it is treated like corruption.
	errOrder = fmt.Errorf("%w: seq out of order", seglog.ErrCorrupt)
)

// scanSegment reads a segment file, truncates any torn or corrupt tail
// (everything from the first record that does not decode), and returns the
// per-instance ranges.
func scanSegment(path string, id uint64) (scanResult, error) {
	res := scanResult{
		seg:    &segment{id: id, path: path, ranges: map[string]seqRange{}},
		maxSeq: map[string]uint64{},
		last:   map[string]map[string]int64{},
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return res, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("stat segment: %w", err)
	}
	head := make([]byte, segHeaderLen)
	n, _ := f.ReadAt(head, 0)
	if int64(n) < segHeaderLen || string(head) != segMagic {
		res.seg.size = fi.Size()
		if seglog.TornHeader(head[:n], segMagic) {
			return res, errTornHeader
		}
		return res, errBadHeader
	}
	var v seglog.Line
	end, err := seglog.Recover(f, segHeaderLen, fi.Size(), readChunkRecover, maxPayload, func(payload []byte, _ int64) error {
		if err := lineFormat.DecodePayload(payload, &v); err != nil {
			return err
		}
		// string(v.Instance) in a map index does not allocate.
		if v.Seq <= res.maxSeq[string(v.Instance)] {
			return errOrder
		}
		inst := string(v.Instance)
		r := res.seg.ranges[inst]
		if r.first == 0 {
			r.first = v.Seq
		}
		r.last = v.Seq
		res.seg.ranges[inst] = r
		res.maxSeq[inst] = v.Seq
		streams := res.last[inst]
		if streams == nil {
			streams = map[string]int64{}
			res.last[inst] = streams
		}
		if v.Time > streams[string(v.Stream)] {
			streams[string(v.Stream)] = v.Time
		}
		res.records++
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("recover segment: %w", err)
	}
	res.seg.size = end
	res.torn = fi.Size() - end
	return res, nil
}

// createSegment creates a new segment file holding only the header and
// makes its directory entry durable.
func createSegment(dir string, id uint64) (*segment, error) {
	path := segPath(dir, id)
	f, err := seglog.CreateSegment(path, []byte(segMagic), true)
	if err != nil {
		return nil, err
	}
	return &segment{id: id, path: path, size: segHeaderLen, ranges: map[string]seqRange{}, f: f}, nil
}

// readState loads the state file; a missing file is an empty state.
func readState(dir string) (map[string]persisted, error) {
	data, err := seglog.ReadState(filepath.Join(dir, stateName))
	if err != nil || data == nil {
		return map[string]persisted{}, err
	}
	return decodeState(data)
}

// writeState replaces the state file atomically and durably.
func writeState(dir string, st map[string]persisted) error {
	return seglog.WriteState(filepath.Join(dir, stateName), encodeState(st))
}
