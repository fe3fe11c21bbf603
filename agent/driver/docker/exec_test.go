package docker_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
)

// syncBuffer is a bytes.Buffer that a test may read while the driver writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestExecStream(t *testing.T) {
	cli := daemon(t)
	image := drivertest.BuildTestAppImage(t, cli)
	d := newDriver(t, cli, docker.Config{HostID: drivertest.NewID("host-"), PublishIP: "127.0.0.1"})
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Image: image, Ports: []driver.Port{{ContainerPort: 8080}}}
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })
	if _, err := d.Start(ctx(t), spec); err != nil {
		t.Fatal(err)
	}

	t.Run("stdout and stderr apart, exit code", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code, err := d.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "out"}, Stdout: &out, Stderr: &errOut})
		if err != nil || code != 3 {
			t.Fatalf("code %d, err %v; want 3", code, err)
		}
		if out.String() != "to stdout\n" || errOut.String() != "to stderr\n" {
			t.Fatalf("stdout %q, stderr %q", out.String(), errOut.String())
		}
		code, err = d.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "exit", "7"}})
		if err != nil || code != 7 {
			t.Fatalf("exit 7: code %d, err %v", code, err)
		}
	})

	t.Run("stdin until EOF", func(t *testing.T) {
		var out bytes.Buffer
		code, err := d.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "cat"},
			Stdin: strings.NewReader("hello\nworld\n"), Stdout: &out})
		if err != nil || code != 0 || out.String() != "hello\nworld\n" {
			t.Fatalf("code %d, err %v, stdout %q", code, err, out.String())
		}
	})

	t.Run("tty with resize", func(t *testing.T) {
		inR, inW := io.Pipe()
		defer inW.Close()
		resize := make(chan driver.TermSize, 1)
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			code, err := d.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "tty"},
				TTY: true, Size: driver.TermSize{Cols: 100, Rows: 30}, Resize: resize, Stdin: inR, Stdout: &out})
			if err == nil && code != 0 {
				err = errors.New("exit code not 0")
			}
			done <- err
		}()
		// A size reaches the terminal asynchronously (older daemons set
		// the first one only after the start): ask until it shows.
		sized := func(want string) {
			t.Helper()
			drivertest.WaitFor(t, 10*time.Second, func() (bool, string) {
				inW.Write([]byte("again\r"))
				time.Sleep(50 * time.Millisecond)
				return strings.Contains(out.String(), "tty=true size="+want), out.String()
			})
		}
		sized("100x30")
		resize <- driver.TermSize{Cols: 132, Rows: 43}
		sized("132x43")
		inW.Write([]byte("q\r"))
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the tty exec did not end; output %q", out.String())
		}
	})

	t.Run("a caller that goes away kills the command", func(t *testing.T) {
		c, cancel := context.WithTimeout(ctx(t), time.Second)
		defer cancel()
		if _, err := d.ExecStream(c, spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "sleep", "60"}}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the deadline", err)
		}
		drivertest.WaitFor(t, 10*time.Second, func() (bool, string) {
			top, err := cli.ContainerTop(ctx(t), "wharf-"+spec.InstanceID, client.ContainerTopOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, p := range top.Processes {
				if strings.Contains(strings.Join(p, " "), "exec sleep") {
					return false, "still running: " + strings.Join(p, " ")
				}
			}
			return true, ""
		})
	})

	t.Run("another host's instance is not found", func(t *testing.T) {
		other := newDriver(t, cli, docker.Config{HostID: drivertest.NewID("host-"), PublishIP: "127.0.0.1"})
		_, err := other.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "exit", "0"}})
		if !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
}
