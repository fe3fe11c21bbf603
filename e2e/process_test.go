package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	wexec "github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

var wharfBin string

func TestMain(m *testing.M) {
	agent.Reexec() // this binary also supervises the exec driver's instances
	// Parts built without a logger (drivers made in a test's NewDriver) log
	// to the default one: only their warnings are worth a test's output.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	dir, err := os.MkdirTemp("", "wharf-e2e-bin")
	if err != nil {
		panic(err)
	}
	wharfBin = filepath.Join(dir, "wharf")
	// Built as make build builds it: static, so that wharf dev can put it
	// in a FROM scratch image, and stripped (the installs of provisioned
	// machines download it).
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", wharfBin, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build wharf: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	drivertest.Cleanup()
	os.Exit(code)
}

// freePorts returns n distinct loopback ports, each free for both TCP
// and UDP when picked (a hub listens on both: QUIC and gossip are UDP).
// They are picked below the kernel's ephemeral range: a port from
// that range, free a moment ago, is what the next client socket of any
// process (thousands of QUIC agents, say) may be given before the
// process the test starts binds it.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := portPickRange()
	pickedMu.Lock()
	defer pickedMu.Unlock()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			t.Fatalf("no %d free ports in %d-%d", n, lo, hi)
		}
		p := lo + rand.IntN(hi-lo)
		if picked[p] || !portFree(p) {
			continue
		}
		picked[p] = true
		ports = append(ports, p)
	}
	return ports
}

// picked are the ports freePorts has handed out in this process: each
// only once, so that parallel tests never share one.
var (
	pickedMu sync.Mutex
	picked   = map[int]bool{}
)

// portPickRange is where freePorts picks: the 12,000 ports below the
// ephemeral range's start (20768-32767 when it starts at 32768, or the
// kernel does not say).
func portPickRange() (lo, hi int) {
	start := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 2048 {
				start = v
			}
		}
	}
	return max(1024, start-12000), start
}

func portFree(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// proc is a wharf process the test started; it is killed at cleanup.
type proc struct {
	cmd  *exec.Cmd
	args []string
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{args: args, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(wharfBin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(); p.wait(t) })
	return p
}

// mustRun fails the test at once, with the process's output, when it
// has exited: nothing a test then waits for can happen.
func (p *proc) mustRun(t *testing.T, name string) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited: %v\n%s", name, p.cmd.ProcessState, p.out.String())
	default:
	}
}

// kill sends SIGKILL to the process the test started (by its PID).
func (p *proc) kill() { _ = p.cmd.Process.Signal(syscall.SIGKILL) }

func (p *proc) wait(t *testing.T) {
	select {
	case <-p.done:
	case <-time.After(deadline.Scale(20 * time.Second)):
		t.Errorf("wharf %v did not exit", p.args)
	}
}

