package kubeenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Version is the Kubernetes version the harness builds and runs.
const Version = "v1.35.4"

// ErrUnavailable marks a cluster that this machine cannot run (no Go
// toolchain to build the binaries, not root, no containerd, ...). Tests
// skip on it unless WHARF_REQUIRE_KUBE=1, which turns it into a failure.
var ErrUnavailable = errors.New("kubernetes test cluster unavailable")

// binaries are the programs the harness runs from BinDir.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "pause"}

// Required tells whether WHARF_REQUIRE_KUBE=1 is set: a cluster that
// cannot start is then a test failure, never a skip.
func Required() bool { return os.Getenv("WHARF_REQUIRE_KUBE") == "1" }

// Check ends the test according to err from StartShared or BinDir: nothing
// when nil; a skip naming the reason when the machine cannot run a cluster
// and WHARF_REQUIRE_KUBE is not 1, or when real nodes were asked for and
// WHARF_KUBE_REAL_NODE=0 turns them off; a failure otherwise.
func Check(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, errRealNodesOff) {
		t.Skipf("%v", err)
	}
	if errors.Is(err, ErrUnavailable) && !Required() {
		t.Skipf("%v (set WHARF_REQUIRE_KUBE=1 to fail instead)", err)
	}
	t.Fatal(err)
}

// Bin returns the directory holding kube-apiserver, kubectl, etcd and the
// rest (WHARF_KUBE_BIN, default ~/.cache/wharf-kube/v1.35.4), building
// whatever is missing with e2e/kube/build.sh first. It skips the test when
// they cannot be built here, or fails it with WHARF_REQUIRE_KUBE=1.
func Bin(t testing.TB) string {
	t.Helper()
	dir, err := BinDir()
	Check(t, err)
	return dir
}

var binMu sync.Mutex

// BinDir is Bin for code without a testing.TB (TestMain). Its error wraps
// ErrUnavailable when the binaries are missing and cannot be built.
func BinDir() (string, error) {
	binMu.Lock()
	defer binMu.Unlock()
	dir := binCacheDir()
	if missing := missingBinaries(dir); len(missing) == 0 {
		return dir, nil
	}
	script, err := buildScript()
	if err != nil {
		return "", fmt.Errorf("%w: binaries missing in %s and %v", ErrUnavailable, dir, err)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("%w: binaries missing in %s and no go toolchain to build them (%s)", ErrUnavailable, dir, script)
	}
	// The build prints what it builds and how long; show it as it goes,
	// since a cold build takes many minutes.
	var out bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "WHARF_KUBE_BIN="+dir)
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = io.MultiWriter(&out, os.Stderr)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s: %v\n%s", ErrUnavailable, script, err, lastLines(out.String(), 20))
	}
	if missing := missingBinaries(dir); len(missing) > 0 {
		return "", fmt.Errorf("%w: %s ran but %s still missing in %s", ErrUnavailable, script, strings.Join(missing, ", "), dir)
	}
	return dir, nil
}

// binCacheDir is where build.sh puts the binaries.
func binCacheDir() string {
	if d := os.Getenv("WHARF_KUBE_BIN"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "wharf-kube", Version)
}

func missingBinaries(dir string) []string {
	var missing []string
	for _, b := range binaries {
		if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	return missing
}

// buildScript finds e2e/kube/build.sh in the source tree: from the working
// directory (go test runs in the package's directory) up to the module
// root, else beside this file's source.
func buildScript() (string, error) {
	var roots []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			roots = append(roots, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		roots = append(roots, filepath.Join(filepath.Dir(file), "..", ".."))
	}
	for _, r := range roots {
		p := filepath.Join(r, "e2e", "kube", "build.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("e2e/kube/build.sh not found from the working directory")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
