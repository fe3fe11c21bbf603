package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestProviderCommands(t *testing.T) {
	aws1 := apitypes.Provider{Name: "aws1", Type: "aws", Region: "us-east-1", Credentials: "set", Pools: []string{"auto"}}
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"POST /v1/providers":        jsonAnswer(201, aws1),
		"PUT /v1/providers/aws1":    jsonAnswer(200, aws1),
		"GET /v1/providers":         jsonAnswer(200, []apitypes.Provider{aws1}),
		"GET /v1/providers/aws1":    jsonAnswer(200, aws1),
		"DELETE /v1/providers/aws1": func(w http.ResponseWriter) { w.WriteHeader(204) },
		"POST /v1/providers/ssh1":   nil,
		"DELETE /v1/providers/used": jsonAnswer(409, apitypes.Error{Message: "provider used is used by pool auto"}),
	})
	sent := func() (apitypes.ProviderRequest, map[string]any) {
		t.Helper()
		var req apitypes.ProviderRequest
		var creds map[string]any
		if err := json.Unmarshal(f.last().body, &req); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(req.Credentials, &creds); err != nil {
			t.Fatalf("credentials sent as %s", req.Credentials)
		}
		return req, creds
	}

	out, stderr, code := run(t, "", "--addr", addr, "provider", "add", "aws1", "--type", "aws", "--region", "us-east-1", "--endpoint", "http://127.0.0.1:9",
		"--credential", "access_key_id=AKIA1", "--credential", "secret_access_key=s3cr3t=x")
	if code != 0 || !strings.Contains(out, "aws1") || strings.Contains(out, "s3cr3t") {
		t.Fatalf("provider add: %d %q %q", code, out, stderr)
	}
	req, creds := sent()
	if f.last().method != "POST" || req.Name != "aws1" || req.Type != "aws" || req.Region != "us-east-1" || req.Endpoint != "http://127.0.0.1:9" ||
		creds["access_key_id"] != "AKIA1" || creds["secret_access_key"] != "s3cr3t=x" {
		t.Fatalf("sent %s", f.last().body)
	}

	// SSH: a key from a file, host key pins as a map.
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id_ed25519")
	os.WriteFile(keyFile, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"), 0o600)
	run(t, "", "--addr", addr, "provider", "add", "ssh1", "--type", "ssh", "--credential", "user=root", "--credential", "private_key=@"+keyFile,
		"--credential", "host_key_fingerprints.10.0.0.1:22=SHA256:aaa", "--credential", "host_key_fingerprints.10.0.0.2:22=SHA256:bbb")
	req, creds = sent()
	fps, _ := creds["host_key_fingerprints"].(map[string]any)
	if req.Type != "ssh" || !strings.HasPrefix(creds["private_key"].(string), "-----BEGIN") || fps["10.0.0.1:22"] != "SHA256:aaa" || fps["10.0.0.2:22"] != "SHA256:bbb" {
		t.Fatalf("ssh sent %s", f.last().body)
	}

	// A credentials file; update PUTs the whole account.
	credsFile := filepath.Join(dir, "creds.json")
	os.WriteFile(credsFile, []byte(`{"access_key_id":"AKIA2","secret_access_key":"other"}`), 0o600)
	if _, stderr, code := run(t, "", "--addr", addr, "provider", "update", "aws1", "--type", "aws", "--credentials-file", credsFile); code != 0 {
		t.Fatalf("provider update: %d %q", code, stderr)
	}
	req, creds = sent()
	if f.last().method != "PUT" || f.last().path != "/v1/providers/aws1" || creds["access_key_id"] != "AKIA2" {
		t.Fatalf("update sent %s %s %s", f.last().method, f.last().path, f.last().body)
	}

	for _, bad := range [][]string{
		{"provider", "add", "x", "--credential", "a=b"},                                               // no --type
		{"provider", "add", "x", "--type", "aws"},                                                     // no credentials
		{"provider", "add", "x", "--type", "aws", "--credential", "a=b", "--credentials-file", "f"},   // both
		{"provider", "add", "x", "--type", "aws", "--credential", "novalue"},                          // not k=v
		{"provider", "add", "x", "--type", "aws", "--credential", "private_key=@" + dir + "/missing"}, // unreadable file
	} {
		if _, _, code := run(t, "", append([]string{"--addr", addr}, bad...)...); code != 2 {
			t.Fatalf("%v: exit %d, want 2", bad, code)
		}
	}

	out, _, code = run(t, "", "--addr", addr, "provider", "ls")
	if code != 0 || !strings.Contains(out, "CREDENTIALS") || !strings.Contains(out, "set") || !strings.Contains(out, "auto") {
		t.Fatalf("provider ls: %q", out)
	}
	out, _, code = run(t, "", "--addr", addr, "provider", "show", "aws1")
	if code != 0 || !strings.Contains(out, "Credentials: set") || !strings.Contains(out, "Region:      us-east-1") {
		t.Fatalf("provider show: %q", out)
	}
	if out, _, code := run(t, "", "--addr", addr, "provider", "rm", "aws1"); code != 0 || !strings.Contains(out, "deleted provider aws1") {
		t.Fatalf("provider rm: %d %q", code, out)
	}
	if _, stderr, code := run(t, "", "--addr", addr, "provider", "rm", "used"); code != 1 || !strings.Contains(stderr, "used by pool auto") {
		t.Fatalf("provider rm of a used account: %d %q", code, stderr)
	}
}

