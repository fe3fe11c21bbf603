package kubernetes_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

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

	t.Run("tty with resize", func(t *testing.T) { ttyResize(t, d, spec.InstanceID) })

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

// TestExecStreamKubeletProtocols: the driver speaks WebSocket
// (v5.channel.k8s.io) to an API server that takes it, and falls back to
// SPDY, to the same kubelet, when the upgrade is refused (as API servers
// before WebSocket exec, or proxies that drop WebSocket, do). A proxy of
// the test's own stands between, recording each exec's upgrade and
// refusing WebSocket when told to. Each protocol carries the streams, the
// exit code, stdin and a terminal with its resizes.
func TestExecStreamKubeletProtocols(t *testing.T) {
	c := kube(t)
	image := testImage(t, c)
	admin := restConfig(t, c)
	// HTTP/1.1 to the API server: an HTTP/2 request cannot upgrade to SPDY.
	tlsConfig, err := rest.TLSConfigFor(admin)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.HTTPWrappersForConfig(admin, &http.Transport{TLSClientConfig: tlsConfig,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}})
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := url.Parse(admin.Host)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		upgrades []string
		noWS     bool
	)
	rp := httputil.NewSingleHostReverseProxy(upstream)
	rp.Transport = rt
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/exec") {
			up := strings.ToLower(r.Header.Get("Upgrade"))
			mu.Lock()
			upgrades = append(upgrades, up+" "+r.Header.Get("Sec-WebSocket-Protocol"))
			refuse := noWS && up == "websocket"
			mu.Unlock()
			if refuse {
				http.Error(w, "websocket refused by the test's proxy", http.StatusBadRequest)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rc := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}

	d := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-"), REST: rc})
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: "proto", Version: 1, Image: image,
		Ports: []driver.Port{{ContainerPort: 8080}}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if st, err := d.Start(ctx, spec); err != nil || st.State != driver.StateRunning {
		t.Fatalf("start: %+v, %v", st, err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })

	for _, tt := range []struct {
		name  string
		noWS  bool
		wants []string // the upgrades asked for, in order
	}{
		{"websocket", false, []string{"websocket v5.channel.k8s.io"}},
		{"spdy fallback", true, []string{"websocket v5.channel.k8s.io", "spdy/3.1 "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			upgrades, noWS = nil, tt.noWS
			mu.Unlock()
			var out, errOut bytes.Buffer
			code, err := d.ExecStream(ctx, spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "cat"},
				Stdin: strings.NewReader("through the kubelet\n"), Stdout: &out, Stderr: &errOut})
			if err != nil || code != 0 || out.String() != "through the kubelet\n" {
				t.Fatalf("cat: code %d, err %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
			}
			out.Reset()
			code, err = d.ExecStream(ctx, spec.InstanceID, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "out"}, Stdout: &out, Stderr: &errOut})
			if err != nil || code != 3 || out.String() != "to stdout\n" || errOut.String() != "to stderr\n" {
				t.Fatalf("out: code %d, err %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
			}
			ttyResize(t, d, spec.InstanceID)
			mu.Lock()
			got := strings.Join(upgrades, ", ")
			mu.Unlock()
			if want := strings.Join(slices.Concat(tt.wants, tt.wants, tt.wants), ", "); got != want {
				t.Fatalf("upgrades asked for: %s; want %s", got, want)
			}
		})
	}
}

// ttyResize runs the test app's tty probe in instance id on a terminal of
// 100x30, resizes it to 132x43, and checks the probe saw both sizes and
// exited 0.
func ttyResize(t *testing.T, d *kubernetes.Driver, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inR, inW := io.Pipe()
	defer inW.Close()
	resize := make(chan driver.TermSize, 1)
	var out syncBuf
	done := make(chan error, 1)
	go func() {
		code, err := d.ExecStream(ctx, id, driver.ExecRequest{Cmd: []string{"/testapp", "exec", "tty"},
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
