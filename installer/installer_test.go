package installer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// runScript fetches install.sh from a test hub and runs it with sh in a
// temporary root where systemd runs (a fake systemctl that records its
// arguments, and the root's /run/systemd/system).
func runScript(t *testing.T, args ...string) (root, systemctlLog, output string, err error) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	srv := httptest.NewServer(Handler(func(string) []string { return []string{"10.1.0.1:7481", "10.1.0.2:7481"} }, ""))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	bin := filepath.Join(dir, "bin")
	systemctlLog = filepath.Join(dir, "systemctl.log")
	os.MkdirAll(bin, 0o755)
	os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755)
	fake := "#!/bin/sh\necho \"$@\" >> " + systemctlLog + "\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := exec.Command("curl", "-sfL", srv.URL+"/install.sh").Output()
	if err != nil {
		t.Fatalf("GET /install.sh: %v", err)
	}
	cmd := exec.Command("sh", append([]string{"-s", "-"}, args...)...)
	cmd.Stdin = strings.NewReader(string(script))
	cmd.Env = append(os.Environ(), "WHARF_ROOT="+root, "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	return root, systemctlLog, string(out), err
}

func TestInstallScript(t *testing.T) {
	root, sysLog, out, err := runScript(t, "--token", "WJ1.abc.def.ghi", "--name", "web-1", "--labels", "ssd=yes", "--machine-id", "m-123")
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	exe, _ := os.Executable()
	want, _ := os.Stat(exe)
	got, err := os.Stat(filepath.Join(root, "usr/local/bin/wharf"))
	if err != nil || got.Size() != want.Size() || got.Mode().Perm() != 0o755 {
		t.Fatalf("installed binary %v %v, want %d bytes, 0755", got, err, want.Size())
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/wharf-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ExecStart=/usr/local/bin/wharf agent", "--token WJ1.abc.def.ghi", "--hub 10.1.0.1:7481", "--hub 10.1.0.2:7481", "--name web-1", "--labels ssd=yes", "--machine-id m-123", "Restart=always", "KillMode=process"} {
		if !strings.Contains(string(unit), s) {
			t.Errorf("unit lacks %q:\n%s", s, unit)
		}
	}
	if st, _ := os.Stat(filepath.Join(root, "etc/systemd/system/wharf-agent.service")); st.Mode().Perm() != 0o600 {
		t.Errorf("unit mode %v: it holds the token, want 0600", st.Mode().Perm())
	}
	calls, _ := os.ReadFile(sysLog)
	if string(calls) != "daemon-reload\nenable wharf-agent.service\nrestart wharf-agent.service\n" {
		t.Fatalf("systemctl calls %q", calls)
	}
	if id, err := os.ReadFile(filepath.Join(root, "var/lib/wharf-agent/machine-id")); err != nil || string(id) != "m-123\n" {
		t.Fatalf("machine-id file %q %v", id, err)
	}
	if strings.Contains(out, "WJ1.") {
		t.Fatalf("install.sh printed the join token:\n%s", out)
	}

	// The uninstaller stops and disables the unit, then removes it all.
	os.Remove(sysLog)
	un := exec.Command(filepath.Join(root, "usr/local/bin/wharf-agent-uninstall"))
	un.Env = append(os.Environ(), "PATH="+filepath.Join(filepath.Dir(sysLog), "bin")+":"+os.Getenv("PATH"))
	if out, err := un.CombinedOutput(); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if calls, _ := os.ReadFile(sysLog); string(calls) != "disable --now wharf-agent.service\ndaemon-reload\n" {
		t.Fatalf("systemctl calls of the uninstall %q", calls)
	}
	for _, p := range []string{"etc/systemd/system/wharf-agent.service", "usr/local/bin/wharf", "var/lib/wharf-agent"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s is still there after uninstall", p)
		}
	}
}

func TestInstallScriptRefusesBadInput(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--token", "not-a-token"},
		{"--token", "WJ1.x", "--bogus"},
		{"--token", "WJ1.x;touch /tmp/x"},
		{"--token", "WJ1.x", "--name", "a b"},
		{"--token", "WJ1.x", "--machine-id"},
		{"--token", "WJ1.x", "--pool", "--name"},
		{"--token", "WJ1.x", "--root", "relative/dir"},
	} {
		root, sysLog, out, err := runScript(t, args...)
		if err == nil {
			t.Fatalf("install.sh %v succeeded:\n%s", args, out)
		}
		if _, err := os.Stat(filepath.Join(root, "usr/local/bin/wharf")); err == nil {
			t.Errorf("install.sh %v installed a binary anyway", args)
		}
		if _, err := os.Stat(sysLog); err == nil {
			t.Errorf("install.sh %v called systemctl", args)
		}
		if strings.Contains(out, "WJ1.") {
			t.Errorf("install.sh %v printed the token: %s", args, out)
		}
	}
}

func TestScriptRefusesUnsafeAddresses(t *testing.T) {
	if _, err := Script("http://hub:7480", []string{"1.2.3.4:7481; rm -rf /"}); err == nil {
		t.Fatal("an address with shell syntax was accepted")
	}
}

// TestDownloadServesTheGivenBinary: a handler given a binary path serves
// that file, not the running process's executable.
func TestDownloadServesTheGivenBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wharf")
	if err := os.WriteFile(bin, []byte("the wharf binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(func(string) []string { return nil }, bin))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/download/wharf-" + runtime.GOOS + "-" + runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "the wharf binary" {
		t.Fatalf("GET download: %d %q, want 200 and the given file", resp.StatusCode, body)
	}
}
