package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// fakeExecHub answers GET /v1/apps/{name}/exec the way a hub does: app
// "locked" is refused with 403; otherwise the command "exit N" ends with
// N, "fail" with a failure of Wharf, and any other echoes stdin to stdout
// (and a line to stderr) and ends with 0.
func fakeExecHub(t *testing.T) (addr string, queries func() []url.Values) {
	t.Helper()
	var mu sync.Mutex
	var seen []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Query())
		mu.Unlock()
		if r.URL.Path == "/v1/apps/locked/exec" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(apitypes.Error{Message: "a viewer token cannot run commands in instances"})
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{apitypes.ExecProtocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		send := func(ch byte, b []byte) { c.Write(ctx, websocket.MessageBinary, append([]byte{ch}, b...)) }
		status := func(st apitypes.ExecStatus) {
			b, _ := json.Marshal(st)
			send(apitypes.ExecChanStatus, b)
			c.Close(websocket.StatusNormalClosure, "")
		}
		cmd := r.URL.Query()["cmd"]
		switch {
		case len(cmd) == 2 && cmd[0] == "exit":
			n, _ := strconv.Atoi(cmd[1])
			status(apitypes.ExecStatus{ExitCode: n})
			return
		case cmd[0] == "fail":
			status(apitypes.ExecStatus{ExitCode: -1, Error: "no instance i-9 on this host", Status: 502})
			return
		}
		send(apitypes.ExecChanStderr, []byte("to stderr\n"))
		if r.URL.Query().Get("stdin") == "1" {
			for {
				_, b, err := c.Read(ctx)
				if err != nil || b[0] == apitypes.ExecChanStdinEOF {
					break
				}
				if b[0] == apitypes.ExecChanStdin {
					send(apitypes.ExecChanStdout, b[1:])
				}
			}
		}
		status(apitypes.ExecStatus{ExitCode: 0})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []url.Values {
		mu.Lock()
		defer mu.Unlock()
		return append([]url.Values(nil), seen...)
	}
}

func TestAppExec(t *testing.T) {
	addr, queries := fakeExecHub(t)
	tests := []struct {
		name       string
		stdin      string
		args       []string
		code       int
		stdout     string
		stderr     string
		wantQuery  url.Values
		noRequests bool
	}{
		{name: "the command's exit code", args: []string{"web", "--", "exit", "7"}, code: 7,
			wantQuery: url.Values{"cmd": {"exit", "7"}}},
		{name: "exit 0", args: []string{"web", "--", "exit", "0"}, code: 0},
		{name: "stdin with -i, stdout and stderr apart", stdin: "hello\n", args: []string{"web", "-i", "--instance", "i-1", "--", "cat", "-n"}, code: 0,
			stdout: "hello\n", stderr: "to stderr\n", wantQuery: url.Values{"cmd": {"cat", "-n"}, "instance": {"i-1"}, "stdin": {"1"}}},
		{name: "no stdin without -i", stdin: "hello\n", args: []string{"web", "--", "cat"}, code: 0, stdout: "",
			wantQuery: url.Values{"cmd": {"cat"}}},
		{name: "-t asks for a terminal", args: []string{"web", "-t", "--", "sh"}, code: 0, wantQuery: url.Values{"cmd": {"sh"}, "tty": {"1"}}},
		{name: "-it together", stdin: "x", args: []string{"web", "-it", "--", "sh"}, code: 0, stdout: "x", wantQuery: url.Values{"cmd": {"sh"}, "tty": {"1"}, "stdin": {"1"}}},
		{name: "refused: 255", args: []string{"locked", "--", "ls"}, code: ExitWharf, stderr: "a viewer token cannot run commands in instances"},
		{name: "Wharf failed: 255", args: []string{"web", "--", "fail"}, code: ExitWharf, stderr: "no instance i-9 on this host"},
		{name: "no command", args: []string{"web"}, code: ExitUsage, noRequests: true},
		{name: "two apps", args: []string{"web", "api", "--", "ls"}, code: ExitUsage, noRequests: true},
		{name: "unknown flag", args: []string{"web", "--bogus", "--", "ls"}, code: ExitUsage, noRequests: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(queries())
			stdout, stderr, code := run(t, tt.stdin, append([]string{"--addr", addr, "--token", "T", "app", "exec"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			if tt.stdout != "" || tt.code == 0 {
				if stdout != tt.stdout {
					t.Fatalf("stdout %q, want %q", stdout, tt.stdout)
				}
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("stderr %q lacks %q", stderr, tt.stderr)
			}
			qs := queries()
			if tt.noRequests {
				if len(qs) != before {
					t.Fatalf("a usage error reached the hub: %v", qs[before:])
				}
				return
			}
			if len(qs) != before+1 {
				t.Fatalf("%d requests, want 1", len(qs)-before)
			}
			if tt.wantQuery != nil {
				got := qs[len(qs)-1]
				for k, v := range tt.wantQuery {
					if strings.Join(got[k], "\x00") != strings.Join(v, "\x00") {
						t.Fatalf("query %s = %q, want %q (all: %v)", k, got[k], v, got)
					}
				}
				for _, k := range []string{"tty", "stdin", "instance"} {
					if _, want := tt.wantQuery[k]; !want && got.Get(k) != "" {
						t.Fatalf("query has %s=%q, not asked for", k, got.Get(k))
					}
				}
			}
		})
	}
}
