//go:build unix

package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDataDir takes an exclusive lock on DATA_DIR/dev.lock, held until
// release (or the process's end), so that one data dir serves one `wharf
// dev` at a time and --clean never pulls instances from under a running one.
func lockDataDir(dataDir string) (release func(), err error) {
	path := filepath.Join(dataDir, "dev.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("a wharf dev is running with data dir %s: stop it first", dataDir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// redirectStderr points this process's stderr (fd 2, where the hub's and
// the agent's loggers, and Raft's, write) to the file at path until
// restore. The dev command's own output goes to stdout, and its error is
// printed after restore.
func redirectStderr(path string) (restore func(), err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the dev log: %w", err)
	}
	defer f.Close()
	// Close-on-exec: the exec driver's supervisors, which outlive this
	// process, must not hold the terminal's (or a test's) stderr open.
	saved, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("redirect stderr: %w", err)
	}
	if err := unix.Dup2(int(f.Fd()), 2); err != nil {
		unix.Close(saved)
		return nil, fmt.Errorf("redirect stderr: %w", err)
	}
	return func() {
		_ = unix.Dup2(saved, 2)
		unix.Close(saved)
	}, nil
}
