package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// vcsimBuild builds e2e/cloudsim/vcsim once per test binary, next to
// wharfBin and like it without the race detector: the simulator's own
// races are not this project's to report.
var vcsimBuild = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(filepath.Dir(wharfBin), "vcsim")
	out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "./cloudsim/vcsim").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build vcsim: %v\n%s", err, out)
	}
	return bin, nil
})

// vcsimURL starts a vCenter simulator process that accepts vcUser and
// vcPassword and returns its URL (without credentials). It is stopped at
// the test's cleanup, and stops by itself if the test binary dies (its
// standard input ends).
func vcsimURL(t testing.TB) *url.URL {
	t.Helper()
	bin, err := vcsimBuild()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "VCSIM_USER="+vcUser, "VCSIM_PASSWORD="+vcPassword)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	var line string
	select {
	case line = <-lines:
	case <-time.After(60 * time.Second):
	}
	u, err := url.Parse(strings.TrimSpace(line))
	if line == "" || err != nil || u.Host == "" {
		t.Fatalf("vcsim printed no URL (%q, %v); its stderr:\n%s", line, err, stderr.String())
	}
	return u
}
