package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// wharfCLI runs the CLI with a deadline of its own (deploys wait for their
// rollout) and returns its stdout, stderr, exit code and run time.
func wharfCLI(t *testing.T, timeout time.Duration, env []string, args ...string) (string, string, int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, wharfBin, args...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run wharf %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code, took
}

// TestCLIDeployWaits runs a hub and an exec agent as processes and
// deploys with the real CLI: a good deploy returns once its instances are
// ready, one whose command cannot start fails with the instance's reason,
// --detach returns at once, scaling to 0 returns once every instance has
// stopped.
func TestCLIDeployWaits(t *testing.T) {
	dir := t.TempDir()
	ports := freePorts(t, 4)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	quicAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	start(t, nil, "hub", "--bootstrap-expect", "1", "--data-dir", filepath.Join(dir, "hub"),
		"--http-addr", httpAddr, "--quic-addr", quicAddr,
		"--raft-addr", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--gossip-addr", fmt.Sprintf("127.0.0.1:%d", ports[3]))
	waitFor(t, 60*time.Second, "the hub to lead", func() bool {
		var st apitypes.Status
		return getJSON("http://"+httpAddr+"/v1/status", &st) == nil && st.State == "leader"
	})
	env := []string{"WHARF_ADDR=http://" + httpAddr, "WHARF_TOKEN="}
	out, errOut, code := cli(t, env, "bootstrap", "-o", "json")
	var boot apitypes.BootstrapResponse
	if code != 0 || json.Unmarshal([]byte(out), &boot) != nil {
		t.Fatalf("bootstrap: %d %q %q", code, out, errOut)
	}
	env = []string{"WHARF_ADDR=http://" + httpAddr, "WHARF_TOKEN=" + boot.Token}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, env, args...)
		if code != 0 {
			t.Fatalf("wharf %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	must("tenant", "create", "acme")
	must("pool", "create", "p1")
	var jt apitypes.JoinToken
	if err := json.Unmarshal([]byte(must("join-token", "create", "--pool", "p1", "-o", "json")), &jt); err != nil {
		t.Fatal(err)
	}
	start(t, nil, "agent", "--hub", quicAddr, "--token", jt.Token, "--data-dir", filepath.Join(dir, "agent"), "--pool", "p1", "--name", "a1",
		"--driver", "exec", "--gossip-addr", "127.0.0.1:0", "--local-addr", "127.0.0.1:0", "--router-http-addr", "127.0.0.1:0", "--router-https-addr", "")
	waitFor(t, 60*time.Second, "the agent's host to be ready", func() bool {
		out, _, code := cli(t, env, "host", "ls", "-o", "json")
		var hosts []apitypes.Host
		return code == 0 && json.Unmarshal([]byte(out), &hosts) == nil && len(hosts) == 1 && hosts[0].State == "ready"
	})
	// Exec instances outlive their agent: stop them first (cleanups run
	// last-registered first, so before the agent is killed). Scaling to 0
	// waits until every instance has stopped; then the apps go.
	apps := []string{"good", "bad", "detached"}
	t.Cleanup(func() {
		for _, a := range apps {
			if _, errOut, code, _ := wharfCLI(t, 2*time.Minute, env, "app", "scale", a, "0", "--tenant", "acme", "--timeout", "90s"); code != 0 && !strings.Contains(errOut, "not found") {
				t.Errorf("cleanup: scale %s to 0: exit %d: %s", a, code, errOut)
			}
			cli(t, env, "app", "rm", a, "--tenant", "acme")
		}
	})
	testapp := drivertest.BuildTestApp(t)
	status := func(app string) appStatusJSON {
		t.Helper()
		var st appStatusJSON
		out := must("app", "status", app, "--tenant", "acme", "-o", "json")
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("app status -o json: %v\n%s", err, out)
		}
		return st
	}

	// A good deploy returns once both instances are ready: the status read
	// right after says so.
	out, errOut, code, took := wharfCLI(t, 3*time.Minute, env, "app", "deploy", "good", "--command", testapp, "--port", "8080", "--health-path", "/healthz",
		"--instances", "2", "--tenant", "acme", "--timeout", "2m")
	if code != 0 || !strings.Contains(out, "2/2 placed, 2/2 started, 2/2 ready") || !strings.Contains(out, "app good version 1: 2 instances ready") {
		t.Fatalf("good deploy: exit %d after %s\n%s%s", code, took, out, errOut)
	}
	t.Logf("good deploy returned after %s:\n%s", took, out)
	if st := status("good"); !st.Done || st.Ready != 2 || st.Wanted != 2 {
		t.Fatalf("after the deploy returned: %+v", st)
	}
	// An update with -o json: stdout is the app alone, the progress on stderr.
	out, errOut, code, _ = wharfCLI(t, 3*time.Minute, env, "app", "deploy", "good", "--command", testapp, "--port", "8080", "--health-path", "/healthz",
		"--env", "V=2", "--tenant", "acme", "-o", "json", "--timeout", "2m")
	var updated apitypes.App
	if code != 0 || json.Unmarshal([]byte(out), &updated) != nil || updated.Version != 2 || !strings.Contains(errOut, "version 2: 2/2 placed, 2/2 started, 2/2 ready") {
		t.Fatalf("update -o json: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}

	// A command that cannot start: exit 1 naming the instance and the
	// driver's message, well before the timeout.
	missing := filepath.Join(dir, "no-such-executable")
	out, errOut, code, took = wharfCLI(t, 3*time.Minute, env, "app", "deploy", "bad", "--command", missing, "--tenant", "acme", "--timeout", "2m")
	if code != 1 || !strings.Contains(errOut, "app bad version 1 cannot run: instance bad-") || !strings.Contains(errOut, missing) || strings.Contains(errOut, "timed out") {
		t.Fatalf("bad deploy: exit %d after %s\n%s%s", code, took, out, errOut)
	}
	if strings.Contains(errOut, apitypes.ReasonStartFailed) {
		t.Logf("bad deploy failed after %s with the reason code:\n%s", took, errOut)
	} else {
		t.Logf("bad deploy failed after %s without a reason code (the hub does not report one yet):\n%s", took, errOut)
	}
	// app status says why too (a replaced instance may not have reported
	// yet: wait for its message).
	waitFor(t, 60*time.Second, "app status of bad to name the missing executable", func() bool {
		st := status("bad")
		return !st.Done && len(st.Problems) > 0 && strings.Contains(st.Problems[0].Message, missing)
	})

	// --detach returns at once, even for a deploy that cannot succeed.
	out, errOut, code, took = wharfCLI(t, time.Minute, env, "app", "deploy", "detached", "--command", missing, "--tenant", "acme", "--detach")
	if code != 0 || strings.TrimSpace(out) != "created app detached version 1" {
		t.Fatalf("--detach: exit %d after %s\n%s%s", code, took, out, errOut)
	}

	// Scaling to 0 returns once every instance has stopped.
	out, errOut, code, took = wharfCLI(t, 3*time.Minute, env, "app", "scale", "good", "0", "--tenant", "acme", "--timeout", "2m")
	if code != 0 || !strings.Contains(out, "app good: every instance stopped") {
		t.Fatalf("scale to 0: exit %d after %s\n%s%s", code, took, out, errOut)
	}
	var is []apitypes.Instance
	if err := json.Unmarshal([]byte(must("app", "instances", "good", "--tenant", "acme", "-o", "json")), &is); err != nil {
		t.Fatal(err)
	}
	for _, i := range is {
		if i.State != "stopped" && i.State != "failed" && i.State != "lost" {
			t.Fatalf("after scale 0 returned, instance %s is %s", i.ID, i.State)
		}
	}
}

// appStatusJSON is what `wharf app status -o json` prints.
type appStatusJSON struct {
	Version  int  `json:"version"`
	Wanted   int  `json:"wanted"`
	Placed   int  `json:"placed"`
	Started  int  `json:"started"`
	Ready    int  `json:"ready"`
	Done     bool `json:"done"`
	Problems []struct {
		ID      string `json:"id"`
		State   string `json:"state"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"problems"`
}
