package metrics

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	cfs "github.com/google/cadvisor/lib/fs"
)

// TestStatfsPluginsRegistered checks that cAdvisor looks up this
// package's statfs plugins for the file systems it reads, and that they
// report the size statfs gives.
func TestStatfsPluginsRegistered(t *testing.T) {
	for fsType, name := range map[string]string{"ext4": "vfs", "xfs": "vfs", "overlay": "overlay", "btrfs": "btrfs"} {
		p, ok := cfs.GetPluginForFsType(fsType).(*statfsPlugin)
		if !ok {
			t.Fatalf("plugin for %s is %T, not this package's statfs plugin", fsType, cfs.GetPluginForFsType(fsType))
		}
		if p.Name() != name {
			t.Errorf("plugin for %s is named %q, want %q", fsType, p.Name(), name)
		}
	}
	if p := cfs.GetPluginForFsType("nfs"); p != nil {
		t.Errorf("nfs has plugin %s; none is registered for remote file systems", p.Name())
	}

	p := cfs.GetPluginForFsType("ext4")
	got, err := p.GetStats("", cfs.PartitionInfo{Mountpoint: "/"})
	if err != nil || got == nil {
		t.Fatalf("stats of /: %v, %v", got, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/", &st); err != nil {
		t.Fatal(err)
	}
	if want := uint64(st.Frsize) * st.Blocks; got.Capacity != want || got.Inodes == nil || *got.Inodes != st.Files {
		t.Errorf("stats of /: capacity %d inodes %v, statfs says %d and %d", got.Capacity, got.Inodes, want, st.Files)
	}
	if got, err := p.GetStats("", cfs.PartitionInfo{Mountpoint: "/no/such/mount/point"}); got != nil || err != nil {
		t.Errorf("stats of a missing mount point: %v, %v; want nothing and no error", got, err)
	}
}

// TestStatfsLateAnswer checks a statfs that outlasts the timeout: the
// caller gets an error, a second look at that mount point is refused at
// once instead of starting another goroutine, and once the first statfs
// returns (writing only its own result, so the race detector stays quiet)
// the mount point is read again.
func TestStatfsLateAnswer(t *testing.T) {
	release := make(chan struct{})
	calls := make(chan string, 4)
	p := newStatfsPlugin(cfs.GetPluginForFsType("ext4").(*statfsPlugin).FsPlugin)
	p.timeout = 20 * time.Millisecond
	p.statfs = func(path string, st *syscall.Statfs_t) error {
		calls <- path
		if path == "/slow" {
			<-release
		}
		st.Frsize, st.Blocks, st.Bfree, st.Bavail = 4096, 10, 4, 3
		return nil
	}
	part := cfs.PartitionInfo{Mountpoint: "/slow"}

	if got, err := p.GetStats("", part); err == nil || !strings.Contains(err.Error(), "no answer in 20ms") {
		t.Fatalf("slow statfs: %v, %v; want a timeout", got, err)
	}
	if got, err := p.GetStats("", part); !errors.Is(err, errStatfsBusy) {
		t.Fatalf("second look while the first statfs hangs: %v, %v; want %v", got, err, errStatfsBusy)
	}
	if got, err := p.GetStats("", cfs.PartitionInfo{Mountpoint: "/fast"}); err != nil || got.Capacity != 40960 || got.Available != 12288 {
		t.Fatalf("another mount point while /slow hangs: %+v, %v", got, err)
	}
	if n := len(calls); n != 2 {
		t.Fatalf("%d statfs calls, want 2 (the refused look starts none)", n)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.timeout = time.Second
		got, err := p.GetStats("", part)
		if err == nil {
			if got.Capacity != 40960 || got.Free != 16384 {
				t.Fatalf("stats after the hang: %+v", got)
			}
			break
		}
		if !errors.Is(err, errStatfsBusy) || time.Now().After(deadline) {
			t.Fatalf("look after the slow statfs returned: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStatfsError checks that statfs's own error reaches the caller.
func TestStatfsError(t *testing.T) {
	p := newStatfsPlugin(cfs.GetPluginForFsType("ext4").(*statfsPlugin).FsPlugin)
	p.statfs = func(string, *syscall.Statfs_t) error { return syscall.EIO }
	if got, err := p.GetStats("", cfs.PartitionInfo{Mountpoint: "/x"}); got != nil || !errors.Is(err, syscall.EIO) {
		t.Fatalf("statfs failing with EIO: %v, %v", got, err)
	}
}
