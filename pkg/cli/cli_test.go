package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// fakeAPI records requests and answers from a table keyed by "METHOD path".
type fakeAPI struct {
	mu   sync.Mutex
	reqs []recorded
	ans  map[string]func(w http.ResponseWriter)
}

type recorded struct {
	method, path, query, auth string
	body                      []byte
}

func newFakeAPI(t *testing.T, ans map[string]func(w http.ResponseWriter)) (*fakeAPI, string) {
	f := &fakeAPI{ans: ans}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), b})
		f.mu.Unlock()
		if h, ok := f.ans[r.Method+" "+r.URL.Path]; ok {
			h(w)
			return
		}
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"no such thing"}`))
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeAPI) last() recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func jsonAnswer(code int, v any) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
}

func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", "")
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errb, nil, nil)
	return out.String(), errb.String(), code
}

func TestExitCodes(t *testing.T) {
	_, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"POST /v1/tenants": jsonAnswer(409, apitypes.Error{Message: "tenant acme already exists", Field: "name"}),
		"GET /v1/status":   jsonAnswer(200, apitypes.Status{Node: "n1", State: "leader"}),
	})
	tests := []struct {
		args    []string
		code    int
		errLike string
	}{
		{[]string{"--addr", addr, "status"}, 0, ""},
		{[]string{"--addr", addr, "tenant", "create", "acme"}, 1, "Error: tenant acme already exists (field name)"},
		{[]string{"--addr", addr, "tenant", "create"}, 2, "accepts 1 arg"},
		{[]string{"--addr", addr, "tenant", "frobnicate"}, 2, "unknown command"},
		{[]string{"--addr", addr, "tenant"}, 2, "needs a subcommand"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"--addr", addr, "status", "--bogus"}, 2, "unknown flag"},
		{[]string{"--addr", addr, "-o", "xml", "status"}, 2, "-o must be"},
		{[]string{"--addr", addr, "app", "scale", "web", "many"}, 2, "must be a number"},
		{[]string{"--addr", addr, "token", "create", "--name", "x"}, 2, "role"},
		{[]string{"--addr", "http://127.0.0.1:1", "status"}, 1, "Error:"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := run(t, "", tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.errLike) {
				t.Fatalf("exit %d stderr %q; want %d containing %q", code, stderr, tt.code, tt.errLike)
			}
		})
	}
}

func TestDeployFromFlagsAndManifest(t *testing.T) {
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"PUT /v1/apps/hello": jsonAnswer(201, apitypes.App{AppSpec: apitypes.AppSpec{Name: "hello"}, Version: 1}),
	})
	out, stderr, code := run(t, "", "--addr", addr, "--token", "T", "--tenant", "acme", "app", "deploy", "hello", "--image", "hello:1", "--instances", "3", "--port", "8080", "--env", "A=b", "--health-path", "/healthz", "--detach")
	if code != 0 || !strings.Contains(out, "created app hello version 1") {
		t.Fatalf("deploy: %d %q %q", code, out, stderr)
	}
	r := f.last()
	var spec apitypes.AppSpec
	if err := json.Unmarshal(r.body, &spec); err != nil {
		t.Fatal(err)
	}
	if r.query != "tenant=acme" || r.auth != "Bearer T" || spec.Image != "hello:1" || *spec.Instances != 3 || spec.Ports[0].ContainerPort != 8080 || spec.Env["A"] != "b" || spec.Health == nil || spec.Health.HTTP != "/healthz" {
		t.Fatalf("sent %+v %+v", r, spec)
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "wharf.yaml")
	os.WriteFile(good, []byte("name: hello\nimage: hello:2\ninstances: 2\nhealth:\n  http: /healthz\n  port: 8080\n  interval: 5s\n"), 0o644)
	if out, stderr, code := run(t, "", "--addr", addr, "app", "deploy", "-f", good, "--detach"); code != 0 {
		t.Fatalf("manifest deploy: %d %q %q", code, out, stderr)
	}
	if err := json.Unmarshal(f.last().body, &spec); err != nil || spec.Image != "hello:2" || spec.Health.Interval.D().Seconds() != 5 {
		t.Fatalf("manifest sent %s", f.last().body)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: hello\nimage: x\nreplicas: 2\n"), 0o644)
	_, stderr, code = run(t, "", "--addr", addr, "app", "deploy", "-f", bad)
	if code != 2 || !strings.Contains(stderr, "replicas") {
		t.Fatalf("manifest with unknown field: %d %q", code, stderr)
	}
}

func TestOutputFormats(t *testing.T) {
	pools := []apitypes.Pool{{Name: "aws-bj", Datacenter: "dc1", Provider: "aws", Labels: map[string]string{"b": "2", "a": "1"}}}
	_, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){"GET /v1/pools": jsonAnswer(200, pools)})
	out, _, code := run(t, "", "--addr", addr, "pool", "ls")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "aws-bj") || !strings.Contains(out, "a=1,b=2") {
		t.Fatalf("table: %q", out)
	}
	out, _, _ = run(t, "", "--addr", addr, "pool", "ls", "-o", "json")
	var got []apitypes.Pool
	if err := json.Unmarshal([]byte(out), &got); err != nil || got[0].Name != "aws-bj" {
		t.Fatalf("json: %q %v", out, err)
	}
	out, _, _ = run(t, "", "--addr", addr, "pool", "ls", "-o", "yaml")
	if !strings.Contains(out, "  name: aws-bj") || !strings.HasPrefix(out, "- ") {
		t.Fatalf("yaml: %q", out)
	}
}

func TestLoginWritesPrivateConfig(t *testing.T) {
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"GET /v1/tokens/self": jsonAnswer(200, apitypes.Token{ID: "x", Name: "me", Role: apitypes.RoleDeveloper, Tenant: "acme"}),
		"GET /v1/apps":        jsonAnswer(200, []apitypes.App{}),
	})
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("WHARF_ADDR", "")
	t.Setenv("WHARF_TOKEN", "")
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"--addr", addr, "login"}, strings.NewReader("s3cret\n"), &out, &errb, nil, nil); code != 0 {
		t.Fatalf("login: %d %s", code, errb.String())
	}
	p := filepath.Join(home, ".config", "wharf", "config.yaml")
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config %v %v", st, err)
	}
	// Later commands use the saved address and token.
	if code := Run(context.Background(), []string{"app", "ls"}, nil, &out, &errb, nil, nil); code != 0 {
		t.Fatalf("app ls after login: %d %s", code, errb.String())
	}
	if r := f.last(); r.auth != "Bearer s3cret" || r.path != "/v1/apps" {
		t.Fatalf("after login sent %+v", r)
	}
}

func TestKeygen(t *testing.T) {
	a, _, _ := run(t, "", "keygen")
	b, _, _ := run(t, "", "keygen")
	if len(strings.TrimSpace(a)) != 44 || a == b {
		t.Fatalf("keygen printed %q and %q", a, b)
	}
}

func TestJoinTokenAndHostCommands(t *testing.T) {
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"POST /v1/join-tokens": jsonAnswer(201, apitypes.JoinToken{ID: "ab12", Token: "WJ1.x.ab12.s", Pool: "aws-bj"}),
		"GET /v1/hosts": jsonAnswer(200, []apitypes.Host{
			{ID: "h1", Name: "n1", Pool: "aws-bj", State: "ready"},
			{ID: "h2", Name: "n2", Pool: "vs-sh", State: "down", Disconnected: true, AgentVersion: "v1.4.2"},
		}),
	})
	out, stderr, code := run(t, "", "--addr", addr, "join-token", "create", "--pool", "aws-bj", "--ttl", "10m", "--uses", "2")
	if code != 0 || !strings.Contains(out, "WJ1.x.ab12.s") {
		t.Fatalf("join-token create: %d %q %q", code, out, stderr)
	}
	var req apitypes.JoinTokenRequest
	if err := json.Unmarshal(f.last().body, &req); err != nil || req.Pool != "aws-bj" || req.TTL.D().Minutes() != 10 || req.Uses != 2 {
		t.Fatalf("sent %s", f.last().body)
	}
	if _, _, code := run(t, "", "--addr", addr, "join-token", "create"); code != 2 {
		t.Fatalf("join-token create without --pool: exit %d, want 2", code)
	}
	out, _, code = run(t, "", "--addr", addr, "host", "ls", "--pool", "vs-sh")
	if code != 0 || strings.Contains(out, "n1") || !strings.Contains(out, "down (disconnected)") || !strings.Contains(out, "AGENT") || !strings.Contains(out, "v1.4.2") {
		t.Fatalf("host ls --pool: %q", out)
	}
}

func TestTyposAndNegativeNumbers(t *testing.T) {
	tests := []struct {
		args    []string
		errLike []string
	}{
		{[]string{"app", "deplyo", "hello", "--image", "x"}, []string{`unknown command "deplyo" for "wharf app"`, "Did you mean this?\n\tdeploy", "Run 'wharf app --help'"}},
		{[]string{"--tenant", "acme", "app", "scael", "hello", "3"}, []string{`unknown command "scael" for "wharf app"`, "Did you mean this?\n\tscale"}},
		{[]string{"ap", "deploy", "hello", "--image", "x"}, []string{`unknown command "ap" for "wharf"`, "Did you mean this?\n\tapp"}},
		{[]string{"tenant", "craete", "acme", "--quota-cpu", "5"}, []string{`unknown command "craete" for "wharf tenant"`, "Did you mean this?\n\tcreate"}},
		{[]string{"app", "frobnicate"}, []string{`unknown command "frobnicate" for "wharf app"`}},
		{[]string{"app", "scale", "hello", "-3"}, []string{"INSTANCES must be 0 or more, not -3"}},
		{[]string{"app", "scale", "hello", "--", "-3"}, []string{"INSTANCES must be 0 or more, not -3"}},
		{[]string{"app", "rollback", "hello", "-1"}, []string{"VERSION must be 1 or more, not -1"}},
		{[]string{"app", "scale", "hello", "2", "--bogus"}, []string{"unknown flag: --bogus"}},
		{[]string{"app", "deploy", "hello", "--imgae", "x"}, []string{"unknown flag: --imgae", "Did you mean this?\n\t--image"}},
		{[]string{"app", "scale", "hello", "2", "--tenat", "acme"}, []string{"unknown flag: --tenat", "Did you mean this?\n\t--tenant"}},
		{[]string{"app", "deploy", "hello", "--image", "x", "--timeout", "0s"}, []string{"--timeout must be more than 0"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := run(t, "", append([]string{"--addr", "http://127.0.0.1:1"}, tt.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr)
			}
			for _, w := range tt.errLike {
				if !strings.Contains(stderr, w) {
					t.Fatalf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "shorthand") {
				t.Fatalf("flag parser's wording leaked:\n%s", stderr)
			}
		})
	}
}

func TestMessagesNameTheCLI(t *testing.T) {
	_, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"GET /v1/apps/hello": jsonAnswer(400, apitypes.Error{Message: "an admin token must name the tenant with ?tenant=NAME", Field: "tenant"}),
		"GET /v1/apps":       jsonAnswer(401, apitypes.Error{Message: "missing token: send Authorization: Bearer TOKEN"}),
		"GET /v1/pools":      jsonAnswer(401, apitypes.Error{Message: "invalid or revoked token"}),
	})
	t.Setenv("WHARF_TOKEN", "")
	t.Setenv("WHARF_ADDR", "")
	tests := []struct {
		args     []string
		want     string
		mustNot  string
		wantCode int
	}{
		{[]string{"--addr", addr, "--token", "T", "app", "show", "hello"}, "name the tenant with --tenant NAME", "?tenant", 1},
		{[]string{"--addr", addr, "app", "ls"}, "set WHARF_TOKEN, pass --token, or run `wharf login`", "Bearer", 1},
		{[]string{"--addr", addr, "--token", "T", "pool", "ls"}, "refused the token (invalid or revoked token): set WHARF_TOKEN or run `wharf login`", "Bearer", 1},
		{[]string{"--addr", "http://127.0.0.1:1", "app", "ls"}, "cannot reach the hub at http://127.0.0.1:1: connection refused (is it running? `make run` starts one)", "WHARF_ADDR", 1},
		{[]string{"--addr", "http://", "app", "ls"}, "set WHARF_ADDR, pass --addr, or run `wharf login`", "", 2},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := run(t, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.want) || (tt.mustNot != "" && strings.Contains(stderr, tt.mustNot)) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", code, stderr, tt.wantCode, tt.want)
			}
		})
	}
	// Nothing configured: the default address was tried, so say how to
	// configure one.
	e := &env{addrUsed: defaultAddr, addrDefault: true}
	_, err := http.Get("http://127.0.0.1:1/")
	if msg := e.explain(err); !strings.Contains(msg, "cannot reach the hub at "+defaultAddr) || !strings.Contains(msg, "no hub address is configured: set WHARF_ADDR, pass --addr, or run `wharf login`") {
		t.Fatalf("no address: %q", msg)
	}
}

func TestPoolCreateDrivers(t *testing.T) {
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"POST /v1/pools": jsonAnswer(201, apitypes.Pool{Name: "mixed", Datacenter: "dc1", Drivers: []string{"docker", "exec"}}),
	})
	if out, stderr, code := run(t, "", "--addr", addr, "pool", "create", "mixed", "--drivers", "docker,exec"); code != 0 {
		t.Fatalf("pool create: %d %q %q", code, out, stderr)
	}
	var req apitypes.PoolRequest
	if err := json.Unmarshal(f.last().body, &req); err != nil || !slices.Equal(req.Drivers, []string{"docker", "exec"}) {
		t.Fatalf("sent %s", f.last().body)
	}
}
