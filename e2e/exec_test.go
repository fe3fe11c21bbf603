package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	wharfcli "github.com/wharf-platform/wharf/pkg/cli"
	"github.com/wharf-platform/wharf/pkg/client"
)

// lockedBuf is a buffer the test reads while a terminal's reader writes.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAppExec: `wharf app exec` through a 3-node hub cluster into a Docker
// container (on a terminal the test drives through a pty: raw mode, its
// size, a resize) and into an exec-driver instance; exit codes propagate
// from whichever node the CLI asks (the others proxy to the node the
// agent is connected to); a viewer is refused with 255; every exec is in
// the audit log with its command.
func TestAppExec(t *testing.T) {
	image := drivertest.BuildTestAppImage(t, dockerDaemon(t).Client())
	bin := drivertest.BuildTestApp(t)
	c, admin, adminToken := newCluster(t, hubtest.Options{}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})

	procDir := t.TempDir()
	drivers := map[string]func(string) (driver.Driver, error){
		"docker": func(hostID string) (driver.Driver, error) {
			return docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
		},
		"exec": func(hostID string) (driver.Driver, error) {
			return exec.New(exec.Config{HostID: hostID, DataDir: procDir, ShimEnv: []string{"GORACE=atexit_sleep_ms=0"}})
		},
	}
	agents := map[string]*agent.Agent{}
	stopStrays(t, func() []string { return []string{procDir} })
	stopLeftovers(t, func() []driver.Driver {
		var ds []driver.Driver
		for name, ag := range agents {
			if id := ag.HostID(); id != "" {
				if d, err := drivers[name](id); err == nil {
					ds = append(ds, d)
				}
			}
		}
		return ds
	})
	for _, name := range []string{"docker", "exec"} {
		dir := t.TempDir()
		if name == "exec" {
			dir = procDir
		}
		agents[name], _ = runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: name, Drivers: []string{name}, NewDriver: drivers[name]})
	}
	w := &client.WriteOptions{Tenant: "acme"}
	q := &client.QueryOptions{Tenant: "acme"}
	for _, spec := range []apitypes.AppSpec{
		{Name: "box", Image: image, Instances: intp(1), Ports: []apitypes.Port{{ContainerPort: 8080}}},
		{Name: "proc", Command: []string{bin}, Instances: intp(1), Ports: []apitypes.Port{{ContainerPort: 8080}}},
	} {
		hubtest.WaitFor(t, 20*time.Second, "app "+spec.Name+" created (hosts enrolled)", func() bool {
			_, err := admin.Apps().Create(ctx, spec, w)
			return err == nil
		})
	}
	hubtest.WaitFor(t, 60*time.Second, "both apps running", func() bool {
		for _, app := range []string{"box", "proc"} {
			is, _, err := admin.Apps().Instances(ctx, app, q)
			if err != nil || len(is) != 1 || is[0].State != "running" {
				return false
			}
		}
		return true
	})
	dev, err := admin.Tokens().Create(ctx, apitypes.TokenRequest{Name: "dev", Role: apitypes.RoleDeveloper, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := admin.Tokens().Create(ctx, apitypes.TokenRequest{Name: "view", Role: apitypes.RoleViewer, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	wharf := func(node int, token string, stdin io.Reader, stdout, stderr io.Writer, args ...string) int {
		args = append([]string{"--addr", c.Nodes[node].URL(), "--token", token, "app", "exec"}, args...)
		return wharfcli.Run(ctx, args, stdin, stdout, stderr, nil, nil)
	}

	// Exit codes propagate, whichever node is asked.
	for node := range c.Nodes {
		var out, errOut bytes.Buffer
		if code := wharf(node, dev.Secret, strings.NewReader(""), &out, &errOut, "proc", "--", "sh", "-c", "echo in $(basename $PWD); echo oops >&2; exit 7"); code != 7 {
			t.Fatalf("node %d: exec driver: exit %d, want 7; stderr %q", node, code, errOut.String())
		}
		if out.String() != "in work\n" || errOut.String() != "oops\n" {
			t.Fatalf("node %d: stdout %q, stderr %q", node, out.String(), errOut.String())
		}
		errOut.Reset()
		if code := wharf(node, dev.Secret, strings.NewReader(""), io.Discard, &errOut, "box", "--", "/testapp", "exec", "exit", "7"); code != 7 {
			t.Fatalf("node %d: docker: exit %d, want 7; stderr %q", node, code, errOut.String())
		}
	}
	// A command that does not exist is the command's failure, as in a
	// shell: 127 from the exec driver, 126 or 127 from Docker.
	if code := wharf(0, dev.Secret, strings.NewReader(""), io.Discard, io.Discard, "proc", "--", "no-such-command"); code != 127 {
		t.Fatalf("a missing command (exec driver): exit %d, want 127", code)
	}
	if code := wharf(0, dev.Secret, strings.NewReader(""), io.Discard, io.Discard, "box", "--", "/no/such/command"); code != 126 && code != 127 {
		t.Fatalf("a missing command (docker): exit %d, want 126 or 127", code)
	}

	// Stdin with -i.
	var out bytes.Buffer
	if code := wharf(1, dev.Secret, strings.NewReader("one\ntwo\n"), &out, io.Discard, "box", "-i", "--", "/testapp", "exec", "cat"); code != 0 || out.String() != "one\ntwo\n" {
		t.Fatalf("-i: exit %d, stdout %q", code, out.String())
	}

	// Failures of Wharf: 255.
	for _, tt := range []struct {
		name, token, want string
		args              []string
	}{
		{"viewer", viewer.Secret, "cannot run commands", []string{"proc", "--", "true"}},
		{"no such instance", dev.Secret, "instance i-none not found", []string{"proc", "--instance", "i-none", "--", "true"}},
		{"no such app", dev.Secret, "app nope not found", []string{"nope", "--", "true"}},
	} {
		var errOut bytes.Buffer
		if code := wharf(0, tt.token, strings.NewReader(""), io.Discard, &errOut, tt.args...); code != wharfcli.ExitWharf || !strings.Contains(errOut.String(), tt.want) {
			t.Fatalf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, errOut.String(), wharfcli.ExitWharf, tt.want)
		}
	}

	// A terminal: the CLI runs on a pty the test drives, in raw mode; the
	// container's terminal has its size, then its new size after SIGWINCH.
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 101, Rows: 31}); err != nil {
		t.Fatal(err)
	}
	var screen lockedBuf
	go io.Copy(&screen, ptmx)
	done := make(chan int, 1)
	go func() { done <- wharf(2, dev.Secret, tty, tty, tty, "box", "-it", "--", "/testapp", "exec", "tty") }()
	// waitSize waits until the command prints the terminal size want. The
	// driver may size the exec's terminal just after the command started
	// (Docker's API of this daemon takes no size at the start), and the
	// command prints its size again for each line it reads: each round
	// sends one.
	waitSize := func(what, want string) {
		t.Helper()
		hubtest.WaitUntil(t, 20*time.Second, what, func() error {
			if strings.Contains(screen.String(), "tty=true size="+want) {
				return nil
			}
			ptmx.Write([]byte("again\r"))
			time.Sleep(100 * time.Millisecond)
			return fmt.Errorf("the screen shows %q", screen.String())
		})
	}
	waitSize("the container's terminal at the pty's size", "101x31")
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 132, Rows: 43}); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	waitSize("the container's terminal resized", "132x43")
	ptmx.Write([]byte("q\r"))
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("tty exec: exit %d; screen %q", code, screen.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the tty exec did not end; screen %q", screen.String())
	}

	// Every exec is audited with its command, refusals too.
	tokAdmin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: adminToken})
	hubtest.WaitUntil(t, 10*time.Second, "the execs in the audit log", func() error {
		es, err := tokAdmin.Audit(ctx, client.AuditQuery{Limit: 1000}, &client.QueryOptions{Tenant: "acme"})
		if err != nil {
			return err
		}
		want := map[string]bool{"proc/ -- sh -c echo": false, "box/ -- /testapp exec tty": false, "viewer 403": false}
		// One entry per exec, each by the node the agent is connected to,
		// which the other two proxied to.
		shells, nodes := 0, map[string]bool{}
		for _, e := range es {
			if !strings.HasSuffix(e.Path, "/exec") {
				continue
			}
			switch {
			case e.Actor == "dev" && e.Status == 101 && strings.HasPrefix(e.Object, "proc/") && strings.Contains(e.Object, " -- sh -c echo in"):
				want["proc/ -- sh -c echo"] = true
				shells++
				nodes[e.Node] = true
			case e.Actor == "dev" && e.Status == 101 && strings.HasPrefix(e.Object, "box/") && strings.HasSuffix(e.Object, " -- /testapp exec tty"):
				want["box/ -- /testapp exec tty"] = true
			case e.Actor == "view" && e.Status == 403:
				want["viewer 403"] = true
			}
		}
		for k, ok := range want {
			if !ok {
				return &apitypes.Error{Message: "no audit entry for " + k}
			}
		}
		if shells != len(c.Nodes) || len(nodes) != 1 {
			return &apitypes.Error{Message: fmt.Sprintf("%d audit entries of the %d shell execs, by nodes %v", shells, len(c.Nodes), nodes)}
		}
		return nil
	})
}
