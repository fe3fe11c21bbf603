package e2e

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestDevQuickStartExec follows the README's Quick start with the exec
// driver: wharf dev, the deploy line it prints, the demo app through the
// router; a restarted wharf dev adopts the instance; wharf dev --clean
// leaves no process behind.
func TestDevQuickStartExec(t *testing.T) {
	d := newDevSetup(t, wharfBin, "exec")
	p := d.start(t)
	body := d.deployAndGet(t, p)
	pids := execPIDs(t, d.dataDir)
	if len(pids) == 0 {
		t.Fatal("no exec instance recorded in the data dir")
	}
	d.restartAdopts(t, p, body)
	if again := execPIDs(t, d.dataDir); fmt.Sprint(again) != fmt.Sprint(pids) {
		t.Fatalf("pids %v after a restart, want the same processes %v", again, pids)
	}
	d.clean(t)
	// Stopped processes may wait a moment as zombies for init to reap them.
	waitFor(t, 10*time.Second, fmt.Sprintf("processes %v gone after wharf dev --clean", pids), func() bool {
		for _, pid := range pids {
			if running(pid) {
				return false
			}
		}
		return true
	})
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(rest, "Z")
}

// TestDevQuickStartDocker is the Quick start with the docker driver: the
// demo runs from a FROM scratch image of the (static) binary; a restarted
// wharf dev adopts the container; a wharf dev of a removed data dir removes
// the containers the earlier one left; --clean leaves no container behind.
// A dynamically linked binary is refused with a clear message.
func TestDevQuickStartDocker(t *testing.T) {
	cli := dockerDaemon(t).Client()
	bin := wharfBin
	if !isStatic(t, bin) {
		dd := filepath.Join(t.TempDir(), "wharf-data")
		_, errOut, code := cliBin(t, bin, nil, "dev", "--driver", "docker", "--data-dir", dd, "--http-addr", "127.0.0.1:1")
		if code != 1 || !strings.Contains(errOut, "dynamically linked") || !strings.Contains(errOut, "CGO_ENABLED=0") {
			t.Fatalf("wharf dev --driver docker of a dynamic binary: exit %d, %q; want 1 and why", code, errOut)
		}
		bin = staticWharf(t)
	}
	d := newDevSetup(t, bin, "docker")
	p := d.start(t)
	removeDemoImage(t, cli, d.dataDir)
	body := d.deployAndGet(t, p)
	if n := len(devContainers(t, cli, d.dataDir)); n != 1 {
		t.Fatalf("%d containers labelled with the data dir, want 1", n)
	}
	d.restartAdopts(t, p, body)

	// The data dir goes without --clean: the next wharf dev of that data
	// dir (a new host) removes what the earlier one left.
	d.stop(t, d.last)
	if err := os.RemoveAll(d.dataDir); err != nil {
		t.Fatal(err)
	}
	p = d.start(t)
	if !strings.Contains(p.out.String(), "Removed 1 container(s)") || len(devContainers(t, cli, d.dataDir)) != 0 {
		t.Fatalf("the earlier dev host's container was not removed:\n%s", p.out.String())
	}
	d.deployAndGet(t, p)
	d.clean(t)
	if cs := devContainers(t, cli, d.dataDir); len(cs) != 0 {
		t.Fatalf("containers left after wharf dev --clean: %v", cs)
	}
}

// removeDemoImage removes, at the end of the test, the demo image wharf dev
// built (named in its manifest), unless a container still uses it.
func removeDemoImage(t *testing.T, cli *client.Client, dataDir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "hello.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, image, ok := strings.Cut(string(b), "\nimage: ")
	image, _, _ = strings.Cut(image, "\n")
	if !ok || !strings.HasPrefix(image, "wharf-demo:") {
		t.Fatalf("no demo image in the manifest:\n%s", b)
	}
	t.Cleanup(func() { cli.ImageRemove(context.Background(), image, client.ImageRemoveOptions{}) })
}

// devSetup is one wharf dev: its binary, data dir and ports.
type devSetup struct {
	bin, dataDir, router string
	args                 []string
	last                 *proc
	env                  []string // WHARF_ADDR and WHARF_TOKEN from the banner
}

func newDevSetup(t *testing.T, bin, driver string) *devSetup {
	t.Helper()
	ports := freePorts(t, 8)
	a := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	d := &devSetup{bin: bin, dataDir: filepath.Join(t.TempDir(), "wharf-data"), router: a(6)}
	d.args = []string{"dev", "--driver", driver, "--data-dir", d.dataDir,
		"--http-addr", a(0), "--quic-addr", a(1), "--raft-addr", a(2), "--gossip-addr", a(3),
		"--agent-gossip-addr", a(4), "--agent-local-addr", a(5), "--router-http-addr", a(6), "--router-https-addr", a(7)}
	// Registered first, so it runs last: after the dev processes are
	// killed, whatever they started goes, also when the test fails.
	t.Cleanup(func() {
		if _, errOut, code := cliBin(t, bin, nil, "dev", "--clean", "--data-dir", d.dataDir); code != 0 {
			t.Errorf("cleanup: wharf dev --clean: exit %d: %s", code, errOut)
		}
	})
	return d
}

