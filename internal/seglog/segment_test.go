package seglog

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const testMagic = "TESTSEG1"

// writeSegment writes a segment of n frames ("record 1" ...) and returns
// its path, its bytes and the offset of each frame.
func writeSegment(t *testing.T, n int) (string, []byte, []int) {
	t.Helper()
	data := []byte(testMagic)
	var offs []int
	for i := 1; i <= n; i++ {
		offs = append(offs, len(data))
		var start int
		data, start = BeginFrame(data)
		data = EndFrame(append(data, fmt.Sprintf("record %d", i)...), start)
	}
	path := SegmentPath(t.TempDir(), 1)
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return path, data, offs
}

// recoverFile runs Recover on path with fn (nil: accept every frame) and
// returns the payloads accepted and the new size.
func recoverFile(t *testing.T, path string, chunk int, fn func(p []byte) error) ([]string, int64, error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	end, err := Recover(f, int64(len(testMagic)), fi.Size(), chunk, 64, func(p []byte, _ int64) error {
		if fn != nil {
			if err := fn(p); err != nil {
				return err
			}
		}
		got = append(got, string(p))
		return nil
	})
	return got, end, err
}

func TestRecoverTornTail(t *testing.T) {
	plausible := []byte{20, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 'x', 'y'}
	for _, tt := range []struct {
		name   string
		mutate func(data []byte, last int) []byte
		keep   int // records kept of 5
	}{
		{"intact", func(d []byte, _ int) []byte { return d }, 5},
		{"cut mid payload", func(d []byte, _ int) []byte { return d[:len(d)-3] }, 4},
		{"cut mid header", func(d []byte, last int) []byte { return d[:last+5] }, 4},
		{"cut after header", func(d []byte, last int) []byte { return d[:last+FrameHeaderLen] }, 4},
		{"flipped payload byte", func(d []byte, last int) []byte { d[last+FrameHeaderLen+2] ^= 0x40; return d }, 4},
		{"zero fill", func(d []byte, _ int) []byte { return append(d, make([]byte, 64)...) }, 5},
		{"garbage", func(d []byte, _ int) []byte { return append(d, "\xff\xff\xff\x7fgarbage and more"...) }, 5},
		{"plausible header", func(d []byte, _ int) []byte { return append(d, plausible...) }, 5},
	} {
		for _, chunk := range []int{7, 1 << 16} {
			t.Run(fmt.Sprintf("%s/chunk %d", tt.name, chunk), func(t *testing.T) {
				path, data, offs := writeSegment(t, 5)
				data = tt.mutate(bytes.Clone(data), offs[4])
				if err := os.WriteFile(path, data, 0o640); err != nil {
					t.Fatal(err)
				}
				got, end, err := recoverFile(t, path, chunk, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != tt.keep {
					t.Fatalf("kept %d records, want %d: %q", len(got), tt.keep, got)
				}
				wantEnd := int64(len(data))
				if tt.keep < 5 || len(data) > len(testMagic)+5*(FrameHeaderLen+8) {
					wantEnd = int64(offs[0])
					for range tt.keep {
						wantEnd += FrameHeaderLen + 8
					}
				}
				fi, err := os.Stat(path)
				if err != nil || end != wantEnd || fi.Size() != wantEnd {
					t.Fatalf("end %d, file %v (%v), want %d", end, fi.Size(), err, wantEnd)
				}
				// Recovery is stable: a second pass keeps the same.
				again, _, err := recoverFile(t, path, chunk, nil)
				if err != nil || !slices.Equal(again, got) {
					t.Fatalf("second recovery: %q %v", again, err)
				}
			})
		}
	}
}

func TestRecoverCutsWhereTheDecoderRefuses(t *testing.T) {
	path, _, offs := writeSegment(t, 5)
	refuse := fmt.Errorf("%w: out of order", ErrCorrupt)
	got, end, err := recoverFile(t, path, 1<<10, func(p []byte) error {
		if string(p) == "record 3" {
			return refuse
		}
		return nil
	})
	if err != nil || len(got) != 2 || end != int64(offs[2]) {
		t.Fatalf("got %q, end %d, %v; want 2 records, end %d", got, end, err, offs[2])
	}
	// Any other error of the decoder fails recovery and cuts nothing.
	path, data, _ := writeSegment(t, 5)
	boom := errors.New("boom")
	if _, _, err := recoverFile(t, path, 1<<10, func([]byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, data) {
		t.Fatal("a failed recovery changed the file")
	}
}

func TestReadFramesLargerThanChunk(t *testing.T) {
	path, _, _ := writeSegment(t, 3)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf []byte
	var got []string
	fi, _ := f.Stat()
	end, err := ReadFrames(f, int64(len(testMagic)), fi.Size(), 3, 64, &buf, func(p []byte, _ int64) error {
		got = append(got, string(p))
		return nil
	})
	if err != nil || end != fi.Size() || !slices.Equal(got, []string{"record 1", "record 2", "record 3"}) {
		t.Fatalf("got %q, end %d of %d, %v", got, end, fi.Size(), err)
	}
}

func TestSegmentFiles(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []uint64{0x20, 3, 1 << 60} {
		f, err := CreateSegment(SegmentPath(dir, id), []byte(testMagic), true)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if _, err := CreateSegment(SegmentPath(dir, 3), []byte(testMagic), false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("creating an existing segment: %v", err)
	}
	for _, n := range []string{"0000000000000003.idx", "short.seg", "zzzzzzzzzzzzzzzz.seg", "00000000000000040.seg"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := ListSegments(dir)
	if err != nil || !slices.Equal(ids, []uint64{3, 0x20, 1 << 60}) {
		t.Fatalf("ids %x, %v", ids, err)
	}
	if data, err := os.ReadFile(SegmentPath(dir, 3)); err != nil || string(data) != testMagic {
		t.Fatalf("segment holds %q, %v", data, err)
	}
	if id, suffix, ok := ParseName(FileName(0xabc, ".idx")); !ok || id != 0xabc || suffix != ".idx" {
		t.Fatalf("ParseName: %x %q %v", id, suffix, ok)
	}
	for head, torn := range map[string]bool{"": true, "TEST": true, "TESTSEG": true, "TESTSEG1": false, "XEST": false} {
		if TornHeader([]byte(head), testMagic) != torn {
			t.Errorf("TornHeader(%q) != %v", head, torn)
		}
	}
}

func TestStateFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if data, err := ReadState(path); data != nil || err != nil {
		t.Fatalf("missing state: %q %v", data, err)
	}
	sealed := Seal([]byte("MAGIC002body"))
	if err := WriteState(path, sealed); err != nil {
		t.Fatal(err)
	}
	data, err := ReadState(path)
	if err != nil {
		t.Fatal(err)
	}
	magic, body, err := Unseal(data, "MAGIC002", "MAGIC001")
	if err != nil || magic != "MAGIC002" || string(body) != "body" {
		t.Fatalf("unseal: %q %q %v", magic, body, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != StatePerm {
		t.Fatalf("state mode: %v", err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		if _, _, err := Unseal(bad, "MAGIC002", "MAGIC001"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	if _, _, err := Unseal(sealed, "OTHER001"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("foreign magic: %v", err)
	}
	// A crash mid-write leaves a temporary file; CleanState removes it.
	leftover := filepath.Join(dir, "state.tmp12345")
	if err := os.WriteFile(leftover, []byte("half"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := CleanState(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("leftover temp still there: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("state removed: %v", err)
	}
}
