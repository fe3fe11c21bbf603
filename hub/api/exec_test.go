package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// fakeExecer stands for the node's gateway: host1's agent is connected
// here; a command prints itself on stdout, "err" on stderr, echoes stdin
// and exits 7; the command "broken" fails as Wharf.
type fakeExecer struct {
	mu   sync.Mutex
	reqs []ExecRequest
}

func (f *fakeExecer) Connected(host string) bool { return host == "host1" }
func (f *fakeExecer) APIAddr(string) string      { return "" }

func (f *fakeExecer) Exec(ctx context.Context, host string, req ExecRequest) (int, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if req.Cmd[0] == "broken" {
		return -1, errors.New("the agent ended the exec without an exit code")
	}
	fmt.Fprintf(req.Stdout, "%s on %s tty=%t size=%dx%d\n", strings.Join(req.Cmd, " "), req.Instance, req.TTY, req.Size.Cols, req.Size.Rows)
	fmt.Fprint(req.Stderr, "err")
	if req.Stdin != nil {
		io.Copy(req.Stdout, req.Stdin)
	}
	return 7, nil
}

func TestExecThroughTheAPI(t *testing.T) {
	ex := &fakeExecer{}
	f := auditedFixture(t)
	f.api.cfg.Exec = ex
	f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{
		{ID: "i-1", Tenant: "acme", App: "web", Version: 1, Host: "host1"},
		{ID: "i-0", Tenant: "acme", App: "web", Version: 1, Host: "host1"}}})
	f.applyState(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "host1", Updates: []state.InstanceUpdate{{ID: "i-1", State: state.InstanceRunning}}})
	apps := func(who string) *client.Apps {
		c, err := client.New(client.Config{Address: f.srv.URL, Token: f.tokens[who]})
		if err != nil {
			t.Fatal(err)
		}
		return c.Apps()
	}
	ctx := context.Background()

	var out, errOut strings.Builder
	code, err := apps("acme/developer").Exec(ctx, "web", client.ExecOptions{Cmd: []string{"sh", "-c", "exit 7"}, TTY: true,
		Size: apitypes.TermSize{Cols: 80, Rows: 24}, Stdin: strings.NewReader("typed"), Stdout: &out, Stderr: &errOut})
	if err != nil || code != 7 {
		t.Fatalf("exec: %d, %v", code, err)
	}
	// The running instance (i-0 is not running yet), the command, the
	// terminal and stdin reached the gateway; its output came back.
	if want := "sh -c exit 7 on i-1 tty=true size=80x24\ntyped"; out.String() != want || errOut.String() != "err" {
		t.Fatalf("stdout %q, stderr %q; want %q, %q", out.String(), errOut.String(), want, "err")
	}

	for _, tt := range []struct {
		name, who string
		opts      client.ExecOptions
		status    int
		msg       string
	}{
		{"viewer", "acme/viewer", client.ExecOptions{Cmd: []string{"ls"}}, http.StatusForbidden, "cannot run commands"},
		{"another tenant", "beta/developer", client.ExecOptions{Cmd: []string{"ls"}, Tenant: "acme"}, http.StatusNotFound, ""},
		{"no command", "acme/developer", client.ExecOptions{}, http.StatusBadRequest, "cmd"},
		{"an instance not running", "acme/developer", client.ExecOptions{Cmd: []string{"ls"}, Instance: "i-0"}, http.StatusConflict, "not running"},
		{"no such instance", "acme/developer", client.ExecOptions{Cmd: []string{"ls"}, Instance: "i-9"}, http.StatusNotFound, "i-9"},
		{"a failure of Wharf", "acme/developer", client.ExecOptions{Cmd: []string{"broken"}}, http.StatusBadGateway, "without an exit code"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apps(tt.who).Exec(ctx, "web", tt.opts)
			var ae *apitypes.Error
			if !errors.As(err, &ae) || ae.Status != tt.status || !strings.Contains(ae.Message, tt.msg) {
				t.Fatalf("got %v, want %d %q", err, tt.status, tt.msg)
			}
		})
	}
	if code, body, _ := f.do("acme/developer", "GET", "/v1/apps/web/exec?cmd=ls", nil); code != http.StatusBadRequest || !strings.Contains(string(body), "WebSocket") {
		t.Fatalf("exec without an upgrade: %d %s", code, body)
	}

	// The audit log has the exec, its command in the object, and the
	// viewer's refusal.
	var ran, refused bool
	for _, e := range f.audit("admin", "?tenant=acme") {
		if e.Path != "/v1/apps/web/exec" {
			continue
		}
		if e.Status == http.StatusSwitchingProtocols && e.Role == "developer" && e.Object == "web/i-1 -- sh -c exit 7" {
			ran = true
		}
		if e.Status == http.StatusForbidden && e.Role == "viewer" {
			refused = true
		}
	}
	if !ran || !refused {
		t.Fatalf("audit log: exec %v, refusal %v: %+v", ran, refused, f.audit("admin", "?tenant=acme"))
	}
}
