package logstore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fill appends n records per instance of insts to t1/web, in batches,
// with seqs from first.
func fill(t testing.TB, s *Store, insts []string, first, n int) {
	t.Helper()
	var batch []Record
	for i := first; i < first+n; i++ {
		for _, in := range insts {
			batch = append(batch, rec(in, uint64(i), i, fmt.Sprintf("%s line %d %s", in, i, strings.Repeat("y", i%50))))
		}
		if len(batch) >= 100 {
			mustAppend(t, s, len(batch), batch...)
			batch = batch[:0]
		}
	}
	mustAppend(t, s, len(batch), batch...)
}

func TestReopenKeepsRecords(t *testing.T) {
	for _, tc := range []struct {
		name string
		prep func(t *testing.T, dir string)
	}{
		{"clean close, with index files", func(*testing.T, string) {}},
		{"no index files (crash)", func(t *testing.T, dir string) {
			removeGlob(t, dir, "*"+idxSuffix)
		}},
		{"damaged index files", func(t *testing.T, dir string) {
			for _, p := range glob(t, dir, "*"+idxSuffix) {
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				data[len(data)/2] ^= 0x40
				if err := os.WriteFile(p, data, 0o640); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"stale index of the active segment", func(t *testing.T, dir string) {
			// An index written at a Close, then more appended and a
			// crash: the index no longer matches the file's size.
			segs := segFiles(t, dir)
			last := segs[len(segs)-1]
			if _, err := os.Stat(idxPathOf(last)); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			r := rec("c", 1, 1000, "appended behind the index")
			if _, err := f.Write(appendRecord(nil, &r, 1_000_000)); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := testConfig(t, "")
			cfg.SegmentBytes = 8 << 10
			s := openT(t, cfg)
			fill(t, s, []string{"a", "b"}, 1, 200)
			before := queryAll(t, s, "t1", "web")
			st := s.Stats()
			if st.Segments < 3 {
				t.Fatalf("want several segments, got %d", st.Segments)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.prep(t, cfg.Dir)
			s = openT(t, cfg)
			after := queryAll(t, s, "t1", "web")
			if tc.name == "stale index of the active segment" {
				if n := len(after); n != len(before)+1 || after[n-1].Line != "appended behind the index" || after[n-1].Pos != 1_000_000 {
					t.Fatalf("record appended behind the index not recovered")
				}
				after = after[:len(after)-1]
				st.Records++
				st.Instances++
				st.LastPos = 1_000_000
			}
			if !slices.Equal(after, before) {
				t.Fatalf("records differ after reopen: %d vs %d", len(after), len(before))
			}
			st2 := s.Stats()
			if st2.Records != st.Records || st2.Segments != st.Segments || st2.LastPos != st.LastPos || st2.Instances != st.Instances {
				t.Fatalf("stats after reopen %+v, before %+v", st2, st)
			}
			// Dedup still works; positions continue.
			mustAppend(t, s, 0, rec("a", 200, 200, "resend"), rec("b", 1, 1, "resend"))
			mustAppend(t, s, 1, rec("a", 201, 201, "new"))
			got, _ := mustQuery(t, s, Query{Tenant: "t1", App: "web", AfterPos: st.LastPos})
			equalKeys(t, "after reopen", got, []string{"a#201:new"})
			if got[0].Pos != st.LastPos+1 {
				t.Fatalf("pos after reopen %d, want %d", got[0].Pos, st.LastPos+1)
			}
		})
	}
}

func glob(t testing.TB, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*", "*", pattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func removeGlob(t testing.TB, dir, pattern string) {
	t.Helper()
	for _, p := range glob(t, dir, pattern) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTornTailRecovered(t *testing.T) {
	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 100)
	for _, tc := range []struct {
		name string
		cut  int    // bytes removed from the end
		add  []byte // then appended
		lost int    // records lost
	}{
		{"cut mid record", 7, nil, 1},
		{"cut mid header", 0, []byte{1, 2, 3}, 0},
		{"garbage appended", 0, garbage, 0},
		{"zeros appended", 0, make([]byte, 4096), 0},
		{"cut and garbage", 30, garbage, 1},
		{"plausible length, bad crc", 0, []byte{20, 0, 0, 0, 9, 9, 9, 9, 1, 0, 1, 1, 2, 1, 'i', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := testConfig(t, "")
			s := openT(t, cfg)
			fill(t, s, []string{"a"}, 1, 50)
			before := queryAll(t, s, "t1", "web")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			removeGlob(t, cfg.Dir, "*"+idxSuffix) // as after a kill
			segs := segFiles(t, cfg.Dir)
			path := segs[len(segs)-1]
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()-int64(tc.cut)); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tc.add)
			f.Close()

			s = openT(t, cfg)
			want := before[:len(before)-tc.lost]
			if got := queryAll(t, s, "t1", "web"); !slices.Equal(got, want) {
				t.Fatalf("recovered %d records, want %d", len(got), len(want))
			}
			wantSize := fi.Size()
			if tc.lost > 0 {
				r := before[len(before)-1]
				wantSize -= int64(recordSize(&r, r.Pos))
			}
			if fi2, _ := os.Stat(path); fi2.Size() != wantSize {
				t.Fatalf("segment size %d after recovery, want %d (truncated to the last record)", fi2.Size(), wantSize)
			}
			// The lost record is not a duplicate: the agent's resend is
			// stored, after which appends go on.
			last := before[len(before)-1]
			mustAppend(t, s, tc.lost, last)
			mustAppend(t, s, 1, rec("a", 51, 51, "next"))
			got := queryAll(t, s, "t1", "web")
			if len(got) != len(before)+1 || got[len(got)-1].Line != "next" {
				t.Fatalf("after recovery and append: %d records", len(got))
			}
		})
	}
}

func TestForeignFilesSetAside(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	mustAppend(t, s, 1, rec("a", 1, 1, "web"))
	mustAppend(t, s, 1, recIn("t1", "api", "a", 1, 1, "api"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	webDir := filepath.Join(cfg.Dir, "t1", "web")
	apiSegs := glob(t, cfg.Dir, "*"+segSuffix)
	var apiSeg string
	for _, p := range apiSegs {
		if strings.Contains(p, string(filepath.Separator)+"api"+string(filepath.Separator)) {
			apiSeg = p
		}
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(webDir, name)
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	foreign := write("00000000000000a0.seg", []byte("WLOGSEG1 is the agent's magic, not ours"))
	badHeader := write("00000000000000a1.seg", append(encodeHeader("t1", "web")[:12], 0xff, 0xff, 0xff))
	apiData, err := os.ReadFile(apiSeg)
	if err != nil {
		t.Fatal(err)
	}
	misplaced := write("00000000000000a2.seg", apiData) // an api segment in web's directory
	torn := write("00000000000000a3.seg", []byte(segMagic[:3]))
	empty := write("00000000000000a4.seg", nil)
	other := write("notes.txt", []byte("left alone"))

	s = openT(t, cfg)
	for _, p := range []string{foreign, badHeader, misplaced} {
		if _, err := os.Stat(p + corruptSuffix); err != nil {
			t.Errorf("%s not renamed: %v", filepath.Base(p), err)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", filepath.Base(p), err)
		}
	}
	for _, p := range []string{torn, empty} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("torn segment %s not removed: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file touched: %v", err)
	}
	equalKeys(t, "web", queryAll(t, s, "t1", "web"), []string{"a#1:web"})
	equalKeys(t, "api", queryAll(t, s, "t1", "api"), []string{"a#1:api"})
	// New segments never reuse the ids of set-aside files.
	mustAppend(t, s, 1, rec("a", 2, 2, "web 2"))
	s = reopen(t, s, cfg)
	equalKeys(t, "web after reopen", queryAll(t, s, "t1", "web"), []string{"a#1:web", "a#2:web 2"})
}

func TestSecondOpenRefused(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	if s2, err := Open(cfg); err == nil {
		s2.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
	s = reopen(t, s, cfg)
	_ = s
}

func TestCorruptStateFileIgnored(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	mustAppend(t, s, 1, rec("a", 5, 1, "x"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, stateName), []byte("garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	s = openT(t, cfg)
	// Seqs still on disk still dedup.
	mustAppend(t, s, 0, rec("a", 5, 1, "x"))
	mustAppend(t, s, 1, rec("a", 6, 2, "y"))
}

func TestRecoveryCutsOutOfOrderRecords(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs []Record
		pos  []uint64
		keep int
	}{
		{"pos repeats", []Record{rec("a", 1, 1, "1"), rec("a", 2, 2, "2"), rec("a", 3, 3, "3")}, []uint64{1, 2, 2}, 2},
		{"pos decreases", []Record{rec("a", 1, 1, "1"), rec("b", 1, 2, "2"), rec("a", 2, 3, "3")}, []uint64{5, 9, 7}, 2},
		{"seq repeats", []Record{rec("a", 1, 1, "1"), rec("b", 1, 2, "2"), rec("a", 1, 3, "3")}, []uint64{1, 2, 3}, 2},
		{"in order", []Record{rec("a", 1, 1, "1"), rec("b", 7, 2, "2"), rec("a", 9, 3, "3")}, []uint64{1, 5, 6}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := testConfig(t, "")
			appDir := filepath.Join(cfg.Dir, "t1", "web")
			if err := os.MkdirAll(appDir, 0o750); err != nil {
				t.Fatal(err)
			}
			data := encodeHeader("t1", "web")
			for i := range tc.recs {
				data = appendRecord(data, &tc.recs[i], tc.pos[i])
			}
			if err := os.WriteFile(segPath(appDir, 1), data, 0o640); err != nil {
				t.Fatal(err)
			}
			s := openT(t, cfg)
			got := queryAll(t, s, "t1", "web")
			equalKeys(t, "recovered", got, keys(tc.recs[:tc.keep]))
		})
	}
}

// TestOpenRemovesStateTemps: temporary state files that a crash left
// (this version's and the older fixed name) are removed on Open.
func TestOpenRemovesStateTemps(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	mustAppend(t, s, 1, rec("i1", 1, 0, "one"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{filepath.Join(cfg.Dir, "_state.tmp"), filepath.Join(cfg.Dir, "_state.tmp777")}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("WHLOGST1 half"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	s = openT(t, cfg)
	equalKeys(t, "after reopen", queryAll(t, s, "t1", "web"), []string{"i1#1:one"})
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s still there: %v", p, err)
		}
	}
}
