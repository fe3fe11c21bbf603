package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// names lists the entries of dir, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func TestWriteContentAndMode(t *testing.T) {
	for _, tt := range []struct {
		name string
		perm fs.FileMode
		old  bool // a file is there before
	}{
		{"secret new", 0o600, false},
		{"secret replaces", 0o600, true},
		{"shared new", 0o644, false},
		{"group replaces", 0o640, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.old {
				if err := os.WriteFile(path, []byte("old content that is longer"), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(path, []byte("new"), tt.perm); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != "new" {
				t.Fatalf("content %q, %v", got, err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.perm {
				t.Fatalf("mode %v, want %v", fi.Mode().Perm(), tt.perm)
			}
			if n := names(t, dir); !slices.Equal(n, []string{"f"}) {
				t.Fatalf("directory holds %v", n)
			}
		})
	}
}

func TestFailedWriteKeepsOldAndLeavesNoTemp(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, path string)
		fill  func(w io.Writer) error
		is    error
	}{
		{"writer fails midway", nil, func(w io.Writer) error {
			if _, err := w.Write([]byte("half of the new")); err != nil {
				return err
			}
			return boom
		}, boom},
		{"rename onto a directory fails", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(path, "child"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state")
			if err := Write(path, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, path)
			}
			before := names(t, dir)
			err := WriteFunc(path, 0o600, tt.fill)
			if err == nil {
				t.Fatal("write succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v does not wrap %v", err, tt.is)
			}
			if n := names(t, dir); !slices.Equal(n, before) {
				t.Fatalf("directory holds %v, before %v", n, before)
			}
			if tt.setup == nil {
				if got, err := os.ReadFile(path); err != nil || string(got) != "old" {
					t.Fatalf("old content lost: %q %v", got, err)
				}
			}
		})
	}
}

func TestWriteIntoMissingDir(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "nope", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if n := names(t, dir); len(n) != 0 {
		t.Fatalf("directory holds %v", n)
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := Write(path, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	// What crashed writes leave, and neighbours that must stay.
	for _, n := range []string{"state.tmp123", "state.tmp", "other.tmp1", "stat.tmp2", "state2"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveTemps(path); err != nil {
		t.Fatal(err)
	}
	if n := names(t, dir); !slices.Equal(n, []string{"other.tmp1", "stat.tmp2", "state", "state2"}) {
		t.Fatalf("directory holds %v", n)
	}
	if err := RemoveTemps(filepath.Join(dir, "missing", "f")); err != nil {
		t.Fatalf("missing directory: %v", err)
	}
}
