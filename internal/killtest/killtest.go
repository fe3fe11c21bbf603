// Package killtest runs a crash test: it re-executes the running test
// binary as a child that works on a directory until the parent kills it
// with SIGKILL (kill -9) at a point the parent picks from the child's
// output, so the test can check what a crash at that point left on disk.
//
// The child side is the test package's TestMain (Run) or the test itself
// (RunTest): when the environment variable the parent set is present, it
// does its work on the directory named there, printing progress lines to
// stdout, and never returns.
package killtest

import (
	"bufio"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// Child returns the directory a child started by Run works on, or "" in a
// normal test run.
func Child(env string) string { return os.Getenv(env) }

// Run starts the test binary as a child with env set to dir, calls onLine
// with every line the child prints to stdout, kills the child with
// SIGKILL once onLine returns true, and fails the test unless the child
// died of that signal. It returns when the child is gone.
func Run(t testing.TB, env, dir string, onLine func(line string) (kill bool)) {
	t.Helper()
	RunTest(t, "", env, dir, onLine)
}

// RunTest is Run with the child running only the test named test (none
// when empty), which is then the child's side.
func RunTest(t testing.TB, test, env, dir string, onLine func(line string) (kill bool)) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if !killed && onLine(sc.Text()) {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
}
