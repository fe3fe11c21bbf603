package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestRegistryCommands(t *testing.T) {
	const password = "cli-registry-password"
	reg := apitypes.Registry{Tenant: "acme", Server: "r.acme.test:5000", Username: "ci", CreatedAt: time.Now().Add(-time.Hour)}
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"POST /v1/registries":                    jsonAnswer(201, reg),
		"GET /v1/registries":                     jsonAnswer(200, []apitypes.Registry{reg}),
		"DELETE /v1/registries/r.acme.test:5000": func(w http.ResponseWriter) { w.WriteHeader(204) },
	})
	base := []string{"--addr", addr, "--token", "T", "--tenant", "acme"}
	t.Setenv(registryPasswordEnv, "")

	// The password from stdin (its first line) or the environment.
	for _, tt := range []struct {
		name, stdin, env, want string
		args                   []string
	}{
		{"stdin", password + "\r\nignored\n", "", password, []string{"--password-stdin"}},
		{"env", "", "env-" + password, "env-" + password, nil},
		{"stdin wins", password + "\n", "env-" + password, password, []string{"--password-stdin"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(registryPasswordEnv, tt.env)
			args := append(append(append([]string{}, base...), "registry", "add", "r.acme.test:5000", "--username", "ci"), tt.args...)
			out, stderr, code := run(t, tt.stdin, args...)
			if code != 0 || !strings.Contains(out, "registry r.acme.test:5000 stored for tenant acme (user ci)") {
				t.Fatalf("add: %d %q %q", code, out, stderr)
			}
			if strings.Contains(out+stderr, password) {
				t.Fatal("the CLI printed the password")
			}
			r := f.last()
			var body apitypes.RegistryRequest
			if err := json.Unmarshal(r.body, &body); err != nil || r.method != "POST" || r.path != "/v1/registries" || r.query != "tenant=acme" ||
				body != (apitypes.RegistryRequest{Server: "r.acme.test:5000", Username: "ci", Password: tt.want}) {
				t.Fatalf("sent %s %s?%s %s", r.method, r.path, r.query, r.body)
			}
		})
	}

	// Refused before anything is sent: no password, an empty stdin, no
	// username, a password as an argument.
	t.Setenv(registryPasswordEnv, "")
	sent := len(f.reqs)
	for _, tt := range []struct {
		stdin string
		args  []string
		msg   string
	}{
		{"", []string{"registry", "add", "r.acme.test", "--username", "ci"}, "--password-stdin"},
		{"\n", []string{"registry", "add", "r.acme.test", "--username", "ci", "--password-stdin"}, "no password"},
		{password, []string{"registry", "add", "r.acme.test", "--password-stdin"}, "--username"},
		{"", []string{"registry", "add", "r.acme.test", "--username", "ci", "--password", password}, "unknown flag"},
		{"", []string{"registry", "add"}, ""},
	} {
		_, stderr, code := run(t, tt.stdin, append(append([]string{}, base...), tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.msg) {
			t.Fatalf("%v: exit %d %q, want 2 and %q", tt.args, code, stderr, tt.msg)
		}
	}
	if len(f.reqs) != sent {
		t.Fatal("a refused add sent a request")
	}

	out, stderr, code := run(t, "", append(append([]string{}, base...), "registry", "ls")...)
	if code != 0 || !strings.Contains(out, "SERVER") || !strings.Contains(out, "r.acme.test:5000") || !strings.Contains(out, "ci") {
		t.Fatalf("ls: %d %q %q", code, out, stderr)
	}
	out, _, code = run(t, "", append(append([]string{}, base...), "registry", "ls", "-o", "json")...)
	var got []apitypes.Registry
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 || got[0].Server != reg.Server {
		t.Fatalf("ls -o json: %d %s", code, out)
	}
	out, stderr, code = run(t, "", append(append([]string{}, base...), "registry", "rm", "r.acme.test:5000")...)
	if code != 0 || !strings.Contains(out, "removed registry r.acme.test:5000") || f.last().query != "tenant=acme" {
		t.Fatalf("rm: %d %q %q", code, out, stderr)
	}
	if _, _, code := run(t, "", append(append([]string{}, base...), "registry", "rm", "none.test")...); code == 0 {
		t.Fatal("rm of an unknown registry succeeded")
	}
}
