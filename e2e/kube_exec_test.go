package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	wharfcli "github.com/wharf-platform/wharf/pkg/cli"
)

// TestKubernetesAppExec: `wharf app exec` into a Pod of a Kubernetes
// member host, through the hub, the cluster agent's QUIC connection and
// the Pod's exec subresource on a real kubelet: stdout and stderr apart,
// the remote exit code as the CLI's, a command the image lacks exits 127,
// stdin with -i, and a terminal (-it on a pty the test drives) with its
// size and a resize.
func TestKubernetesAppExec(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	r := newKubeRig(t)
	ctx := context.Background()
	spec := apitypes.AppSpec{Name: "pod", Image: drivertest.TestAppImage, Instances: intp(1), Pools: []string{"k8s"},
		Ports: []apitypes.Port{{ContainerPort: 8080}}}
	if _, err := r.admin.Apps().Create(ctx, spec, r.w); err != nil {
		t.Fatal(err)
	}
	r.live("the app's Pod running", "pod", 1, 1, func(by map[string][]apitypes.Instance) bool { return len(by["gz"]) == 1 })
	dev, err := r.admin.Tokens().Create(ctx, apitypes.TokenRequest{Name: "dev", Role: apitypes.RoleDeveloper, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	wharf := func(stdin io.Reader, stdout, stderr io.Writer, args ...string) int {
		args = append([]string{"--addr", r.admin.Address(), "--token", dev.Secret, "app", "exec", "pod"}, args...)
		return wharfcli.Run(ctx, args, stdin, stdout, stderr, nil, nil)
	}

	var out, errOut bytes.Buffer
	if code := wharf(strings.NewReader(""), &out, &errOut, "--", "/testapp", "exec", "out"); code != 3 {
		t.Fatalf("exec out: exit %d, want 3; stderr %q", code, errOut.String())
	}
	if out.String() != "to stdout\n" || errOut.String() != "to stderr\n" {
		t.Fatalf("exec out: stdout %q, stderr %q", out.String(), errOut.String())
	}
	errOut.Reset()
	if code := wharf(strings.NewReader(""), io.Discard, &errOut, "--", "/testapp", "exec", "exit", "7"); code != 7 {
		t.Fatalf("exec exit 7: exit %d; stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := wharf(strings.NewReader(""), io.Discard, &errOut, "--", "/bin/sh", "-c", "true"); code != 127 || !strings.Contains(errOut.String(), "/bin/sh") {
		t.Fatalf("a command the image lacks: exit %d, stderr %q; want 127 and the reason", code, errOut.String())
	}
	out.Reset()
	if code := wharf(strings.NewReader("one\ntwo\n"), &out, io.Discard, "-i", "--", "/testapp", "exec", "cat"); code != 0 || out.String() != "one\ntwo\n" {
		t.Fatalf("-i: exit %d, stdout %q", code, out.String())
	}

	// A terminal: the CLI runs on a pty the test drives, in raw mode; the
	// Pod's terminal has its size, then its new size after SIGWINCH.
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
	go func() { done <- wharf(tty, tty, tty, "-it", "--", "/testapp", "exec", "tty") }()
	hubtest.WaitFor(t, 30*time.Second, "the Pod's terminal at the pty's size", func() bool {
		ptmx.Write([]byte("again\r"))
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(screen.String(), "tty=true size=101x31")
	})
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 132, Rows: 43}); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	hubtest.WaitFor(t, 20*time.Second, "the Pod's terminal resized", func() bool {
		ptmx.Write([]byte("again\r"))
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(screen.String(), "tty=true size=132x43")
	})
	ptmx.Write([]byte("q\r"))
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("tty exec: exit %d; screen %q", code, screen.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the tty exec did not end; screen %q", screen.String())
	}
}
