package installer

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeAgent is a stand-in for the wharf binary: it appends its arguments to
// a file, records its PID and sleeps, so a test can see it run, kill it and
// watch it come back.
type fakeAgent struct {
	dir string // where args and pid go
}

func (f fakeAgent) script() string {
	// The PID goes first: once a run is counted, its PID is on disk.
	return "#!/bin/sh\necho $$ >" + filepath.Join(f.dir, "agent.pid") +
		"\necho \"$*\" >>" + filepath.Join(f.dir, "agent.args") + "\nexec sleep 120\n"
}

// runs lists the argument lines of every start of the fake agent.
func (f fakeAgent) runs() []string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "agent.args"))
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}

// testHub serves install.sh (embedding its own URL and gateways) and a fake
// agent as the download, like a hub's installer handler.
func testHub(t testing.TB, gateways []string) (*httptest.Server, fakeAgent) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	fa := fakeAgent{dir: t.TempDir()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /install.sh", func(w http.ResponseWriter, r *http.Request) {
		b, err := Script("http://"+r.Host, gateways)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("GET /download/wharf-linux-"+runtime.GOARCH, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(fa.script()))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, fa
}

// fetchScript is install.sh as srv serves it.
func fetchScript(t testing.TB, srv *httptest.Server) string {
	t.Helper()
	b, err := exec.Command("curl", "-sfL", srv.URL+"/install.sh").Output()
	if err != nil {
		t.Fatalf("GET /install.sh: %v", err)
	}
	return string(b)
}

// sh runs script with args, without systemd (a PATH with no systemctl in
// front is not needed: the root has no /run/systemd/system).
func sh(t testing.TB, script string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-s", "-"}, args...)...)
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// killGroupOnCleanup ends the restart loop's process group if a test left
// it running.
func killGroupOnCleanup(t testing.TB, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("no pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file holds %q", b)
	}
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether pid runs; a zombie (an orphan its new parent has
// not reaped yet) does not.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces, the state follows its ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func readPID(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func TestInstallWithoutSystemdSupervisesAndUninstalls(t *testing.T) {
	srv, fa := testHub(t, []string{"10.1.0.1:7481"})
	script := fetchScript(t, srv)
	root := filepath.Join(t.TempDir(), "root")
	data := filepath.Join(root, "var/lib/wharf-agent")

	out, err := sh(t, script, nil, "--root", root, "--token", "WJ1.abc.def", "--pool", "metal", "--machine-id", "m-7", "--hub", "10.9.0.1:7481,10.9.0.2:7481")
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	if strings.Contains(out, "WJ1.") {
		t.Fatalf("install.sh printed the join token:\n%s", out)
	}
	killGroupOnCleanup(t, filepath.Join(data, "agent.pid"))
	loop := readPID(t, filepath.Join(data, "agent.pid"))
	if pgid, err := syscall.Getpgid(loop); err != nil || pgid != loop {
		t.Fatalf("the loop (PID %d) is not its own process group: %d %v", loop, pgid, err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/wharf-agent.service")); err == nil {
		t.Fatal("a systemd unit was written on a host without systemd")
	}
	waitFor(t, "the agent to start", func() bool { return len(fa.runs()) == 1 })
	want := "agent --data-dir " + data + " --token WJ1.abc.def --hub 10.9.0.1:7481 --hub 10.9.0.2:7481 --pool metal --machine-id m-7"
	if got := fa.runs()[0]; got != want {
		t.Fatalf("agent args\n got %s\nwant %s", got, want)
	}
	if id, _ := os.ReadFile(filepath.Join(data, "machine-id")); string(id) != "m-7\n" {
		t.Fatalf("machine-id %q", id)
	}
	if st, err := os.Stat(filepath.Join(data, "run")); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("the loop script (it holds the token) %v %v, want 0700", st, err)
	}

	// The agent dies; the loop starts it again.
	agent := readPID(t, filepath.Join(fa.dir, "agent.pid"))
	if err := syscall.Kill(agent, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent's restart", func() bool { return len(fa.runs()) == 2 })
	if log, _ := os.ReadFile(filepath.Join(root, "var/log/wharf-agent.log")); !strings.Contains(string(log), "restarting") {
		t.Fatalf("the log does not tell of the restart: %q", log)
	}
	agent = readPID(t, filepath.Join(fa.dir, "agent.pid"))

	// Uninstall stops the loop and the agent and removes everything; a
	// second one succeeds too. The installed uninstaller works the same.
	uninstaller := filepath.Join(root, "usr/local/bin/wharf-agent-uninstall")
	if _, err := os.Stat(uninstaller); err != nil {
		t.Fatalf("no uninstaller: %v", err)
	}
	for i := 0; i < 2; i++ {
		out, err := sh(t, script, []string{"WHARF_ROOT=" + root}, "--uninstall")
		if err != nil {
			t.Fatalf("uninstall %d: %v\n%s", i+1, err, out)
		}
	}
	waitFor(t, "the loop and the agent to end", func() bool { return !alive(loop) && !alive(agent) })
	for _, p := range []string{"usr/local/bin/wharf", "var/lib/wharf-agent", "usr/local/bin/wharf-agent-uninstall"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s is still there after uninstall", p)
		}
	}
}

func TestReinstallReplacesTheRunningAgent(t *testing.T) {
	srv, fa := testHub(t, []string{"10.1.0.1:7481"})
	script := fetchScript(t, srv)
	root := filepath.Join(t.TempDir(), "root")
	data := filepath.Join(root, "var/lib/wharf-agent")
	env := []string{"WHARF_ROOT=" + root}
	if out, err := sh(t, script, env, "--token", "WJ1.one"); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	killGroupOnCleanup(t, filepath.Join(data, "agent.pid"))
	first := readPID(t, filepath.Join(data, "agent.pid"))
	if out, err := sh(t, script, env, "--token", "WJ1.two"); err != nil {
		t.Fatalf("reinstall: %v\n%s", err, out)
	}
	killGroupOnCleanup(t, filepath.Join(data, "agent.pid"))
	waitFor(t, "the old loop to end", func() bool { return !alive(first) })
	waitFor(t, "the new agent", func() bool { n := fa.runs(); return len(n) > 0 && strings.Contains(n[len(n)-1], "WJ1.two") })

	// The installed uninstaller needs no hub.
	out, err := exec.Command(filepath.Join(root, "usr/local/bin/wharf-agent-uninstall")).CombinedOutput()
	if err != nil {
		t.Fatalf("wharf-agent-uninstall: %v\n%s", err, out)
	}
	if _, err := os.Stat(data); err == nil {
		t.Fatal("the data dir survived the uninstaller")
	}
}
