package metrics

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	cfs "github.com/google/cadvisor/lib/fs"
	"github.com/google/cadvisor/lib/fs/btrfs"
	"github.com/google/cadvisor/lib/fs/overlay"
	"github.com/google/cadvisor/lib/fs/vfs"
)

// cAdvisor's file system plugins (vfs, overlay, btrfs) read a mount's
// size with statfs in a goroutine bounded by a 2 s timeout, and that
// goroutine writes the caller's named results: when statfs outlasts the
// timeout (a loaded machine, a slow disk), it writes them after the
// caller has returned them, a data race the race detector reports. So the
// three plugins are registered here, not through their install packages,
// each wrapped so that its stats come from statfsStats, which shares
// nothing with a late statfs. Everything else (which file system types a
// plugin takes, its priority, its mount fixes) stays cAdvisor's.
func init() {
	for _, p := range []cfs.FsPlugin{vfs.NewPlugin(), overlay.NewPlugin(), btrfs.NewPlugin()} {
		if err := cfs.RegisterPlugin(p.Name(), newStatfsPlugin(p)); err != nil {
			panic(fmt.Sprintf("metrics: register file system plugin %q: %v", p.Name(), err))
		}
	}
}

// statfsTimeout bounds one statfs, as cAdvisor's own plugins do.
const statfsTimeout = 2 * time.Second

// errStatfsBusy is returned while a statfs of the same mount point has
// not come back: one hung mount holds one goroutine, not one per look.
var errStatfsBusy = errors.New("an earlier statfs of this mount point has not returned")

// statfsPlugin is a cAdvisor file system plugin whose GetStats is
// statfsStats; the rest is the wrapped plugin's.
type statfsPlugin struct {
	cfs.FsPlugin
	statfs  func(path string, st *syscall.Statfs_t) error
	timeout time.Duration

	mu       sync.Mutex
	inFlight map[string]bool // mount points whose statfs has not returned
}

func newStatfsPlugin(p cfs.FsPlugin) *statfsPlugin {
	return &statfsPlugin{FsPlugin: p, statfs: syscall.Statfs, timeout: statfsTimeout, inFlight: map[string]bool{}}
}

// GetStats returns the size of the file system mounted at
// partition.Mountpoint: nil when that path does not exist, an error when
// statfs fails, outlasts the timeout or has not returned from an earlier
// call.
func (p *statfsPlugin) GetStats(_ string, partition cfs.PartitionInfo) (*cfs.FsStats, error) {
	path := partition.Mountpoint
	st, err := p.statfsStats(path)
	if errors.Is(err, syscall.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	bs := uint64(st.Frsize)
	inodes, inodesFree := st.Files, st.Ffree
	return &cfs.FsStats{
		Capacity:   bs * st.Blocks,
		Free:       bs * st.Bfree,
		Available:  bs * st.Bavail,
		Inodes:     &inodes,
		InodesFree: &inodesFree,
		Type:       cfs.VFS,
	}, nil
}

// statfsStats runs statfs in a goroutine of its own and waits at most
// the timeout for it. The goroutine writes only its own Statfs_t and a
// buffered channel, so one that returns late touches nothing the caller
// holds.
func (p *statfsPlugin) statfsStats(path string) (syscall.Statfs_t, error) {
	p.mu.Lock()
	if p.inFlight[path] {
		p.mu.Unlock()
		return syscall.Statfs_t{}, fmt.Errorf("statfs %s: %w", path, errStatfsBusy)
	}
	p.inFlight[path] = true
	p.mu.Unlock()

	type result struct {
		st  syscall.Statfs_t
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = p.statfs(path, &r.st)
		p.mu.Lock()
		delete(p.inFlight, path)
		p.mu.Unlock()
		done <- r
	}()
	t := time.NewTimer(p.timeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return syscall.Statfs_t{}, fmt.Errorf("statfs %s: %w", path, r.err)
		}
		return r.st, nil
	case <-t.C:
		return syscall.Statfs_t{}, fmt.Errorf("statfs %s: no answer in %s", path, p.timeout)
	}
}
