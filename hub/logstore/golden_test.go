package logstore

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenDir holds a store directory written by the code that defined the
// on-disk format: segments with and without index files, a tenant whose
// directory name is escaped, and a state file that remembers the seqs of
// deleted segments. golden.want is what a store opened on it reports.
const goldenDir = "testdata/golden"

var goldenApps = [][2]string{{"t1", "web"}, {"t1", "api"}, {"Team_2", "web.v2"}}

// writeGolden fills dir deterministically: appends with a large MaxBytes
// (so no background pass runs), then a reopen with a small one and an
// explicit Enforce that deletes the oldest segments and writes the state.
func writeGolden(t *testing.T, dir string) {
	t.Helper()
	cfg, clk := testConfig(t, dir)
	cfg.SegmentBytes = MinSegmentBytes
	s := openT(t, cfg)
	for i := 1; i <= 120; i++ {
		for k, ta := range goldenApps {
			if k == 2 && i%3 != 0 {
				continue
			}
			r := recIn(ta[0], ta[1], fmt.Sprintf("%s-%d", ta[1], i%2), uint64(i), i, fmt.Sprintf("%s line %d %s", ta[1], i, strings.Repeat("x", i%50)))
			r.Stream = []string{"stdout", "stderr", "router"}[i%3]
			r.Partial = i%11 == 0
			r.Primary = i%2 == 0
			mustAppend(t, s, 1, r)
		}
		clk.Advance(time.Second)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.Default.MaxBytes = 8 << 10
	s = openT(t, cfg)
	if err := s.Enforce(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// goldenSummary opens the store in dir and renders every record, the
// stats, and what dedup makes of old and new seqs.
func goldenSummary(t *testing.T, dir string) string {
	t.Helper()
	cfg, _ := testConfig(t, dir)
	cfg.SegmentBytes = MinSegmentBytes
	s := openT(t, cfg)
	var sb strings.Builder
	for _, ta := range goldenApps {
		for _, r := range queryAll(t, s, ta[0], ta[1]) {
			fmt.Fprintf(&sb, "%s/%s %s/%s#%d pos=%d t=%d partial=%v primary=%v %q\n",
				r.Tenant, r.App, r.Instance, r.Stream, r.Seq, r.Pos, r.Time.UnixNano(), r.Partial, r.Primary, r.Line)
		}
	}
	st := s.Stats()
	fmt.Fprintf(&sb, "stats segments=%d records=%d instances=%d lastpos=%d\n", st.Segments, st.Records, st.Instances, st.LastPos)
	for _, ta := range goldenApps {
		old := recIn(ta[0], ta[1], ta[1]+"-1", 1, 0, "old seq")
		n, err := s.Append([]Record{old, recIn(ta[0], ta[1], ta[1]+"-1", 1000, 0, "new seq")})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "append %s/%s stored %d\n", ta[0], ta[1], n)
	}
	fmt.Fprintf(&sb, "lastpos after appends %d\n", s.Stats().LastPos)
	return sb.String()
}

// copyTree copies the regular files under src into a new temporary
// directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o750); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestGoldenFormat reads a store directory written by an earlier version of
// this package, with its index files and without them, and checks that the
// same appends write the same segment bytes today.
func TestGoldenFormat(t *testing.T) {
	want := filepath.Join("testdata", "golden.want")
	if *update {
		if err := os.RemoveAll(goldenDir); err != nil {
			t.Fatal(err)
		}
		writeGolden(t, goldenDir)
		os.Remove(filepath.Join(goldenDir, lockName))
		if err := os.WriteFile(want, []byte(goldenSummary(t, copyTree(t, goldenDir))), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	wantSum, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := goldenSummary(t, copyTree(t, goldenDir)); got != string(wantSum) {
		t.Fatalf("golden store reads differently:\n got\n%s\n want\n%s", got, wantSum)
	}
	noIdx := copyTree(t, goldenDir)
	idx, _ := filepath.Glob(filepath.Join(noIdx, "*", "*", "*"+idxSuffix))
	if len(idx) == 0 {
		t.Fatal("golden store has no index files")
	}
	for _, p := range idx {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if got := goldenSummary(t, noIdx); got != string(wantSum) {
		t.Fatalf("golden store without index files reads differently:\n got\n%s\n want\n%s", got, wantSum)
	}

	fresh := t.TempDir()
	writeGolden(t, fresh)
	old := segFiles(t, goldenDir)
	if len(old) < 4 {
		t.Fatalf("golden store has %d segments", len(old))
	}
	if _, err := os.Stat(filepath.Join(goldenDir, stateName)); err != nil {
		t.Fatalf("golden store has no state file: %v", err)
	}
	var rels []string
	for _, p := range old {
		rel, _ := filepath.Rel(goldenDir, p)
		rels = append(rels, rel)
		a, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(fresh, rel))
		if err != nil {
			t.Fatalf("the same appends no longer write %s: %v", rel, err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the same appends write other bytes", rel)
		}
	}
	var now []string
	for _, p := range segFiles(t, fresh) {
		rel, _ := filepath.Rel(fresh, p)
		now = append(now, rel)
	}
	if !slices.Equal(rels, now) {
		t.Fatalf("segments differ:\n old %v\n now %v", rels, now)
	}
}
