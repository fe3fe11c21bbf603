package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wharf-platform/wharf/agent/driver"
)

// fakeExecAPI answers the exec subresource of Pod acme/p as a kubelet
// would behind the API server, over WebSocket (v5.channel.k8s.io: channel
// 0 stdin, 1 stdout, 2 stderr, 3 the status, 4 resizes, 255 a stream's
// end). Commands: "out" writes on both streams and exits 3; "cat" echoes
// stdin; "tty" prints each terminal size until stdin ends.
func fakeExecAPI(t *testing.T) *rest.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/namespaces/acme/pods/p/exec" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		if q.Get("container") != "app" {
			http.Error(w, "wrong container", http.StatusBadRequest)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"v5.channel.k8s.io"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		send := func(ch byte, b []byte) { c.Write(ctx, websocket.MessageBinary, append([]byte{ch}, b...)) }
		status := func(code int) {
			st := map[string]any{"status": "Success"}
			if code != 0 {
				st = map[string]any{"status": "Failure", "reason": "NonZeroExitCode",
					"details": map[string]any{"causes": []map[string]string{{"reason": "ExitCode", "message": fmt.Sprint(code)}}}}
			}
			b, _ := json.Marshal(st)
			send(3, b)
			c.Close(websocket.StatusNormalClosure, "")
		}
		switch q["command"][0] {
		case "out":
			send(1, []byte("to stdout\n"))
			send(2, []byte("to stderr\n"))
			status(3)
		case "cat", "tty":
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					return
				}
				switch {
				case b[0] == 0 && q["command"][0] == "cat":
					send(1, b[1:])
				case b[0] == 4:
					var sz struct{ Width, Height int }
					json.Unmarshal(b[1:], &sz)
					send(1, []byte(fmt.Sprintf("size=%dx%d\n", sz.Width, sz.Height)))
				case b[0] == 255 && len(b) > 1 && b[1] == 0: // stdin ended
					status(0)
					return
				}
			}
		}
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

func TestExecPod(t *testing.T) {
	rc := fakeExecAPI(t)
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(req driver.ExecRequest) (int, error) {
		return execPod(ctx, rc, cs.CoreV1().RESTClient(), "acme", "p", "app", req)
	}

	var out, errOut bytes.Buffer
	code, err := run(driver.ExecRequest{Cmd: []string{"out"}, Stdout: &out, Stderr: &errOut})
	if err != nil || code != 3 || out.String() != "to stdout\n" || errOut.String() != "to stderr\n" {
		t.Fatalf("out: code %d, err %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
	}

	out.Reset()
	code, err = run(driver.ExecRequest{Cmd: []string{"cat"}, Stdin: strings.NewReader("hello"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "hello" {
		t.Fatalf("cat: code %d, err %v, stdout %q", code, err, out.String())
	}

	// The first size, then a resize, on the terminal.
	inR, inW := io.Pipe()
	resize := make(chan driver.TermSize, 1)
	resize <- driver.TermSize{Cols: 120, Rows: 40}
	done := make(chan error, 1)
	var tty syncBuffer
	go func() {
		_, err := run(driver.ExecRequest{Cmd: []string{"tty"}, TTY: true, Size: driver.TermSize{Cols: 80, Rows: 24}, Resize: resize, Stdin: inR, Stdout: &tty})
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tty.String(), "size=120x40") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	inW.Close()
	if err := <-done; err != nil || !strings.HasPrefix(tty.String(), "size=80x24\nsize=120x40\n") {
		t.Fatalf("tty: err %v, output %q", err, tty.String())
	}
}

// TestExecFallsBackToSPDY: an API server that refuses the WebSocket
// upgrade is asked again over SPDY, as kubectl does.
func TestExecFallsBackToSPDY(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Method+" "+strings.ToLower(r.Header.Get("Upgrade")))
		mu.Unlock()
		http.Error(w, "no streaming here", http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	rc := &rest.Config{Host: srv.URL}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := execPod(ctx, rc, cs.CoreV1().RESTClient(), "acme", "p", "app", driver.ExecRequest{Cmd: []string{"true"}}); err == nil {
		t.Fatal("exec through a server that streams nothing succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(asked, ", "); got != "GET websocket, POST spdy/3.1" {
		t.Fatalf("requests: %s; want a WebSocket upgrade, then SPDY", got)
	}
}

// TestStartFailure: the kubelet's report of a command the runtime could
// not start (runc's and crun's words) becomes a shell's exit code; any
// other failure stays an error.
func TestStartFailure(t *testing.T) {
	const kubelet = "Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \"0a1b\": "
	for _, tt := range []struct {
		name, err string
		code      int
		msg       string
		ok        bool
	}{
		{"runc, no such file", kubelet + `OCI runtime exec failed: exec failed: unable to start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown`,
			127, `unable to start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory`, true},
		{"runc, not in PATH", kubelet + `OCI runtime exec failed: exec failed: unable to start container process: exec: "ls": executable file not found in $PATH: unknown`,
			127, `unable to start container process: exec: "ls": executable file not found in $PATH`, true},
		{"runc, not executable", kubelet + `OCI runtime exec failed: exec failed: unable to start container process: exec: "/etc/hosts": permission denied: unknown`,
			126, `unable to start container process: exec: "/etc/hosts": permission denied`, true},
		{"crun, not in PATH", kubelet + "OCI runtime exec failed: exec failed: executable file `ls` not found in $PATH: No such file or directory: unknown",
			127, "executable file `ls` not found in $PATH: No such file or directory", true},
		{"container gone", kubelet + `cannot exec in a stopped state: unknown`, 0, "", false},
		{"container not found", kubelet + `container "0a1b" not found`, 0, "", false},
		{"transport", "unable to upgrade connection: pod does not exist", 0, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, msg, ok := startFailure(errors.New(tt.err))
			if code != tt.code || msg != tt.msg || ok != tt.ok {
				t.Fatalf("got %d %q %v, want %d %q %v", code, msg, ok, tt.code, tt.msg, tt.ok)
			}
		})
	}
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
