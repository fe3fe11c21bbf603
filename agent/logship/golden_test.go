package logship

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenDir holds a buffer directory written by the code that defined the
// on-disk format (segments and a "WLOGSTA2" state file), and want.txt
// what a buffer opened on it must report.
const goldenDir = "testdata/golden"

// writeGolden fills dir with a buffer that has several segments, acked and
// dropped lines, long lines in pieces, several streams and times, and a
// state file. Everything is deterministic, so the bytes are too.
func writeGolden(t *testing.T, dir string) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	cfg := Config{Dir: dir, MaxBytes: 2048, SegmentBytes: 300, MaxLineBytes: 16, Now: clk.Now, Sync: SyncEveryAppend()}
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 40; i++ {
		mustAppend(t, b, "web-1", "stdout", fmt.Sprintf("line %d", i))
		if i%7 == 0 {
			mustAppend(t, b, "web-2", "stderr", fmt.Sprintf("a long line number %d, cut in pieces: héllo wörld", i))
		}
		if i == 20 {
			mustAck(t, b, map[string]uint64{"web-1": 18, "web-2": 2})
		}
	}
	err = b.AppendBatch("web-2", []Entry{
		{Time: time.Unix(1_700_000_100, 5), Stream: "stdout", Text: "batched one"},
		{Time: time.Unix(1_699_999_000, 0), Stream: "router", Text: "GET / 200"},
	})
	if err != nil {
		t.Fatal(err)
	}
	mustAck(t, b, map[string]uint64{"web-1": 30})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// goldenSummary opens the buffer in dir and renders what it reports:
// unacked lines, drops, last times, and the seqs it assigns next.
func goldenSummary(t *testing.T, dir string) string {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	b, err := Open(Config{Dir: dir, MaxBytes: 2048, SegmentBytes: 300, MaxLineBytes: 16, Now: clk.Now, Sync: SyncEveryAppend()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var sb strings.Builder
	for _, l := range readAll(t, b) {
		fmt.Fprintf(&sb, "line %s/%s#%d %d partial=%v %q\n", l.Instance, l.Stream, l.Seq, l.Time.UnixNano(), l.Partial, l.Text)
	}
	dropped := b.Dropped()
	for _, inst := range []string{"web-1", "web-2"} {
		if d, ok := dropped[inst]; ok {
			fmt.Fprintf(&sb, "dropped %s %+v\n", inst, d)
		}
		last := b.Last(inst)
		streams := make([]string, 0, len(last))
		for st := range last {
			streams = append(streams, st)
		}
		slices.Sort(streams)
		for _, st := range streams {
			fmt.Fprintf(&sb, "last %s/%s %d\n", inst, st, last[st].UnixNano())
		}
	}
	for _, inst := range []string{"web-1", "web-2"} {
		mustAppend(t, b, inst, "stdout", "after reopen")
	}
	for _, l := range readAll(t, b) {
		fmt.Fprintf(&sb, "next %s#%d\n", l.Instance, l.Seq)
	}
	return sb.String()
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dst, e.Name()), data)
	}
	return dst
}

// TestGoldenFormat reads a buffer directory written by an earlier version
// of this package, and checks that the code writes the same bytes today.
func TestGoldenFormat(t *testing.T) {
	want := filepath.Join("testdata", "golden.want")
	if *update {
		if err := os.RemoveAll(goldenDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(goldenDir, 0o750); err != nil {
			t.Fatal(err)
		}
		writeGolden(t, goldenDir)
		write(t, want, []byte(goldenSummary(t, copyDir(t, goldenDir))))
	}
	wantSum, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := goldenSummary(t, copyDir(t, goldenDir)); got != string(wantSum) {
		t.Fatalf("golden buffer reads differently:\n got\n%s\n want\n%s", got, wantSum)
	}

	fresh := t.TempDir()
	writeGolden(t, fresh)
	ents, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		old, err := os.ReadFile(filepath.Join(goldenDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		now, err := os.ReadFile(filepath.Join(fresh, e.Name()))
		if err != nil {
			t.Fatalf("the same appends no longer write %s: %v", e.Name(), err)
		}
		if !bytes.Equal(old, now) {
			t.Errorf("%s: the same appends write other bytes:\n old %x\n now %x", e.Name(), old, now)
		}
	}
	if len(names) < 3 || !slices.Contains(names, stateName) {
		t.Fatalf("golden directory lacks segments or the state file: %v", names)
	}
}