// cli runs the wharf CLI and returns its stdout, stderr and exit code.
func cli(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline.Scale(30*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, wharfBin, args...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run wharf %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

func getJSON(url string, out any) error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// waitFor polls cond until it holds; the deadline is timeout stretched
// by deadline.Scale for a slow or loaded machine.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = deadline.Scale(timeout)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout.Round(time.Millisecond), what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestThreeNodeClusterSurvivesKill9 follows the README: three `wharf hub`
// processes with one cluster key, bootstrap, the CLI against them, kill -9
// of the leader, a restart that catches up.
func TestThreeNodeClusterSurvivesKill9(t *testing.T) {
	keyOut, _, code := cli(t, nil, "keygen")
	if code != 0 {
		t.Fatalf("keygen exit %d", code)
	}
	env := []string{"WHARF_CLUSTER_KEY=" + strings.TrimSpace(keyOut)}
	ports := freePorts(t, 12)
	dir := t.TempDir()
	type node struct {
		name string
		http string
		args []string
		p    *proc
	}
	var nodes []*node
	for i := 0; i < 3; i++ {
		pp := ports[i*4:]
		n := &node{name: fmt.Sprintf("hub%d", i+1), http: fmt.Sprintf("127.0.0.1:%d", pp[0])}
		n.args = []string{"hub", "--node-name", n.name, "--data-dir", filepath.Join(dir, n.name),
			"--datacenter", fmt.Sprintf("dc%d", i+1), "--bootstrap-expect", "3",
			"--join", fmt.Sprintf("127.0.0.1:%d", ports[3]),
			"--http-addr", n.http, "--quic-addr", fmt.Sprintf("127.0.0.1:%d", pp[1]),
			"--raft-addr", fmt.Sprintf("127.0.0.1:%d", pp[2]), "--gossip-addr", fmt.Sprintf("127.0.0.1:%d", pp[3])}
		n.p = start(t, env, n.args...)
		nodes = append(nodes, n)
	}
	leaderOf := func() *node {
		for _, n := range nodes {
			var st apitypes.Status
			if n.p == nil || getJSON("http://"+n.http+"/v1/status", &st) != nil || st.State != "leader" {
				continue
			}
			return n
		}
		return nil
	}
	waitFor(t, 30*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			n.p.mustRun(t, n.name)
		}
		return leaderOf() != nil
	})

	addr := "http://" + nodes[1].http
	out, errOut, code := cli(t, []string{"WHARF_ADDR=" + addr}, "bootstrap", "-o", "json")
	if code != 0 {
		t.Fatalf("bootstrap: exit %d: %s", code, errOut)
	}
	var boot apitypes.BootstrapResponse
	if err := json.Unmarshal([]byte(out), &boot); err != nil || boot.Token == "" {
		t.Fatalf("bootstrap output %q: %v", out, err)
	}
	if _, errOut, code := cli(t, []string{"WHARF_ADDR=" + addr}, "bootstrap"); code != 1 || errOut == "" {
		t.Fatalf("second bootstrap: exit %d, stderr %q; want 1 with the server's message", code, errOut)
	}
	cenv := []string{"WHARF_ADDR=" + addr, "WHARF_TOKEN=" + boot.Token}
	mustCLI := func(env []string, args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, env, args...)
		if code != 0 {
			t.Fatalf("wharf %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	mustCLI(cenv, "tenant", "create", "acme")
	mustCLI(cenv, "pool", "create", "aws-bj", "--datacenter", "dc1")
	mustCLI(cenv, "app", "deploy", "hello", "--image", "hello:1", "--instances", "2", "--tenant", "acme", "--detach")
	var jt apitypes.JoinToken
	if out := mustCLI(cenv, "join-token", "create", "--pool", "aws-bj", "--uses", "3", "-o", "json"); json.Unmarshal([]byte(out), &jt) != nil || !strings.HasPrefix(jt.Token, "WJ1.") || jt.Uses != 3 {
		t.Fatalf("join-token create: %q", out)
	}
	if out := mustCLI(cenv, "join-token", "ls"); !strings.Contains(out, jt.ID) {
		t.Fatalf("join-token ls does not list %s:\n%s", jt.ID, out)
	}
	if _, _, code := cli(t, cenv, "tenant", "create", "acme"); code != 1 {
		t.Fatalf("duplicate tenant: exit %d, want 1", code)
	}
	if _, _, code := cli(t, cenv, "tenant", "create"); code != 2 {
		t.Fatalf("missing argument: exit %d, want 2", code)
	}
	if _, _, code := cli(t, cenv, "tenant", "frobnicate"); code != 2 {
		t.Fatalf("unknown verb: exit %d, want 2", code)
	}

	// kill -9 the leader; the others elect a new one and keep serving.
	old := leaderOf()
	old.p.kill()
	old.p.wait(t)
	old.p = nil
	t0 := time.Now()
	waitFor(t, 15*time.Second, "a new leader", func() bool { return leaderOf() != nil })
	t.Logf("new leader %s %s after kill -9 of %s", leaderOf().name, time.Since(t0), old.name)
	var live *node
	for _, n := range nodes {
		if n.p != nil {
			live = n
		}
	}
	lenv := []string{"WHARF_ADDR=http://" + live.http, "WHARF_TOKEN=" + boot.Token}
	mustCLI(lenv, "app", "scale", "hello", "5", "--tenant", "acme", "--detach")
	out = mustCLI(lenv, "app", "show", "hello", "--tenant", "acme", "-o", "json")
	var app apitypes.App
	if err := json.Unmarshal([]byte(out), &app); err != nil || app.Instances == nil || *app.Instances != 5 {
		t.Fatalf("app after failover: %q (%v)", out, err)
	}

	// Restart the killed node with the same command line: it catches up.
	old.p = start(t, env, old.args...)
	oenv := []string{"WHARF_ADDR=http://" + old.http, "WHARF_TOKEN=" + boot.Token}
	waitFor(t, 20*time.Second, "the restarted node to catch up", func() bool {
		out, _, code := cli(t, oenv, "app", "show", "hello", "--tenant", "acme", "--stale", "-o", "json")
		var a apitypes.App
		return code == 0 && json.Unmarshal([]byte(out), &a) == nil && a.Instances != nil && *a.Instances == 5
	})
}

var tokenLine = regexp.MustCompile(`WHARF_TOKEN=(\S+)`)

// TestDevPrintsAddressAndToken runs `wharf dev` as `make run` does and uses
// the CLI against it with the printed address and token; a second run over
// the same data dir prints the same token.
func TestDevPrintsAddressAndToken(t *testing.T) {
	dir := t.TempDir()
	// Registered before the processes (so it runs after they are killed):
	// the instance the test deploys on one of its two agents is stopped
	// even when the test fails before scaling it to 0.
	stopStrays(t, func() []string { return []string{dir} })
	stopLeftovers(t, func() []driver.Driver {
		var ds []driver.Driver
		for _, agentDir := range []string{filepath.Join(dir, "wharf-data", "agent"), filepath.Join(dir, "agent")} {
			b, err := os.ReadFile(filepath.Join(agentDir, "host-id"))
			if err != nil {
				continue // never enrolled: it started nothing
			}
			id := strings.TrimSpace(string(b))
			if d, err := wexec.New(wexec.Config{HostID: id, DataDir: agentDir}); err == nil {
				ds = append(ds, d)
			}
			if d, err := docker.New(docker.Config{HostID: id}); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				if d.Ping(ctx) == nil {
					ds = append(ds, d)
				} else {
					d.Close()
				}
				cancel()
			}
		}
		return ds
	})
	port := freePorts(t, 1)[0]
	addr := fmt.Sprintf("http://127.0.0.1:%d", port)
	run := func() (string, *proc) {
		p := start(t, nil, "dev", "--driver", "exec", "--data-dir", filepath.Join(dir, "wharf-data"), "--http-addr", fmt.Sprintf("127.0.0.1:%d", port))
		var tok string
		waitFor(t, 30*time.Second, "wharf dev to print a token", func() bool {
			m := tokenLine.FindStringSubmatch(p.out.String())
			if m != nil {
				tok = m[1]
			}
			return tok != ""
		})
		if !strings.Contains(p.out.String(), addr) {
			t.Fatalf("wharf dev did not print the API address %s:\n%s", addr, p.out.String())
		}
		return tok, p
	}
	tok, p := run()
	env := []string{"WHARF_ADDR=" + addr, "WHARF_TOKEN=" + tok}
	out, errOut, code := cli(t, env, "pool", "ls", "-o", "json")
	if code != 0 {
		t.Fatalf("pool ls: exit %d %s", code, errOut)
	}
	var pools []apitypes.Pool
	if err := json.Unmarshal([]byte(out), &pools); err != nil || len(pools) != 1 || pools[0].Name != "default" {
		t.Fatalf("pools %q (%v): want the default pool", out, err)
	}
	// Prometheus metrics need no token and include the API's own series.
	resp, err := http.Get(addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `wharf_api_request_duration_seconds_count{code="200",route="GET /v1/pools"}`) {
		t.Fatalf("/metrics: %d, missing the API latency series:\n%.2000s", resp.StatusCode, body)
	}
	// The hub serves the installer and its own binary, without a token.
	resp, err = http.Get(addr + "/install.sh")
	if err != nil {
		t.Fatal(err)
	}
	script, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(script), `HUB_URL="`+addr+`"`) || !strings.Contains(string(script), `HUB_GATEWAYS="127.0.0.1:7481"`) {
		t.Fatalf("/install.sh: %d\n%s", resp.StatusCode, script)
	}
	resp, err = http.Get(addr + "/download/wharf-linux-amd64")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if st, _ := os.Stat(wharfBin); resp.StatusCode != 200 || n != st.Size() {
		t.Fatalf("/download: %d, %d bytes, want the %d-byte binary", resp.StatusCode, n, st.Size())
	}
	// wharf dev runs an agent of its own, in pool default.
	waitFor(t, 20*time.Second, "the dev agent's host to be listed ready", func() bool {
		out, _, code := cli(t, env, "host", "ls", "-o", "json")
		var hosts []apitypes.Host
		return code == 0 && json.Unmarshal([]byte(out), &hosts) == nil && len(hosts) == 1 && hosts[0].Name == "dev" && hosts[0].Pool == "default" && hosts[0].State == "ready"
	})
	// Another agent enrols with a join token over QUIC and its host shows up.
	var jt apitypes.JoinToken
	out, errOut, code = cli(t, env, "join-token", "create", "--pool", "default", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &jt) != nil {
		t.Fatalf("join-token create: %d %q %q", code, out, errOut)
	}
	start(t, nil, "agent", "--hub", "127.0.0.1:7481", "--token", jt.Token, "--data-dir", filepath.Join(dir, "agent"), "--name", "dev-agent",
		"--gossip-addr", "127.0.0.1:0", "--local-addr", "127.0.0.1:0", "--router-http-addr", "127.0.0.1:0", "--router-https-addr", "")
	waitFor(t, 20*time.Second, "the agent's host to be listed ready", func() bool {
		out, _, code := cli(t, env, "host", "ls", "-o", "json")
		var hosts []apitypes.Host
		if code != 0 || json.Unmarshal([]byte(out), &hosts) != nil || len(hosts) != 2 {
			return false
		}
		for _, h := range hosts {
			if h.State != "ready" {
				return false
			}
		}
		return true
	})
	// An app deployed in the dev tenant answers at once through the dev
	// agent's router: http://hello.dev.localhost:7080/.
	// (The dev agent runs the exec driver here, so the app is a command.)
	deploy := []string{"app", "deploy", "hello", "--port", "8080", "--health-path", "/healthz", "--tenant", "dev",
		"--command", drivertest.BuildTestApp(t)}
	if out, errOut, code := cli(t, env, deploy...); code != 0 {
		t.Fatalf("deploy: %d %q %q", code, out, errOut)
	}
	waitFor(t, 60*time.Second, "hello through the dev router", func() bool {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:7080/", nil)
		req.Host = "hello.dev.localhost:7080"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.HasPrefix(string(b), "version=")
	})
	// Exec instances outlive their agent by design: stop it first.
	if out, errOut, code := cli(t, env, "app", "scale", "hello", "0", "--tenant", "dev"); code != 0 {
		t.Fatalf("app scale: %d %q %q", code, out, errOut)
	}
	waitFor(t, 30*time.Second, "hello's instance gone", func() bool {
		out, _, code := cli(t, env, "app", "instances", "hello", "--tenant", "dev", "-o", "json")
		return code == 0 && (strings.TrimSpace(out) == "[]" || strings.TrimSpace(out) == "null")
	})
	// The dev agent answers on its local address.
	resp, err = http.Get("http://127.0.0.1:7485/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("dev agent /healthz: %d", resp.StatusCode)
	}
	// Ctrl-C stops it cleanly; a second run prints the same token.
	_ = p.cmd.Process.Signal(os.Interrupt)
	p.wait(t)
	tok2, _ := run()
	if tok2 != tok {
		t.Fatalf("second run printed token %q, first %q", tok2, tok)
	}
}
