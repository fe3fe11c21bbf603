package logship

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segSuffix = ".seg"
	stateName = "state"
	stateTmp  = "state.tmp"
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

func segPath(dir string, id uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x%s", id, segSuffix))
}

// listSegments returns the segment ids found in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read dir: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || len(name) != 16 || !e.Type().IsRegular() {
			continue
		}
		id, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// scanResult is what recovery learns from one segment file.
type scanResult struct {
	seg     *segment
	maxSeq  map[string]uint64
	last    map[string]map[string]int64 // instance → stream → newest time (ns)
	torn    int64                       // bytes cut from the tail
	records int
}

// errBadHeader marks a file that does not start with the segment magic.
var errBadHeader = errors.New("bad segment header")

// scanSegment reads a segment file, truncates any torn or corrupt tail
// (everything from the first record that does not decode), and returns the
// per-instance ranges. A file whose header itself is torn (shorter than the
// magic and a prefix of it) yields errBadHeader and size < segHeaderLen.
func scanSegment(path string, id uint64) (scanResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return scanResult{}, fmt.Errorf("read segment: %w", err)
	}
	res := scanResult{
		seg:    &segment{id: id, path: path, ranges: map[string]seqRange{}},
		maxSeq: map[string]uint64{},
		last:   map[string]map[string]int64{},
	}
	if int64(len(data)) < segHeaderLen || string(data[:segHeaderLen]) != segMagic {
		res.seg.size = int64(len(data))
		return res, errBadHeader
	}
	pos := int(segHeaderLen)
	for pos < len(data) {
		l, n, err := decodeRecord(data[pos:])
		if err != nil {
			break
		}
		if l.Seq <= res.maxSeq[l.Instance] {
			// A valid record that breaks seq order cannot come from this
			// package; treat it like corruption rather than misread it.
			break
		}
		r := res.seg.ranges[l.Instance]
		if r.first == 0 {
			r.first = l.Seq
		}
		r.last = l.Seq
		res.seg.ranges[l.Instance] = r
		res.maxSeq[l.Instance] = l.Seq
		if res.last[l.Instance] == nil {
			res.last[l.Instance] = map[string]int64{}
		}
		if ns := l.Time.UnixNano(); ns > res.last[l.Instance][l.Stream] {
			res.last[l.Instance][l.Stream] = ns
		}
		res.records++
		pos += n
	}
	res.seg.size = int64(pos)
	if pos < len(data) {
		res.torn = int64(len(data) - pos)
		if err := truncateSync(path, int64(pos)); err != nil {
			return res, err
		}
	}
	return res, nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open for truncate: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate torn tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync after truncate: %w", err)
	}
	return nil
}

// createSegment creates a new segment file holding only the header and
// makes its directory entry durable.
func createSegment(dir string, id uint64) (*segment, error) {
	path := segPath(dir, id)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.WriteAt([]byte(segMagic), 0); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write segment header: %w", err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &segment{id: id, path: path, size: segHeaderLen, ranges: map[string]seqRange{}, f: f}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}

// readState loads the state file; a missing file is an empty state.
func readState(dir string) (map[string]persisted, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]persisted{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	return decodeState(data)
}

// writeState replaces the state file atomically: temp file, fsync, rename,
// fsync of the directory.
func writeState(dir string, st map[string]persisted) error {
	tmp := filepath.Join(dir, stateTmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create state: %w", err)
	}
	if _, err := f.Write(encodeState(st)); err != nil {
		f.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateName)); err != nil {
		return fmt.Errorf("rename state: %w", err)
	}
	return syncDir(dir)
}
