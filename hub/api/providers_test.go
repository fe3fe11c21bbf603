package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/accounts"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/providers"
)

// fakeCloud answers the credential check by the access key id: "refused"
// is refused as AWS does, "slow" never answers; anything else passes.
type fakeCloud struct{ acct providers.Account }

func openFakeCloud(a providers.Account) (providers.Provider, error) {
	if a.Type == "vsphere" {
		return nil, errors.New(`provider type "vsphere" is not built into this binary (have [aws])`)
	}
	return fakeCloud{a}, nil
}

func (f fakeCloud) Check(ctx context.Context) error {
	switch f.acct.Credentials.AccessKeyID {
	case "refused":
		return &providers.Error{Kind: providers.KindBadCredentials, Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials"}
	case "slow":
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

var errNotHere = errors.New("not used by these tests")

func (fakeCloud) Create(context.Context, providers.CreateRequest) (providers.Machine, error) {
	return providers.Machine{}, errNotHere
}
func (fakeCloud) Delete(context.Context, string) error { return errNotHere }
func (fakeCloud) Describe(context.Context, string) (providers.Machine, error) {
	return providers.Machine{}, errNotHere
}
func (fakeCloud) List(context.Context, string) ([]providers.Machine, error) { return nil, errNotHere }
func (fakeCloud) Shape(context.Context, providers.Template) (providers.Resources, bool, error) {
	return providers.Resources{}, false, errNotHere
}

const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"

func awsAccount(name, keyID string) string {
	return `{"name":"` + name + `","type":"aws","region":"us-east-1","endpoint":"http://127.0.0.1:9","credentials":{"access_key_id":"` + keyID + `","secret_access_key":"` + secret + `"}}`
}

// noSecret fails when a body holds the secret.
func noSecret(t *testing.T, what string, b []byte) {
	t.Helper()
	if strings.Contains(string(b), secret) {
		t.Fatalf("%s shows the credentials: %s", what, b)
	}
}

func TestProviderAccounts(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do("admin", "POST", "/v1/providers", awsAccount("aws1", "AKIA1"))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	noSecret(t, "POST", body)
	var p apitypes.Provider
	if err := json.Unmarshal(body, &p); err != nil || p.Credentials != "set" || p.Type != "aws" || p.Region != "us-east-1" || p.Endpoint != "http://127.0.0.1:9" {
		t.Fatalf("created %+v (%v)", p, err)
	}
	for _, path := range []string{"/v1/providers", "/v1/providers/aws1"} {
		code, body, _ := f.do("admin", "GET", path, nil)
		if code != 200 || !strings.Contains(string(body), `"credentials":"set"`) {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		noSecret(t, "GET "+path, body)
		if strings.Contains(string(body), "AKIA1") || strings.Contains(string(body), "access_key") {
			t.Fatalf("GET %s shows credential fields: %s", path, body)
		}
	}
	// Sealed in the store: neither the secret nor the key id in plain text.
	a, _ := f.api.cfg.Store.Snapshot().ProviderAccount(nil, "aws1")
	if strings.Contains(string(a.SealedCredentials), secret) || strings.Contains(string(a.SealedCredentials), "AKIA1") {
		t.Fatal("the store holds the credentials in plain text")
	}
	if got, err := accounts.Open(f.api.cfg.Keys, a); err != nil || got.Credentials.SecretAccessKey != secret {
		t.Fatalf("the sealed credentials do not open: %v", err)
	}

	bad := []struct {
		name, who, method, path, body string
		code                          int
		field, msg                    string
	}{
		{"not admin", "acme/tenant-admin", "POST", "/v1/providers", awsAccount("x1", "AKIA1"), 403, "", ""},
		{"name taken", "admin", "POST", "/v1/providers", awsAccount("aws1", "AKIA1"), 409, "name", ""},
		{"bad name", "admin", "POST", "/v1/providers", awsAccount("Bad_Name", "AKIA1"), 400, "name", ""},
		{"unknown type", "admin", "POST", "/v1/providers", `{"name":"x1","type":"gcp","credentials":{}}`, 400, "type", ""},
		{"unknown field", "admin", "POST", "/v1/providers", `{"name":"x1","type":"aws","colour":1,"credentials":{}}`, 400, "colour", ""},
		{"no credentials", "admin", "POST", "/v1/providers", `{"name":"x1","type":"aws"}`, 400, "credentials", ""},
		{"missing credential", "admin", "POST", "/v1/providers", `{"name":"x1","type":"aws","credentials":{"access_key_id":"a"}}`, 400, "credentials", "secret_access_key"},
		{"another type's credential", "admin", "POST", "/v1/providers", `{"name":"x1","type":"aws","credentials":{"access_key_id":"a","secret_access_key":"b","password":"p"}}`, 400, "credentials", "password"},
		{"bad endpoint", "admin", "POST", "/v1/providers", `{"name":"x1","type":"aws","endpoint":"ftp://x","credentials":{"access_key_id":"a","secret_access_key":"b"}}`, 400, "endpoint", ""},
		{"refused credentials", "admin", "POST", "/v1/providers", awsAccount("x1", "refused"), 422, "credentials", "AuthFailure: AWS was not able to validate"},
		{"cloud does not answer", "admin", "POST", "/v1/providers", awsAccount("x1", "slow"), 422, "credentials", "did not answer"},
		{"type not built in", "admin", "POST", "/v1/providers", `{"name":"x1","type":"vsphere","endpoint":"https://vc/sdk","credentials":{"username":"u","password":"` + secret + `"}}`, 422, "type", "not built into this binary"},
		{"put: missing", "admin", "PUT", "/v1/providers/nope", awsAccount("nope", "AKIA1"), 404, "", ""},
		{"put: name mismatch", "admin", "PUT", "/v1/providers/aws1", awsAccount("aws2", "AKIA1"), 400, "name", ""},
		{"put: refused credentials", "admin", "PUT", "/v1/providers/aws1", awsAccount("aws1", "refused"), 422, "credentials", "AuthFailure"},
		{"delete missing", "admin", "DELETE", "/v1/providers/nope", "", 404, "", ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := f.api.cfg.Store.Snapshot().LatestIndex()
			var b any
			if tt.body != "" {
				b = tt.body
			}
			code, body, _ := f.do(tt.who, tt.method, tt.path, b)
			if code != tt.code {
				t.Fatalf("got %d %s, want %d", code, body, tt.code)
			}
			noSecret(t, "an error", body)
			var e apitypes.Error
			if err := json.Unmarshal(body, &e); err != nil || e.Field != tt.field || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("error %s: want field %q and %q in the message", body, tt.field, tt.msg)
			}
			if after := f.api.cfg.Store.Snapshot().LatestIndex(); after != before {
				t.Fatalf("a refused request moved the index from %d to %d", before, after)
			}
		})
	}

	// PUT replaces the whole account; the new credentials are sealed anew.
	var up apitypes.Provider
	f.ok("admin", "PUT", "/v1/providers/aws1", `{"type":"aws","region":"eu-west-1","credentials":{"access_key_id":"AKIA2","secret_access_key":"other"}}`, &up)
	if up.Region != "eu-west-1" || up.Endpoint != "" || up.Credentials != "set" {
		t.Fatalf("after PUT: %+v", up)
	}
	a, _ = f.api.cfg.Store.Snapshot().ProviderAccount(nil, "aws1")
	if got, _ := accounts.Open(f.api.cfg.Keys, a); got.Credentials.AccessKeyID != "AKIA2" {
		t.Fatalf("PUT kept the old credentials: %q", got.Credentials.AccessKeyID)
	}

	// A pool that uses the account keeps it from being deleted.
	f.ok("admin", "POST", "/v1/pools", `{"name":"auto","provision":{"provider":"aws1","template":{"instance_type":"t3.small","image":"ami-1"},"max_hosts":2}}`, nil)
	if code, body, _ := f.do("admin", "DELETE", "/v1/providers/aws1", nil); code != 409 {
		t.Fatalf("delete of a used provider: %d %s", code, body)
	}
	f.ok("admin", "DELETE", "/v1/pools/auto", nil, nil)
	f.ok("admin", "DELETE", "/v1/providers/aws1", nil, nil)
	if code, _, _ := f.do("admin", "GET", "/v1/providers/aws1", nil); code != 404 {
		t.Fatalf("deleted provider answers %d", code)
	}
}

func TestProvisionedPools(t *testing.T) {
	f := newFixture(t)
	f.ok("admin", "POST", "/v1/providers", awsAccount("aws1", "AKIA1"), nil)
	var p apitypes.Pool
	code, body, _ := f.do("admin", "POST", "/v1/pools", `{"name":"auto","datacenter":"dc1","provision":{"provider":"aws1","template":{"instance_type":"t3.small","image":"ami-1","security_groups":"sg-1;sg-2"},"min_hosts":1,"max_hosts":3}}`)
	if code != 201 || json.Unmarshal(body, &p) != nil {
		t.Fatalf("create: %d %s", code, body)
	}
	pr := p.Provision
	if pr == nil || pr.Provider != "aws1" || pr.MinHosts != 1 || pr.MaxHosts != 3 || pr.ScaleDownAfter.D() != 10*time.Minute || pr.BootTimeout.D() != 10*time.Minute {
		t.Fatalf("provision %+v", pr)
	}
	if p.Provider != "aws" {
		t.Fatalf("a provisioned pool's provider is %q, want its account's type", p.Provider)
	}
	if string(pr.Template) != `{"instance_type":"t3.small","image":"ami-1","security_groups":"sg-1;sg-2"}` {
		t.Fatalf("template stored as %s", pr.Template)
	}
	// The pool's provider, when given, is the account's type; "ssh" and
	// "baremetal" are pool providers too.
	f.ok("admin", "POST", "/v1/pools", `{"name":"auto2","provider":"aws","provision":{"provider":"aws1","template":{"instance_type":"t3.small","image":"ami-1"},"max_hosts":1}}`, nil)
	f.ok("admin", "POST", "/v1/pools", `{"name":"metal","provider":"ssh"}`, nil)
	f.ok("admin", "POST", "/v1/pools", `{"name":"metal2","provider":"baremetal"}`, nil)

	bad := []struct {
		name, method, path, body string
		code                     int
		field                    string
	}{
		{"unknown template key", "POST", "/v1/pools", `{"name":"x","provision":{"provider":"aws1","template":{"instance_type":"t","image":"i","flavor":"f"}, "max_hosts":1}}`, 400, "provision.template"},
		{"template misses a key", "POST", "/v1/pools", `{"name":"x","provision":{"provider":"aws1","template":{"image":"i"}, "max_hosts":1}}`, 400, "provision.template"},
		{"template not an object", "POST", "/v1/pools", `{"name":"x","provision":{"provider":"aws1","template":"t3", "max_hosts":1}}`, 400, "provision.template"},
		{"missing account", "POST", "/v1/pools", `{"name":"x","provision":{"provider":"nope","template":{}, "max_hosts":1}}`, 422, "provision.provider"},
		{"provider is not the account's type", "POST", "/v1/pools", `{"name":"x","provider":"vsphere","provision":{"provider":"aws1","template":{"instance_type":"t","image":"i"},"max_hosts":1}}`, 422, "provider"},
		{"min above max", "POST", "/v1/pools", `{"name":"x","provision":{"provider":"aws1","template":{"instance_type":"t","image":"i"},"min_hosts":3,"max_hosts":2}}`, 400, "provision.min_hosts"},
		{"max 0", "POST", "/v1/pools", `{"name":"x","provision":{"provider":"aws1","template":{"instance_type":"t","image":"i"},"max_hosts":0}}`, 400, "provision.max_hosts"},
		{"bad duration", "POST", "/v1/pools", `{"name":"x","provision":{"provider":"aws1","template":{"instance_type":"t","image":"i"},"max_hosts":1,"boot_timeout":"soon"}}`, 400, ""},
		{"unknown pool provider", "POST", "/v1/pools", `{"name":"x","provider":"gcp"}`, 400, "provider"},
		{"put: missing pool", "PUT", "/v1/pools/nope", `{"datacenter":"dc1"}`, 404, ""},
		{"put: name mismatch", "PUT", "/v1/pools/auto", `{"name":"other"}`, 400, "name"},
		{"put: bad template", "PUT", "/v1/pools/auto", `{"provision":{"provider":"aws1","template":{"image":"i"},"max_hosts":1}}`, 400, "provision.template"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := f.api.cfg.Store.Snapshot().LatestIndex()
			code, body, _ := f.do("admin", tt.method, tt.path, tt.body)
			var e apitypes.Error
			if code != tt.code || json.Unmarshal(body, &e) != nil || (tt.field != "" && e.Field != tt.field) {
				t.Fatalf("got %d %s, want %d field %q", code, body, tt.code, tt.field)
			}
			if after := f.api.cfg.Store.Snapshot().LatestIndex(); after != before {
				t.Fatal("a refused request changed the state")
			}
		})
	}

	// PUT takes the whole pool.
	f.ok("admin", "PUT", "/v1/pools/auto", `{"datacenter":"dc1","labels":{"tier":"web"},"provision":{"provider":"aws1","template":{"instance_type":"t3.large","image":"ami-2"},"min_hosts":0,"max_hosts":5,"scale_down_after":"2m"}}`, &p)
	if p.Provision.MaxHosts != 5 || p.Provision.ScaleDownAfter.D() != 2*time.Minute || p.Labels["tier"] != "web" || !strings.Contains(string(p.Provision.Template), "t3.large") {
		t.Fatalf("after PUT: %+v %+v", p, p.Provision)
	}

	// A pool with machines keeps its provision.
	f.applyState(state.MachineCreateType, &state.MachineCreateRequest{Machine: state.Machine{ID: "m1", Pool: "auto"}, Token: state.JoinToken{ID: "mt1", SecretHash: "x"}, Time: time.Now()})
	if code, body, _ := f.do("admin", "PUT", "/v1/pools/auto", `{"datacenter":"dc1"}`); code != 409 {
		t.Fatalf("dropping the provision of a pool with machines: %d %s", code, body)
	}
	f.ok("admin", "GET", "/v1/pools/auto", nil, &p)
	if p.Provision == nil || p.MachinesByState["creating"] != 1 || p.Capacity == nil || p.Usage == nil {
		t.Fatalf("pool show: %+v", p)
	}
}

func TestMachinesAndTheirHosts(t *testing.T) {
	f := newFixture(t)
	f.ok("admin", "POST", "/v1/providers", awsAccount("aws1", "AKIA1"), nil)
	f.ok("admin", "POST", "/v1/pools", `{"name":"auto","provision":{"provider":"aws1","template":{"instance_type":"t3.small","image":"ami-1"},"max_hosts":3}}`, nil)
	now := time.Now().UTC().Truncate(time.Second)
	for _, id := range []string{"m1", "m2"} {
		f.applyState(state.MachineCreateType, &state.MachineCreateRequest{Machine: state.Machine{ID: id, Pool: "auto"}, Token: state.JoinToken{ID: "t-" + id, SecretHash: "s-" + id}, Time: now})
	}
	f.applyState(state.MachineUpdateType, &state.MachineUpdateRequest{ID: "m1", State: state.MachineBooting, ProviderID: ptrs("i-0001"), Time: now})
	f.applyState(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "t-m1", SecretHash: "s-m1", MachineID: "m1",
		Host: state.Host{ID: "h-m1", Name: "m1", Inventory: state.Inventory{CPUs: 2, MemoryBytes: 4 << 30}}, Time: now})

	code, body, _ := f.do("admin", "GET", "/v1/machines", nil)
	var raw []map[string]any
	if code != 200 || json.Unmarshal(body, &raw) != nil || len(raw) != 2 {
		t.Fatalf("machines: %d %s", code, body)
	}
	for _, k := range []string{"id", "pool", "provider", "provider_id", "state", "host", "created_at", "error"} {
		if _, ok := raw[0][k]; !ok {
			t.Fatalf("machine without %q: %s", k, body)
		}
	}
	var ms []apitypes.Machine
	f.ok("admin", "GET", "/v1/machines?pool=auto", nil, &ms)
	if len(ms) != 2 || ms[0].ID != "m1" || ms[0].State != "ready" || ms[0].Host != "h-m1" || ms[0].ProviderID != "i-0001" || ms[0].Provider != "aws1" || ms[1].State != "creating" {
		t.Fatalf("machines of auto: %+v", ms)
	}
	f.ok("admin", "GET", "/v1/machines?pool=aws-bj", nil, &ms)
	if len(ms) != 0 {
		t.Fatalf("machines of aws-bj: %+v", ms)
	}
	if code, _, _ := f.do("acme/tenant-admin", "GET", "/v1/machines", nil); code != 403 {
		t.Fatalf("a tenant lists machines: %d", code)
	}

	var hosts []apitypes.Host
	f.ok("admin", "GET", "/v1/hosts?pool=auto", nil, &hosts)
	if len(hosts) != 1 || hosts[0].Machine != "m1" || hosts[0].ProviderID != "i-0001" {
		t.Fatalf("host of m1: %+v", hosts)
	}
	var pool apitypes.Pool
	f.ok("admin", "GET", "/v1/pools/auto", nil, &pool)
	if pool.Capacity.CPU != 2000 || pool.Capacity.Memory != 4096 || pool.HostsByState["ready"] != 1 || pool.MachinesByState["ready"] != 1 || pool.MachinesByState["creating"] != 1 {
		t.Fatalf("pool show: capacity %+v hosts %v machines %v", pool.Capacity, pool.HostsByState, pool.MachinesByState)
	}

	// Removing a provisioned host retires its machine: draining, the host
	// stays until the provisioning loop has deleted the cloud machine.
	code, body, _ = f.do("admin", "DELETE", "/v1/hosts/h-m1", nil)
	var m apitypes.Machine
	if code != 202 || json.Unmarshal(body, &m) != nil || m.State != "draining" {
		t.Fatalf("DELETE of a provisioned host: %d %s", code, body)
	}
	if code, _, _ := f.do("admin", "GET", "/v1/hosts/h-m1", nil); code != 200 {
		t.Fatalf("the host went at once: %d", code)
	}
	if code, _, _ := f.do("admin", "DELETE", "/v1/hosts/h-m1", nil); code != 202 {
		t.Fatalf("a second DELETE: %d", code)
	}
	// A hand-enrolled host is removed as before.
	f.ok("admin", "DELETE", "/v1/hosts/host1", nil, nil)
	if code, _, _ := f.do("admin", "GET", "/v1/hosts/host1", nil); code != 404 {
		t.Fatalf("hand-enrolled host still there: %d", code)
	}
	// Deleted machines leave the list.
	f.applyState(state.MachineDeleteType, &state.MachineDeleteRequest{ID: "m1", Time: now})
	f.ok("admin", "GET", "/v1/machines", nil, &ms)
	if len(ms) != 1 || ms[0].ID != "m2" {
		t.Fatalf("machines after deleting m1: %+v", ms)
	}
}

func ptrs(s string) *string { return &s }
