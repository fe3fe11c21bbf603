//go:build linux

package logstore

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestFailedWriteRolledBack makes a write fail half way (RLIMIT_FSIZE;
// Go ignores SIGXFSZ, so write returns EFBIG after writing what fits):
// the partial bytes are cut off, nothing of the call counts as stored, and
// the same records go in once the disk has room again.
func TestFailedWriteRolledBack(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	mustAppend(t, s, 2, rec("a", 1, 1, "one"), rec("b", 1, 1, "one"))
	seg := s.tenants["t1"].apps["web"].active
	size := seg.size

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(size + 100)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	line := strings.Repeat("x", 80)
	batch := []Record{rec("a", 2, 2, line), rec("b", 2, 2, line), rec("a", 3, 3, line)}
	n, err := s.Append(batch)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil || n != 0 {
		t.Fatalf("append past the file size limit: %d, %v", n, err)
	}
	if fi, err := os.Stat(seg.path); err != nil || fi.Size() != size {
		t.Fatalf("segment not cut back to %d bytes: %v, %v", size, fi.Size(), err)
	}
	if st := s.Stats(); st.LastPos != 2 || st.Records != 2 {
		t.Fatalf("stats after failed write: %+v", st)
	}
	mustAppend(t, s, 3, batch...)
	want := []string{"a#1:one", "b#1:one", "a#2:" + line, "b#2:" + line, "a#3:" + line}
	equalKeys(t, "after retry", queryAll(t, s, "t1", "web"), want)
	s = reopen(t, s, cfg)
	got := queryAll(t, s, "t1", "web")
	equalKeys(t, "after reopen", got, want)
	if pos := []uint64{got[0].Pos, got[1].Pos, got[2].Pos, got[3].Pos, got[4].Pos}; !slices.Equal(pos, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("positions %v, want 1..5 (the failed write's are reused, never seen)", pos)
	}
}

// TestWriteAndTruncateFailSticky: when a failed write cannot be cut off,
// the store refuses appends rather than risk resurrecting records later.
func TestWriteAndTruncateFailSticky(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	mustAppend(t, s, 1, rec("a", 1, 1, "one"))
	seg := s.tenants["t1"].apps["web"].active
	seg.f.Close() // both WriteAt and Truncate now fail
	if n, err := s.Append([]Record{rec("a", 2, 2, "two")}); err == nil || n != 0 {
		t.Fatalf("append to a closed file: %d, %v", n, err)
	}
	if _, err := s.Append([]Record{recIn("t1", "api", "z", 1, 2, "other app")}); err == nil || !strings.Contains(err.Error(), "refusing appends") {
		t.Fatalf("append after sticky failure: %v", err)
	}
	// Queries still work.
	equalKeys(t, "query", queryAll(t, s, "t1", "web"), []string{"a#1:one"})
	if err := s.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Logf("close: %v", err)
	}
	s = openT(t, cfg)
	mustAppend(t, s, 1, rec("a", 2, 2, "two"))
}