// start runs wharf dev and waits for its banner, which must be the first
// thing it prints (nothing of the hub's logs before it).
func (d *devSetup) start(t *testing.T) *proc {
	t.Helper()
	p := &proc{args: d.args, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(d.bin, d.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(); p.wait(t) })
	d.last = p
	waitFor(t, 2*time.Minute, "the wharf dev banner", func() bool {
		select {
		case <-p.done:
			t.Fatalf("wharf dev exited:\n%s", p.out.String())
		default:
		}
		return strings.Contains(p.out.String(), "curl http://")
	})
	out := p.out.String()
	if strings.Contains(out, "level=") {
		t.Errorf("log lines on wharf dev's output:\n%s", out)
	}
	var exports []string
	console := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Console:" {
			console = f[1]
		}
		if f := strings.Fields(line); len(f) > 0 && f[0] == "export" {
			exports = append(exports, line)
			d.env = f[1:]
		}
	}
	if len(exports) != 1 || len(d.env) != 2 || !strings.HasPrefix(d.env[0], "WHARF_ADDR=") || !strings.HasPrefix(d.env[1], "WHARF_TOKEN=") {
		t.Fatalf("want one export line with WHARF_ADDR and WHARF_TOKEN:\n%s", out)
	}
	// The banner's console URL serves the console's sign-in form.
	if console != "http://"+strings.TrimPrefix(d.env[0], "WHARF_ADDR=http://")+"/ui/" {
		t.Fatalf("want a Console: line with the API address + /ui/:\n%s", out)
	}
	resp, err := http.Get(console)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="token"`) {
		t.Fatalf("GET %s answered %d:\n%s", console, resp.StatusCode, page)
	}
	return p
}

// deployAndGet runs the deploy line of the banner and returns the demo's
// answer through the router.
func (d *devSetup) deployAndGet(t *testing.T, p *proc) string {
	t.Helper()
	var deploy []string
	for _, line := range strings.Split(p.out.String(), "\n") {
		if _, cmd, ok := strings.Cut(line, "Deploy the demo app: "); ok {
			deploy = strings.Fields(cmd)[1:] // without the binary
		}
	}
	if want := []string{"app", "deploy", "-f", filepath.Join(d.dataDir, "hello.yaml"), "--tenant", "dev"}; strings.Join(deploy, " ") != strings.Join(want, " ") {
		t.Fatalf("deploy line %q, want %q", deploy, want)
	}
	if _, errOut, code := cliBin(t, d.bin, d.env, deploy...); code != 0 {
		t.Fatalf("wharf %v: exit %d: %s", deploy, code, errOut)
	}
	// The dev pool says what its host runs, so an app it cannot run is
	// refused at deploy instead of pending forever.
	out, errOut, code := cliBin(t, d.bin, d.env, "pool", "show", "default", "-o", "json")
	var pool struct {
		Drivers []string `json:"drivers"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &pool) != nil || len(pool.Drivers) != 1 || pool.Drivers[0] != d.args[2] {
		t.Fatalf("pool default: exit %d, %s %s; want drivers [%s]", code, out, errOut, d.args[2])
	}
	var body string
	waitFor(t, 2*time.Minute, "200 from the demo app through the router", func() bool {
		code, b := getHost("http://"+d.router+"/", "hello.dev.localhost")
		body = b
		return code == 200
	})
	if !strings.Contains(body, "app hello, instance hello-") {
		t.Fatalf("the demo app answered %q", body)
	}
	return body
}

// restartAdopts stops wharf dev (its instance keeps running), starts it
// again and checks that the same instance answers.
func (d *devSetup) restartAdopts(t *testing.T, p *proc, body string) {
	t.Helper()
	d.stop(t, p)
	d.start(t)
	var again string
	waitFor(t, time.Minute, "200 from the demo app after a restart", func() bool {
		code, b := getHost("http://"+d.router+"/", "hello.dev.localhost")
		again = b
		return code == 200
	})
	if again != body {
		t.Fatalf("after a restart the demo app answered %q, want the same instance: %q", again, body)
	}
	out, errOut, code := cliBin(t, d.bin, d.env, "app", "instances", "hello", "--tenant", "dev", "-o", "json")
	var ins []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ins) != nil || len(ins) != 1 || !strings.Contains(body, ins[0].ID) {
		t.Fatalf("instances after a restart: exit %d %s %s; want the one instance that answered %q", code, out, errOut, body)
	}
}

// stop ends wharf dev as Ctrl-C does.
func (d *devSetup) stop(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
}

// clean stops wharf dev and runs wharf dev --clean.
func (d *devSetup) clean(t *testing.T) {
	t.Helper()
	d.stop(t, d.last)
	if out, errOut, code := cliBin(t, d.bin, nil, "dev", "--clean", "--data-dir", d.dataDir); code != 0 || !strings.Contains(out, "runs any more") {
		t.Fatalf("wharf dev --clean: exit %d: %s %s", code, out, errOut)
	}
}

func getHost(url, host string) (int, string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cliBin is cli with another binary.
func cliBin(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run wharf %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// execPIDs are the supervisor and instance pids the exec driver recorded
// under the dev agent's data dir.
func execPIDs(t *testing.T, dataDir string) []int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "agent", "exec", "*", "state.json"))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			PID     int `json:"pid"`
			ShimPID int `json:"shim_pid"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		for _, pid := range []int{st.PID, st.ShimPID} {
			if pid > 0 {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// devContainers are the containers labelled with the dev data dir.
func devContainers(t *testing.T, cli *client.Client, dataDir string) []string {
	t.Helper()
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", "wharf.dev="+dataDir)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

func isStatic(t *testing.T, bin string) bool {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

var static struct {
	once sync.Once
	path string
	err  error
}

// staticWharf builds wharf without cgo (as make build does), once.
func staticWharf(t *testing.T) string {
	t.Helper()
	static.once.Do(func() {
		static.path = filepath.Join(filepath.Dir(wharfBin), "wharf-static")
		cmd := exec.Command("go", "build", "-trimpath", "-o", static.path, "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			static.err = fmt.Errorf("build a static wharf: %v\n%s", err, out)
		}
	})
	if static.err != nil {
		t.Fatal(static.err)
	}
	return static.path
}
