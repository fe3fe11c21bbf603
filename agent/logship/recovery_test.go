package logship

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// recordOffsets returns the offsets of the records in a segment file.
func recordOffsets(t testing.TB, data []byte) []int {
	t.Helper()
	var offs []int
	for pos := int(segHeaderLen); pos < len(data); {
		_, n, err := decodeRecord(data[pos:])
		if err != nil {
			t.Fatalf("decode at %d: %v", pos, err)
		}
		offs = append(offs, pos)
		pos += n
	}
	return offs
}

func TestRecoverTornTail(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 100)
	for i := range garbage {
		garbage[i] = byte(rnd.Uint32())
	}
	header := binary.LittleEndian.AppendUint32(nil, 50)
	header = binary.LittleEndian.AppendUint32(header, 0xdeadbeef)
	tests := []struct {
		name     string
		mutate   func(t *testing.T, path string, data []byte, last int) // last: offset of the last record
		lostLast bool
		newSeg   bool // mutation creates a new segment file
	}{
		{"cut mid payload", func(t *testing.T, p string, d []byte, _ int) { write(t, p, d[:len(d)-3]) }, true, false},
		{"cut mid header", func(t *testing.T, p string, d []byte, last int) { write(t, p, d[:last+5]) }, true, false},
		{"cut after header", func(t *testing.T, p string, d []byte, last int) { write(t, p, d[:last+recHeaderLen]) }, true, false},
		{"flipped payload byte", func(t *testing.T, p string, d []byte, last int) {
			d = bytes.Clone(d)
			d[last+recHeaderLen+3] ^= 0x40
			write(t, p, d)
		}, true, false},
		{"random garbage", func(t *testing.T, p string, d []byte, _ int) { write(t, p, append(bytes.Clone(d), garbage...)) }, false, false},
		{"zero fill", func(t *testing.T, p string, d []byte, _ int) {
			write(t, p, append(bytes.Clone(d), make([]byte, 64)...))
		}, false, false},
		{"plausible header", func(t *testing.T, p string, d []byte, _ int) {
			write(t, p, append(append(bytes.Clone(d), header...), garbage[:20]...))
		}, false, false},
		{"torn new segment", func(t *testing.T, p string, _ []byte, _ int) {
			write(t, filepath.Join(filepath.Dir(p), fmt.Sprintf("%016x%s", 0xffff, segSuffix)), []byte("WLOG"))
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "")
			cfg.SegmentBytes = 300
			b, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := 1; i <= 30; i++ {
				for _, inst := range []string{"a", "b"} {
					mustAppend(t, b, inst, "stdout", fmt.Sprintf("%s line %d", inst, i))
					if inst == "b" || i > 5 {
						want = append(want, fmt.Sprintf("%s/stdout#%d:%s line %d", inst, i, inst, i))
					}
				}
			}
			mustAck(t, b, map[string]uint64{"a": 5})
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			files := segFiles(t, cfg.Dir)
			lastPath := files[len(files)-1]
			data, err := os.ReadFile(lastPath)
			if err != nil {
				t.Fatal(err)
			}
			offs := recordOffsets(t, data)
			tt.mutate(t, lastPath, data, offs[len(offs)-1])
			wantSize := int64(len(data))
			nextB := uint64(31)
			if tt.lostLast {
				want = want[:len(want)-1]
				wantSize = int64(offs[len(offs)-1])
				nextB = 30
			}

			b = openT(t, cfg)
			equalKeys(t, "recovered", readAll(t, b), want)
			if fi, err := os.Stat(lastPath); err != nil || fi.Size() != wantSize {
				t.Fatalf("last segment after recovery: %v, size want %d", fi, wantSize)
			}
			if got := segFiles(t, cfg.Dir); len(got) != len(files) {
				t.Fatalf("segments after recovery %v, before %v", got, files)
			}
			mustAppend(t, b, "a", "stdout", "new")
			mustAppend(t, b, "b", "stdout", "new")
			equalKeys(t, "appends after recovery", readAll(t, b), []string{
				"a/stdout#31:new", fmt.Sprintf("b/stdout#%d:new", nextB),
			})
			if d := b.Dropped(); len(d) != 0 {
				t.Fatalf("recovery reported drops %v", d)
			}
		})
	}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

// threeLines leaves in cfg.Dir a closed buffer holding lines "1" to "3"
// of instance a, acked up to ack.
func threeLines(t *testing.T, cfg Config, ack uint64) {
	t.Helper()
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		mustAppend(t, b, "a", "stdout", fmt.Sprint(i))
	}
	mustAck(t, b, map[string]uint64{"a": ack})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverCorruptStateAndForeignSegment(t *testing.T) {
	cfg := testConfig(t, "")
	threeLines(t, cfg, 1)
	// A corrupt state file loses the acks (lines are resent, never lost)
	// but never the seqs; a file that is not a segment is moved aside.
	write(t, filepath.Join(cfg.Dir, stateName), []byte("WLOGSTA1garbage"))
	foreign := filepath.Join(cfg.Dir, fmt.Sprintf("%016x%s", 0x100, segSuffix))
	write(t, foreign, []byte("this is not a segment at all"))
	b := openT(t, cfg)
	equalKeys(t, "after corrupt state", readAll(t, b), []string{"a/stdout#1:1", "a/stdout#2:2", "a/stdout#3:3"})
	if _, err := os.Stat(foreign + ".corrupt"); err != nil {
		t.Fatalf("foreign segment not moved aside: %v", err)
	}
	mustAppend(t, b, "a", "stdout", "4")
	equalKeys(t, "next", readAll(t, b), []string{"a/stdout#4:4"})
}

func TestStateCodecRoundTrip(t *testing.T) {
	st := map[string]persisted{
		"a": {acked: 5, dropHigh: 9, drop: DropInfo{Count: 3, First: 7, Last: 9}, last: map[string]int64{"stdout": 1 << 60, "stderr": -5}},
		"b": {acked: 1 << 40},
	}
	got, err := decodeState(encodeState(st))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(st) || !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip: %+v", got)
	}
	enc := encodeState(st)
	for i := range enc {
		bad := bytes.Clone(enc)
		bad[i] ^= 1
		if _, err := decodeState(bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
}

// TestOpenRemovesStateTemps: temporary state files that a crash left
// (this version's and the older fixed name) are removed on Open and never
// read as state.
func TestOpenRemovesStateTemps(t *testing.T) {
	cfg := testConfig(t, "")
	threeLines(t, cfg, 2)
	leftovers := []string{filepath.Join(cfg.Dir, "state.tmp"), filepath.Join(cfg.Dir, "state.tmp4242")}
	for _, p := range leftovers {
		write(t, p, []byte("WLOGSTA2 half a state"))
	}
	b := openT(t, cfg)
	equalKeys(t, "after reopen", readAll(t, b), []string{"a/stdout#3:3"})
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s still there: %v", p, err)
		}
	}
}
