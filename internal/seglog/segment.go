package seglog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/wharf-platform/wharf/internal/atomicfile"
)

// SegmentSuffix ends the name of every segment file.
const SegmentSuffix = ".seg"

// idDigits is the width of the hex id that starts a segment's file name.
const idDigits = 16

// FileName returns the name of the file of segment id with suffix: 16 hex
// digits and the suffix (SegmentSuffix, or a log's own for side files).
func FileName(id uint64, suffix string) string {
	return fmt.Sprintf("%016x%s", id, suffix)
}

// SegmentPath returns the path of segment id in dir.
func SegmentPath(dir string, id uint64) string {
	return filepath.Join(dir, FileName(id, SegmentSuffix))
}

// ParseName splits a file name made by FileName.
func ParseName(name string) (id uint64, suffix string, ok bool) {
	if len(name) < idDigits {
		return 0, "", false
	}
	id, err := strconv.ParseUint(name[:idDigits], 16, 64)
	if err != nil {
		return 0, "", false
	}
	return id, name[idDigits:], true
}

// ListSegments returns the ids of the segment files in dir, ascending.
func ListSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read dir: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		if id, suffix, ok := ParseName(e.Name()); ok && suffix == SegmentSuffix && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// CreateSegment creates the segment file at path (it must not exist)
// holding only header, open for reading and writing. With syncDir the
// directory is fsynced, so the new file survives power loss.
func CreateSegment(path string, header []byte, syncDir bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.WriteAt(header, 0); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write segment header: %w", err)
	}
	if syncDir {
		if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// TornHeader reports whether head, the start of a segment file that does
// not hold a whole header, is a prefix of magic: a creation cut short, which
// never held records.
func TornHeader(head []byte, magic string) bool {
	return len(head) < len(magic) && string(head) == magic[:len(head)]
}

// ReadFrames reads the frames stored in r between off and end, a chunk at
// a time into *buf (grown as needed; a frame larger than chunk is read
// whole), and calls fn with each payload and the frame's offset. It
// returns the offset just past the last frame fn accepted, and ErrShort
// when the last frame runs past end (a torn tail), ErrCorrupt wrapped for
// bytes that are not a frame, fn's error, or an I/O error.
func ReadFrames(r io.ReaderAt, off, end int64, chunk, maxPayload int, buf *[]byte, fn func(payload []byte, off int64) error) (int64, error) {
	size := int64(chunk)
	for off < end {
		want := min(end-off, size)
		if int64(cap(*buf)) < want {
			*buf = make([]byte, want)
		}
		b := (*buf)[:want]
		n, err := r.ReadAt(b, off)
		if int64(n) < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return off, fmt.Errorf("read at %d: %w", off, err)
		}
		p := 0
		for p < len(b) {
			payload, fl, err := ReadFrame(b[p:], maxPayload)
			if errors.Is(err, ErrShort) {
				break
			}
			if err != nil {
				return off + int64(p), err
			}
			if err := fn(payload, off+int64(p)); err != nil {
				return off + int64(p), err
			}
			p += fl
		}
		if p == 0 {
			if want == end-off {
				return off, ErrShort
			}
			// One frame is larger than the chunk: read it whole (or
			// first its header, when even that is cut).
			fl, err := FrameLen(b, maxPayload)
			if errors.Is(err, ErrShort) {
				fl = FrameHeaderLen
			} else if err != nil {
				return off, err
			}
			size = int64(fl)
			continue
		}
		off += int64(p)
		size = int64(chunk)
	}
	return off, nil
}

// Recover reads the frames of the segment file f from off (just past its
// header) to size, calling fn for each like ReadFrames, and truncates the
// file after the last frame fn accepted when what follows is a torn tail
// or corrupt (a short or bad frame, or fn returning an error that wraps
// ErrCorrupt, e.g. a record out of order). The truncation is fsynced. It
// returns the new size; only I/O errors (and fn's other errors) fail it.
func Recover(f *os.File, off, size int64, chunk, maxPayload int, fn func(payload []byte, off int64) error) (int64, error) {
	var buf []byte
	end, err := ReadFrames(f, off, size, chunk, maxPayload, &buf, fn)
	if err != nil && !errors.Is(err, ErrShort) && !errors.Is(err, ErrCorrupt) {
		return 0, err
	}
	if end == size {
		return end, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, fmt.Errorf("truncate torn tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync after truncate: %w", err)
	}
	return end, nil
}
