package installer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stallingHub is a test hub whose first stalls downloads (every one when
// stalls < 0) send a little of the binary and then nothing more, like a
// hub node that hangs mid-download; the others get a fake agent. It
// serves install.sh too.
func stallingHub(t testing.TB, stalls int) (*httptest.Server, fakeAgent, *atomic.Int32) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	fa := fakeAgent{dir: t.TempDir()}
	release := make(chan struct{})
	var stalled atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /install.sh", func(w http.ResponseWriter, r *http.Request) {
		b, err := Script("http://"+r.Host, []string{"10.1.0.1:7481"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("GET /download/wharf-linux-"+runtime.GOARCH, func(w http.ResponseWriter, r *http.Request) {
		if stalls < 0 || int(stalled.Load()) < stalls {
			stalled.Add(1)
			w.Header().Set("Content-Length", "100000000")
			w.Write(make([]byte, 64<<10))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.Write([]byte(fa.script()))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before Close, which waits for handlers
	return srv, fa, &stalled
}

// runBounded runs name with args and env in at most limit, failing the
// test beyond that (a stalled download would otherwise hang it).
func runBounded(t testing.TB, limit time.Duration, env []string, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v (a stalled download?):\n%s", name, limit, out)
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return string(out)
}

// TestInstallAbandonsAStalledDownload: with one hub (curl | sh), a
// download that stalls is given up after WHARF_STALL_SECONDS and tried
// again.
func TestInstallAbandonsAStalledDownload(t *testing.T) {
	srv, fa, stalled := stallingHub(t, 1)
	root := filepath.Join(t.TempDir(), "root")
	out := runBounded(t, 30*time.Second, []string{"WHARF_ROOT=" + root, "WHARF_STALL_SECONDS=1"}, fetchScript(t, srv),
		"sh", "-s", "-", "--token", "WJ1.abc")
	killGroupOnCleanup(t, filepath.Join(root, "var/lib/wharf-agent/agent.pid"))
	if stalled.Load() != 1 || !strings.Contains(out, "download from "+srv.URL+" failed") {
		t.Fatalf("the stalled download (%d) was not reported:\n%s", stalled.Load(), out)
	}
	waitFor(t, "the agent to start", func() bool { return len(fa.runs()) == 1 })
}

// TestInstallTriesTheNextHub: install.sh downloads from its --hub-url
// list in order, leaving a hub that stalls for the next.
func TestInstallTriesTheNextHub(t *testing.T) {
	stalling, _, stalled := stallingHub(t, -1)
	good, fa := testHub(t, []string{"10.1.0.1:7481"})
	root := filepath.Join(t.TempDir(), "root")
	out := runBounded(t, 30*time.Second, []string{"WHARF_ROOT=" + root, "WHARF_STALL_SECONDS=1"}, fetchScript(t, stalling),
		"sh", "-s", "-", "--token", "WJ1.abc", "--hub-url", stalling.URL, "--hub-url", good.URL+"/", "--hub-url", stalling.URL+"/")
	killGroupOnCleanup(t, filepath.Join(root, "var/lib/wharf-agent/agent.pid"))
	if stalled.Load() != 1 {
		t.Fatalf("the first hub was asked %d times, want once:\n%s", stalled.Load(), out)
	}
	if !strings.Contains(out, " download from "+stalling.URL+" failed; trying the next hub") || !strings.Contains(out, "wharf-linux-"+runtime.GOARCH+" from "+good.URL+":") {
		t.Fatalf("the install did not go from the stalled hub to the next:\n%s", out)
	}
	waitFor(t, "the agent to start", func() bool { return len(fa.runs()) == 1 })
}

// TestCloudConfigGetsPastAStalledHub: cloud-init's install, starting at
// a hub whose downloads stall, installs from the next one within seconds.
func TestCloudConfigGetsPastAStalledHub(t *testing.T) {
	stalling, _, _ := stallingHub(t, -1)
	good, fa := testHub(t, []string{"10.1.0.1:7481"})
	var cmdline string
	for i := 0; cmdline == ""; i++ {
		c, err := InstallCommand(Join{HubURLs: []string{stalling.URL, good.URL}, JoinToken: "WJ1.x", MachineID: "m-" + string(rune('a'+i)), Rounds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Index(c, stalling.URL) < strings.Index(c, good.URL) {
			cmdline = c // one that starts at the stalling hub
		}
	}
	root := filepath.Join(t.TempDir(), "root")
	runBounded(t, 30*time.Second, []string{"WHARF_ROOT=" + root, "WHARF_STALL_SECONDS=1"}, "", "sh", "-c", cmdline)
	killGroupOnCleanup(t, filepath.Join(root, "var/lib/wharf-agent/agent.pid"))
	waitFor(t, "the agent to start", func() bool { return len(fa.runs()) == 1 })
}

// TestInstallCommandSpreadsHubs: machines start their installs at
// different hubs, and each one's command names every hub.
func TestInstallCommandSpreadsHubs(t *testing.T) {
	urls := []string{"http://10.0.0.1:7480", "http://10.0.0.2:7480", "http://10.0.0.3:7480"}
	firsts := map[string]bool{}
	for i := 0; i < 30; i++ {
		c, err := InstallCommand(Join{HubURLs: urls, JoinToken: "WJ1.x", MachineID: "m-" + strings.Repeat("x", i)})
		if err != nil {
			t.Fatal(err)
		}
		loop, _, _ := strings.Cut(strings.SplitN(c, "for u in ", 2)[1], ";")
		firsts[strings.Fields(loop)[0]] = true
		for _, u := range urls {
			if !strings.Contains(loop, u) || !strings.Contains(c, "--hub-url '"+u+"'") {
				t.Fatalf("the command lacks hub %s:\n%s", u, c)
			}
		}
	}
	if len(firsts) != len(urls) {
		t.Fatalf("30 machines started at %d of %d hubs: %v", len(firsts), len(urls), firsts)
	}
}
