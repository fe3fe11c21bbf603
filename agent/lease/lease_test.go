package lease

import (
	"os"
	"path/filepath"
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
