// Package atomicfile replaces a file's content so that a crash, kill -9 or
// power loss leaves either the old content or the new, never a mix, a
// truncated file or an empty one.
//
// A write goes to a temporary file in the same directory (so the rename
// stays on one file system), which is fsynced, renamed over the target,
// and then the directory is fsynced so the rename itself survives power
// loss. On every error path the temporary file is closed and removed and
// the target is left as it was. A crash between the temporary file's
// creation and the rename can leave that file behind: its name is the
// target's plus ".tmp" and a random suffix, and RemoveTemps removes such
// leftovers.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tmpInfix separates a target's name from the random suffix of its
// temporary files.
const tmpInfix = ".tmp"

// Write replaces the file at path with data, created with mode perm (0600
// for secrets). See the package doc for the guarantees.
func Write(path string, data []byte, perm fs.FileMode) error {
	return WriteFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc replaces the file at path with what fill writes, created with
// mode perm. If fill returns an error, nothing changes on disk and the
// error is returned.
func WriteFunc(path string, perm fs.FileMode, fill func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+tmpInfix+"*")
	if err != nil {
		return fmt.Errorf("atomicfile: create temp for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; Chmod sets the caller's mode exactly
	// (the umask does not apply), before any byte is in it.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: chmod %s: %w", tmp, err)
	}
	if err := fill(f); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: rename to %s: %w", path, err)
	}
	// The new content is in place; only its durability is at stake now.
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: %s replaced but not durable: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory, making the creation, rename or removal of
// its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// RemoveTemps removes the temporary files that interrupted writes of path
// left behind. Call it only while no other write of path can be under way
// (for example when the file's owner opens its directory).
func RemoveTemps(path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), base+tmpInfix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("atomicfile: remove temps of %s: %w", path, err)
	}
	return nil
}