func TestPoolProvisionCommands(t *testing.T) {
	auto := apitypes.Pool{Name: "auto", Datacenter: "dc1", Labels: map[string]string{"tier": "web"}, Provision: &apitypes.Provision{
		Provider: "aws1", Template: json.RawMessage(`{"image":"ami-1","instance_type":"t3.small"}`), MinHosts: 1, MaxHosts: 3,
		ScaleDownAfter: apitypes.Duration(10 * time.Minute), BootTimeout: apitypes.Duration(10 * time.Minute)},
		Capacity: &apitypes.Capacity{CPU: 4000, Memory: 8192}, Usage: &apitypes.Usage{CPU: 500, Memory: 256, Instances: 3},
		HostsByState: map[string]int{"ready": 2}, MachinesByState: map[string]int{"ready": 2, "booting": 1}}
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"POST /v1/pools":     jsonAnswer(201, auto),
		"GET /v1/pools/auto": jsonAnswer(200, auto),
		"PUT /v1/pools/auto": jsonAnswer(200, auto),
		"GET /v1/pools/hand": jsonAnswer(200, apitypes.Pool{Name: "hand", Datacenter: "dc1"}),
		"GET /v1/machines": jsonAnswer(200, []apitypes.Machine{
			{ID: "m-1", Pool: "auto", Provider: "aws1", ProviderID: "i-0abc", State: "ready", Host: "h-1"},
			{ID: "m-2", Pool: "auto", Provider: "aws1", State: "failed", Error: "InsufficientInstanceCapacity"},
		}),
	})
	sentPool := func() apitypes.PoolRequest {
		t.Helper()
		var req apitypes.PoolRequest
		if err := json.Unmarshal(f.last().body, &req); err != nil {
			t.Fatal(err)
		}
		return req
	}
	template := func(req apitypes.PoolRequest) map[string]any {
		t.Helper()
		var m map[string]any
		if req.Provision == nil || json.Unmarshal(req.Provision.Template, &m) != nil {
			t.Fatalf("no template in %s", f.last().body)
		}
		return m
	}

	_, stderr, code := run(t, "", "--addr", addr, "pool", "create", "auto", "--provider", "aws1",
		"--template", "instance_type=t3.small,image=ami-1,security_groups=sg-1;sg-2", "--template", "key_name=ops",
		"--min-hosts", "1", "--max-hosts", "3", "--scale-down-after", "5m")
	if code != 0 {
		t.Fatalf("pool create: %d %q", code, stderr)
	}
	req := sentPool()
	tm := template(req)
	if req.Provider != "" || req.Provision.Provider != "aws1" || req.Provision.MinHosts != 1 || req.Provision.MaxHosts != 3 || req.Provision.ScaleDownAfter.D() != 5*time.Minute ||
		tm["instance_type"] != "t3.small" || tm["key_name"] != "ops" || len(tm["security_groups"].([]any)) != 2 {
		t.Fatalf("pool create sent %s", f.last().body)
	}
	// SSH hosts: the key repeated makes a list.
	run(t, "", "--addr", addr, "pool", "create", "metal", "--provider", "ssh1", "--template", "hosts=10.0.0.1:22", "--template", "hosts=10.0.0.2:22", "--max-hosts", "2")
	if hosts, _ := template(sentPool())["hosts"].([]any); len(hosts) != 2 {
		t.Fatalf("ssh pool sent %s", f.last().body)
	}
	// A plain pool keeps --provider as the pool's provider.
	run(t, "", "--addr", addr, "pool", "create", "plain", "--provider", "baremetal")
	if req := sentPool(); req.Provider != "baremetal" || req.Provision != nil {
		t.Fatalf("plain pool sent %s", f.last().body)
	}
	if _, _, code := run(t, "", "--addr", addr, "pool", "create", "x", "--template", "image=i", "--max-hosts", "1"); code != 2 {
		t.Fatalf("a provisioned pool without --provider: exit %d, want 2", code)
	}

	// update: the whole pool, with what the flags say changed.
	if _, stderr, code := run(t, "", "--addr", addr, "pool", "update", "auto", "--max-hosts", "5", "--template", "image=ami-2"); code != 0 {
		t.Fatalf("pool update: %d %q", code, stderr)
	}
	if f.last().method != "PUT" || f.last().path != "/v1/pools/auto" {
		t.Fatalf("pool update sent %s %s", f.last().method, f.last().path)
	}
	req = sentPool()
	tm = template(req)
	if req.Name != "auto" || req.Labels["tier"] != "web" || req.Provision.MaxHosts != 5 || req.Provision.MinHosts != 1 || req.Provision.Provider != "aws1" ||
		tm["image"] != "ami-2" || tm["instance_type"] != "t3.small" {
		t.Fatalf("pool update sent %s", f.last().body)
	}
	if _, _, code := run(t, "", "--addr", addr, "pool", "update", "hand", "--max-hosts", "2"); code != 2 {
		t.Fatalf("provisioning a hand pool without --provider: exit %d, want 2", code)
	}

	out, _, code := run(t, "", "--addr", addr, "pool", "show", "auto")
	for _, want := range []string{"aws1, 1 to 3 hosts", "4000m CPU, 8192 MB memory", "500m CPU, 256 MB memory, 3 instances", "ready=2", "booting=1 ready=2"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("pool show lacks %q: %q", want, out)
		}
	}
	out, _, _ = run(t, "", "--addr", addr, "-o", "json", "pool", "show", "auto")
	if !strings.Contains(out, `"machines_by_state"`) || !strings.Contains(out, `"capacity"`) {
		t.Fatalf("pool show -o json: %s", out)
	}

	out, _, code = run(t, "", "--addr", addr, "machine", "ls", "--pool", "auto")
	if code != 0 || f.last().query != "pool=auto" || !strings.Contains(out, "PROVIDER-ID") || !strings.Contains(out, "i-0abc") || !strings.Contains(out, "InsufficientInstanceCapacity") {
		t.Fatalf("machine ls: %q (query %q)", out, f.last().query)
	}
}

