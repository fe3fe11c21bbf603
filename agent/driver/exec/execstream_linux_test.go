package exec_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
)

// lockedBuffer is a bytes.Buffer a test reads while the driver writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestExecStream(t *testing.T) {
	for _, iso := range []exec.Isolation{exec.IsolationNone, exec.IsolationNamespaces} {
		t.Run(string(iso), func(t *testing.T) {
			if iso == exec.IsolationNamespaces {
				needRoot(t)
			}
			h := &hosts{iso: iso}
			hostID := drivertest.NewID("host-")
			d := h.newExec(t, hostID)
			sp := spec(t, map[string]string{"GREETING": "hi"})
			t.Cleanup(func() { _ = d.Stop(context.Background(), sp.InstanceID, time.Second) })
			if _, err := d.Start(ctx(t), sp); err != nil {
				t.Fatal(err)
			}

			// The instance's environment and working directory; stdout and
			// stderr apart; the exit code.
			var out, errOut bytes.Buffer
			code, err := d.ExecStream(ctx(t), sp.InstanceID, driver.ExecRequest{
				Cmd:    []string{"sh", "-c", `echo "$GREETING $(basename "$PWD")"; echo oops >&2; exit 7`},
				Stdout: &out, Stderr: &errOut,
			})
			if err != nil || code != 7 || out.String() != "hi work\n" || errOut.String() != "oops\n" {
				t.Fatalf("code %d, err %v, stdout %q, stderr %q; want 7, %q, %q", code, err, out.String(), errOut.String(), "hi work\n", "oops\n")
			}

			// A command that does not exist: 127, as in a shell.
			errOut.Reset()
			code, err = d.ExecStream(ctx(t), sp.InstanceID, driver.ExecRequest{Cmd: []string{"no-such-command"}, Stderr: &errOut})
			if err != nil || code != 127 || !strings.Contains(errOut.String(), "no-such-command: command not found") {
				t.Fatalf("a missing command: code %d, err %v, stderr %q", code, err, errOut.String())
			}

			// Stdin until EOF.
			out.Reset()
			code, err = d.ExecStream(ctx(t), sp.InstanceID, driver.ExecRequest{Cmd: []string{"cat"}, Stdin: strings.NewReader("a\nb\n"), Stdout: &out})
			if err != nil || code != 0 || out.String() != "a\nb\n" {
				t.Fatalf("cat: code %d, err %v, stdout %q", code, err, out.String())
			}

			if iso == exec.IsolationNamespaces {
				// Inside the instance: its hostname, its PID namespace (the
				// instance is pid 1 there) and its cgroup.
				out.Reset()
				code, err = d.ExecStream(ctx(t), sp.InstanceID, driver.ExecRequest{
					Cmd:    []string{"sh", "-c", "cat /proc/sys/kernel/hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; grep -c " + sp.InstanceID + " /proc/self/cgroup"},
					Stdout: &out,
				})
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				if err != nil || code != 0 || len(lines) != 3 || lines[0] != sp.InstanceID || !strings.Contains(lines[1], "testapp") || lines[2] == "0" {
					t.Fatalf("in the namespaces: code %d, err %v, output %q", code, err, out.String())
				}
			}

			// A terminal of the asked size, resized.
			inR, inW := io.Pipe()
			defer inW.Close()
			resize := make(chan driver.TermSize, 1)
			var tty lockedBuffer
			done := make(chan error, 1)
			go func() {
				code, err := d.ExecStream(ctx(t), sp.InstanceID, driver.ExecRequest{Cmd: []string{drivertest.BuildTestApp(t), "exec", "tty"},
					TTY: true, Size: driver.TermSize{Cols: 90, Rows: 20}, Resize: resize, Stdin: inR, Stdout: &tty})
				if err == nil && code != 0 {
					err = errors.New("exit code not 0")
				}
				done <- err
			}()
			drivertest.WaitFor(t, 10*time.Second, func() (bool, string) {
				return strings.Contains(tty.String(), "tty=true size=90x20"), tty.String()
			})
			resize <- driver.TermSize{Cols: 120, Rows: 40}
			drivertest.WaitFor(t, 10*time.Second, func() (bool, string) {
				inW.Write([]byte("again\r"))
				time.Sleep(50 * time.Millisecond)
				return strings.Contains(tty.String(), "tty=true size=120x40"), tty.String()
			})
			inW.Write([]byte("q\r"))
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the tty exec did not end: %q", tty.String())
			}

			// Ending ctx kills the command.
			c, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			if _, err := d.ExecStream(c, sp.InstanceID, driver.ExecRequest{Cmd: []string{"sleep", "30"}}); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
				t.Fatalf("a cancelled exec: %v after %s", err, time.Since(start))
			}

			// Another host's driver does not know the instance.
			other := h.newExec(t, drivertest.NewID("host-"))
			if _, err := other.ExecStream(ctx(t), sp.InstanceID, driver.ExecRequest{Cmd: []string{"true"}}); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("another host: %v, want ErrNotFound", err)
			}
		})
	}
}
