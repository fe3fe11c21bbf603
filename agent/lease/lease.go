// Package lease keeps the agent's fencing lease: renewed by acknowledged
// heartbeats, measured on the boot clock, kept on disk for agent restarts.
package lease

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Lease is the agent's fencing lease (for apps with failover.mode
// fenced): renewed by every heartbeat a hub node in touch with the Raft
// leader acknowledges, measured on the machine's boot clock from the
// sending of that heartbeat. It is kept on disk with the boot's id, so an
// agent restart keeps it and a reboot voids it (a reboot counts as an
// expired lease).
type Lease struct {
	path string
	boot string

	mu      sync.Mutex
	renewed time.Duration // boot clock at the renewing heartbeat's sending
	valid   bool
	written time.Duration // the renewal last written to the file (0: none)
	f       *os.File      // the lease file, open from its first write until Close
}

// File is the lease's file in the agent's data dir.
const File = "lease"

// leaseWriteEvery spaces the lease file's writes: a restarted agent reads
// a renewal at most this much older than the last one, which only fences
// its instances that much sooner (the safe side).
const leaseWriteEvery = 2 * time.Second

// bootClock is CLOCK_BOOTTIME: monotonic, and it keeps counting while the
// machine is suspended.
func bootClock() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_BOOTTIME): %v", err)) // cannot fail on Linux
	}
	return time.Duration(ts.Nano())
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// Open loads the lease kept in dir; one from another boot is void.
func Open(dir string) *Lease {
	l := &Lease{path: filepath.Join(dir, File), boot: bootID()}
	b, err := os.ReadFile(l.path)
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] != l.boot || l.boot == "" {
		return l
	}
	if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil && time.Duration(ns) <= bootClock() {
		l.renewed, l.valid = time.Duration(ns), true
	}
	return l
}

// Renew records a renewal by a heartbeat sent ago. The error is that of
// writing the lease file; the renewal counts in memory regardless.
func (l *Lease) Renew(ago time.Duration) error {
	at := bootClock() - ago
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.valid && at <= l.renewed {
		return nil
	}
	l.renewed, l.valid = at, true
	if l.written != 0 && at-l.written < leaseWriteEvery {
		return nil
	}
	l.written = at
	if err := l.write(at); err != nil {
		return fmt.Errorf("write lease: %w", err)
	}
	return nil
}

// write rewrites the lease file in place with the renewal at: one small
// write at offset 0 into the file kept open, no temporary file, no fsync.
// Neither is needed:
//   - a crash of the machine voids the lease anyway (the next boot has
//     another id), whatever the file holds after it;
//   - an agent killed at any moment leaves the file whole: its data is in
//     the page cache, and a write within one page is not torn by a signal.
//
// Every record has the same length (the reading is zero-padded), so a
// rewrite covers the last one exactly; the write that opens the file then
// cuts it to that length, in case an older agent left a longer one. A failed
// write closes the file, and the next one opens it again. A file removed
// while the agent runs is written no more: the agent's next start finds
// no lease, which only fences sooner (the safe side). (An agent renews
// every second; the atomic rename and two fsyncs it did before were two
// fifths of its CPU at idle, and opening and closing the file each time
// half of what was left of the lease's cost.)
func (l *Lease) write(at time.Duration) error {
	rec := fmt.Appendf(nil, "%s %020d\n", l.boot, int64(at))
	opened := l.f == nil
	if opened {
		f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		l.f = f
	}
	_, err := l.f.WriteAt(rec, 0)
	if err == nil && opened {
		err = l.f.Truncate(int64(len(rec)))
	}
	if err != nil {
		l.f.Close()
		l.f = nil
	}
	return err
}

// Close closes the lease file; a later renewal opens it again.
func (l *Lease) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Age returns the time since the last renewal; false when there was none
// this boot.
func (l *Lease) Age() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.valid {
		return 0, false
	}
	return bootClock() - l.renewed, true
}

// Expired reports whether instances fenced with maxDisconnect must stop.
func (l *Lease) Expired(maxDisconnect time.Duration) bool {
	age, ok := l.Age()
	return !ok || age > maxDisconnect
}
