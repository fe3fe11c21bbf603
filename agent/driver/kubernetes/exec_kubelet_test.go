package kubernetes_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/kubernetes"
)

// TestExecStreamKubelet runs ExecStream against a Pod on the shared
// cluster's real node: the API server upgrades the exec subresource and
// proxies it to the kubelet, which runs the command through its
// containerd. The image has no shell; the test app's exec probes stand in.
func TestExecStreamKubelet(t *testing.T) {
	c := kube(t)
	image := testImage(t, c)
	d := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-")})
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: "shell", Version: 1, Image: image,
		Ports: []driver.Port{{ContainerPort: 8080}}}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		return c
	}
	if st, err := d.Start(ctx(t), spec); err != nil || st.State != driver.StateRunning {
		t.Fatalf("start: %+v, %v", st, err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })

	t.Run("stdout and stderr apart, exit code", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code, err := d.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "out"}, Stdout: &out, Stderr: &errOut})
		if err != nil || code != 3 {
			t.Fatalf("code %d, err %v; want 3", code, err)
		}
		if out.String() != "to stdout\n" || errOut.String() != "to stderr\n" {
			t.Fatalf("stdout %q, stderr %q", out.String(), errOut.String())
		}
		for _, want := range []int{0, 7, 255} {
			code, err := d.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "exit", strconv.Itoa(want)}})
			if err != nil || code != want {
				t.Fatalf("exit %d: code %d, err %v", want, code, err)
			}
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

	// The runtime cannot start these; the kubelet reports it as an internal
	// error, the driver as a shell would: 127 or 126, the reason on stderr.
	for _, tt := range []struct {
		cmd  string
		want int
	}{{"/bin/sh", 127}, {"no-such-command", 127}, {"/etc/hosts", 126}} {
		t.Run("a command that cannot start: "+tt.cmd, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code, err := d.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{tt.cmd, "-c", "true"}, Stdout: &out, Stderr: &errOut})
			if err != nil || code != tt.want || !strings.HasPrefix(errOut.String(), tt.cmd+": ") || out.Len() != 0 {
				t.Fatalf("code %d, err %v, stdout %q, stderr %q; want %d and the reason on stderr", code, err, out.String(), errOut.String(), tt.want)
			}
		})
	}

	t.Run("tty with resize", func(t *testing.T) {
		inR, inW := io.Pipe()
		defer inW.Close()
		resize := make(chan driver.TermSize, 1)
		var out syncBuf
		done := make(chan error, 1)
		go func() {
			code, err := d.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "tty"},
				TTY: true, Size: driver.TermSize{Cols: 100, Rows: 30}, Resize: resize, Stdin: inR, Stdout: &out})
			if err == nil && code != 0 {
				err = errors.New("exit code " + strconv.Itoa(code) + ", want 0")
			}
			done <- err
		}()
		// The kubelet sets a size asynchronously from the start of the
		// command: ask until it shows.
		sized := func(want string) {
			t.Helper()
			drivertest.WaitFor(t, 15*time.Second, func() (bool, string) {
				inW.Write([]byte("again\r"))
				time.Sleep(100 * time.Millisecond)
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
				t.Fatalf("%v; output %q", err, out.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("the tty exec did not end; output %q", out.String())
		}
	})

	// ExecStream ends with its caller, with or without a terminal. The
	// command itself is the runtime's: the kubelet has no call to kill an
	// exec, and containerd 1.6 (Debian 12's) lets it run to its end after
	// the stream closes (containerd/containerd#8856), so only the stream's
	// end is asserted, and the Pod must still serve execs afterwards.
	for _, tty := range []bool{false, true} {
		t.Run("a caller that goes away ends the stream, tty "+strconv.FormatBool(tty), func(t *testing.T) {
			c, cancel := context.WithTimeout(ctx(t), 2*time.Second)
			defer cancel()
			inR, inW := io.Pipe()
			defer inW.Close()
			start := time.Now()
			_, err := d.ExecStream(c, spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "sleep", "20"},
				TTY: tty, Size: driver.TermSize{Cols: 80, Rows: 24}, Stdin: inR, Stdout: io.Discard})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want the deadline", err)
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Fatalf("ExecStream returned %v after it began, its deadline 2s", el)
			}
			code, err := d.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "exit", "5"}})
			if err != nil || code != 5 {
				t.Fatalf("the next exec: code %d, err %v", code, err)
			}
		})
	}

	t.Run("another host's instance is not found", func(t *testing.T) {
		other := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-")})
		_, err := other.ExecStream(ctx(t), spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "exit", "0"}})
		if !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
}

// syncBuf is a bytes.Buffer that a test may read while the driver writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
