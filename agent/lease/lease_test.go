package lease

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLeaseSurvivesRestartNotReboot(t *testing.T) {
	dir := t.TempDir()
	l := Open(dir)
	if !l.Expired(time.Hour) {
		t.Fatal("a lease never renewed is not expired")
	}
	l.Renew(100 * time.Millisecond)
	if age, ok := l.Age(); !ok || age < 100*time.Millisecond || age > 5*time.Second {
		t.Fatalf("age after renewal by a heartbeat sent 100ms ago: %v %v", age, ok)
	}
	if l.Expired(time.Minute) || !l.Expired(50*time.Millisecond) {
		t.Fatal("expiry does not follow max_disconnect")
	}
	// An agent restart (same boot) keeps it.
	if again := Open(dir); again.Expired(time.Minute) {
		t.Fatal("the lease did not survive an agent restart")
	}
	// Another boot voids it.
	b, _ := os.ReadFile(filepath.Join(dir, File))
	os.WriteFile(filepath.Join(dir, File), append([]byte("another-boot"), b[len(bootID()):]...), 0o600)
	if rebooted := Open(dir); !rebooted.Expired(time.Hour) {
		t.Fatal("a lease from another boot still counts")
	}
}

// TestLeaseFileWritesAreSpaced: renewals a heartbeat apart do not each
// rewrite the file; what a restart reads is at most leaseWriteEvery older
// than the last renewal (it fences sooner, never later).
func TestLeaseFileWritesAreSpaced(t *testing.T) {
	dir := t.TempDir()
	l := Open(dir)
	l.Renew(0)
	first, _ := os.ReadFile(filepath.Join(dir, File))
	time.Sleep(50 * time.Millisecond)
	l.Renew(0)
	if again, _ := os.ReadFile(filepath.Join(dir, File)); string(again) != string(first) {
		t.Fatal("a renewal 50ms after the last rewrote the lease file")
	}
	restarted := Open(dir)
	ra, _ := restarted.Age()
	la, _ := l.Age()
	if ra < la || ra > la+leaseWriteEvery {
		t.Fatalf("restart reads a lease aged %s, the live one is %s", ra, la)
	}
	l.mu.Lock()
	l.written -= leaseWriteEvery // as if the last write were 2s ago
	l.mu.Unlock()
	l.Renew(0)
	if again, _ := os.ReadFile(filepath.Join(dir, File)); string(again) == string(first) {
		t.Fatal("the file was not rewritten after leaseWriteEvery")
	}
}

// TestLeaseFileRewrittenInPlace: the file holds exactly one record,
// rewritten in place (same file, no temporary one beside it), and a
// longer file left by an older agent is cut to it.
func TestLeaseFileRewrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, File)
	if err := os.WriteFile(path, []byte(bootID()+" 1\n"+strings.Repeat("#", 200)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	l := Open(dir)
	if err := l.Renew(0); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	if f := strings.Fields(string(first)); len(f) != 2 || f[0] != bootID() || !strings.HasSuffix(string(first), "\n") {
		t.Fatalf("lease file %q, want one record", first)
	}
	l.mu.Lock()
	l.written -= leaseWriteEvery
	l.mu.Unlock()
	time.Sleep(time.Millisecond)
	if err := l.Renew(0); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if len(second) != len(first) || string(second) == string(first) {
		t.Fatalf("second record %q after %q: want another renewal of the same length", second, first)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("the lease file was replaced, not rewritten in place")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the data dir, want the lease alone", len(ents))
	}
	restarted := Open(dir)
	la, _ := l.Age()
	ra, ok := restarted.Age()
	if !ok || ra < la || ra > la+time.Second {
		t.Fatalf("a restart reads a lease aged %s (%v), the live one is %s", ra, ok, la)
	}
}

// TestLeaseFileKeptOpen: renewals write through one descriptor, open from
// the first write until Close, and a renewal after Close opens it again.
func TestLeaseFileKeptOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, File)
	open := func() int {
		t.Helper()
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
				n++
			}
		}
		return n
	}
	l := Open(dir)
	renew := func() {
		t.Helper()
		l.mu.Lock()
		l.written -= leaseWriteEvery // as if the last write were 2s ago
		l.mu.Unlock()
		time.Sleep(time.Millisecond)
		if err := l.Renew(0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Renew(0); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	if n := open(); n != 1 {
		t.Fatalf("%d descriptors of the lease file open after a renewal, want 1", n)
	}
	renew()
	if n := open(); n != 1 {
		t.Fatalf("%d descriptors of the lease file open after a second renewal, want 1", n)
	}
	if again, _ := os.ReadFile(path); string(again) == string(first) {
		t.Fatal("the second renewal did not reach the file")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := open(); n != 0 {
		t.Fatalf("%d descriptors of the lease file open after Close", n)
	}
	before, _ := os.ReadFile(path)
	renew()
	if after, _ := os.ReadFile(path); string(after) == string(before) || open() != 1 {
		t.Fatal("a renewal after Close did not open and write the file again")
	}
	l.Close()
}
