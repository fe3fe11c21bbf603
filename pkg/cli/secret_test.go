package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestSecretCommands(t *testing.T) {
	const plain = "cli-secret-VALUE"
	after := apitypes.Secrets{Tenant: "acme", App: "web", Names: []string{"API_KEY", "DB_PASSWORD"}, Revision: 2, Version: 5}
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"PUT /v1/apps/web/secrets":            jsonAnswer(200, after),
		"GET /v1/apps/web/secrets":            jsonAnswer(200, after),
		"DELETE /v1/apps/web/secrets/API_KEY": func(w http.ResponseWriter) { w.WriteHeader(204) },
		"DELETE /v1/apps/web/secrets/TOKEN":   func(w http.ResponseWriter) { w.WriteHeader(204) },
	})
	base := []string{"--addr", addr, "--token", "T", "--tenant", "acme"}

	out, stderr, code := run(t, "", append(base, "secret", "set", "web", "DB_PASSWORD="+plain, "API_KEY=a=b", "--detach")...)
	if code != 0 {
		t.Fatalf("secret set: %d %q", code, stderr)
	}
	last := f.last()
	var sent map[string]string
	if last.method != "PUT" || !strings.Contains(last.query, "tenant=acme") || json.Unmarshal(last.body, &sent) != nil ||
		sent["DB_PASSWORD"] != plain || sent["API_KEY"] != "a=b" || len(sent) != 2 {
		t.Fatalf("sent %s %s?%s %s", last.method, last.path, last.query, last.body)
	}
	if !strings.Contains(out, "API_KEY, DB_PASSWORD") || !strings.Contains(out, "version 5") || strings.Contains(out, plain) {
		t.Fatalf("set printed %q", out)
	}

	out, stderr, code = run(t, "", append(base, "secret", "ls", "web")...)
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "DB_PASSWORD") || !strings.Contains(out, "API_KEY") {
		t.Fatalf("secret ls: %d %q %q", code, out, stderr)
	}
	out, _, code = run(t, "", append(base, "secret", "ls", "web", "-o", "json")...)
	var got apitypes.Secrets
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Names) != 2 {
		t.Fatalf("secret ls -o json: %d %s", code, out)
	}

	out, stderr, code = run(t, "", append(base, "secret", "unset", "web", "API_KEY", "TOKEN", "--detach")...)
	if code != 0 {
		t.Fatalf("secret unset: %d %q", code, stderr)
	}
	var deletes []string
	f.mu.Lock()
	for _, r := range f.reqs {
		if r.method == "DELETE" {
			deletes = append(deletes, r.path)
		}
	}
	f.mu.Unlock()
	if strings.Join(deletes, " ") != "/v1/apps/web/secrets/API_KEY /v1/apps/web/secrets/TOKEN" {
		t.Fatalf("deletes %v", deletes)
	}
	if !strings.Contains(out, "unset") {
		t.Fatalf("unset printed %q", out)
	}

	// Values from a file and from standard input, exactly as they are.
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN KEY-----\nabc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(t, "stdin-value\n", append(base, "secret", "set", "web", "A=1", "--from-file", "TLS_KEY="+keyFile, "--from-stdin", "DB_PASSWORD", "--detach")...)
	if code != 0 {
		t.Fatalf("secret set --from-file --from-stdin: %d %q", code, stderr)
	}
	sent = nil
	if last := f.last(); json.Unmarshal(last.body, &sent) != nil || len(sent) != 3 || sent["A"] != "1" ||
		sent["TLS_KEY"] != "-----BEGIN KEY-----\nabc\n" || sent["DB_PASSWORD"] != "stdin-value\n" {
		t.Fatalf("sent %s", last.body)
	}
	if _, stderr, code = run(t, "", append(base, "secret", "set", "web", "--from-file", "TLS_KEY="+keyFile, "--detach")...); code != 0 {
		t.Fatalf("secret set with --from-file alone: %d %q", code, stderr)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", apitypes.MaxSecretValue+1)), 0o600); err != nil {
		t.Fatal(err)
	}

	// Bad arguments are usage errors (exit 2) and send nothing.
	n := len(f.reqs)
	for _, args := range [][]string{
		{"secret", "set", "web"},
		{"secret", "set", "web", "NOEQUALS"},
		{"secret", "set", "web", "1BAD=v"},
		{"secret", "set", "web", "A=1", "A=2"},
		{"secret", "unset", "web"},
		{"secret", "unset", "web", "not-a-name"},
		{"secret", "ls"},
		{"secret", "ls", "web", "extra"},
		{"secret", "rotate", "web"},
		{"secret", "set", "web", "--from-file", "TLS_KEY"},
		{"secret", "set", "web", "--from-file", "TLS_KEY=" + filepath.Join(dir, "missing")},
		{"secret", "set", "web", "--from-file", "BIG=" + big},
		{"secret", "set", "web", "A=1", "--from-stdin", "A"},
		{"secret", "set", "web", "--from-file", "A=" + keyFile, "--from-stdin", "A"},
		{"secret", "set", "web", "--from-stdin", "not-a-name"},
	} {
		if _, stderr, code := run(t, "", append(base, args...)...); code != 2 {
			t.Fatalf("%v: exit %d %q, want 2", args, code, stderr)
		}
	}
	if len(f.reqs) != n {
		t.Fatal("a usage error sent a request")
	}
}