func TestHostOfAMachine(t *testing.T) {
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"GET /v1/hosts/h-1":    jsonAnswer(200, apitypes.Host{ID: "h-1", Name: "m-1", Pool: "auto", State: "ready", Machine: "m-1", ProviderID: "i-0abc"}),
		"DELETE /v1/hosts/h-1": jsonAnswer(202, apitypes.Machine{ID: "m-1", State: "draining"}),
		"GET /v1/hosts/h-2":    jsonAnswer(200, apitypes.Host{ID: "h-2", Name: "n2", Pool: "hand", State: "ready"}),
		"DELETE /v1/hosts/h-2": func(w http.ResponseWriter) { w.WriteHeader(204) },
	})
	out, _, code := run(t, "", "--addr", addr, "host", "show", "h-1")
	if code != 0 || !strings.Contains(out, "m-1 i-0abc") {
		t.Fatalf("host show: %q", out)
	}
	out, _, code = run(t, "", "--addr", addr, "host", "rm", "h-1")
	if code != 0 || f.last().method != "DELETE" || !strings.Contains(out, "runs on machine m-1") {
		t.Fatalf("host rm of a machine's host: %d %q", code, out)
	}
	out, _, code = run(t, "", "--addr", addr, "host", "rm", "h-2")
	if code != 0 || !strings.Contains(out, "removed host h-2") {
		t.Fatalf("host rm: %d %q", code, out)
	}
}
