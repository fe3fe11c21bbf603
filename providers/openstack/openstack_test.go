package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
)

const testPassword = "wharf-secret-VALUE-never-shown"

var testUser = cloudsim.OpenStackUser{Name: "wharf-ops", Password: testPassword, Project: "wharf-prod", Domain: "Default"}

func newSim(t testing.TB, opts cloudsim.OpenStackOptions) *cloudsim.OpenStack {
	t.Helper()
	opts.Users = []cloudsim.OpenStackUser{testUser}
	s, err := cloudsim.NewOpenStack(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func account(s *cloudsim.OpenStack) providers.Account {
	return providers.Account{
		Name: "test", Type: Type, Region: s.Region(), Endpoint: s.URL(),
		Credentials: providers.Credentials{Username: testUser.Name, Password: testPassword, Project: testUser.Project, Domain: testUser.Domain},
	}
}

// openFast opens a provider that retries without waiting, so that tests
// of retried faults take no seconds.
func openFast(t testing.TB, acct providers.Account) *Provider {
	t.Helper()
	p, err := open(acct)
	if err != nil {
		t.Fatal(err)
	}
	p.wait = func(int, time.Duration) time.Duration { return time.Millisecond }
	return p
}

func request(machine string) providers.CreateRequest {
	return providers.CreateRequest{
		MachineID: machine,
		Cluster:   "c1",
		Pool:      "os-sh",
		Template:  providers.Template{Flavor: "m1.small", Image: "ubuntu-24.04", Network: "private"},
		UserData:  []byte("#cloud-config\nruncmd:\n  - curl -fsS http://hub/install.sh | sh -s -- --token WJ1.x\n"),
		Tags:      map[string]string{providers.TagCluster: "c1", providers.TagPool: "os-sh", providers.TagMachine: machine, "team": "infra"},
	}
}

// wantKind fails unless err is a *providers.Error of kind with code
// ("" for any code), and never quotes the password.
func wantKind(t testing.TB, err error, kind providers.Kind, code string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want a *providers.Error", err, err)
	}
	if pe.Kind != kind || code != "" && pe.Code != code {
		t.Fatalf("kind %s code %s (%v), want %s %s", pe.Kind, pe.Code, err, kind, code)
	}
	if code != "" && pe.Message == "" {
		t.Fatalf("no message kept: %v", err)
	}
	if strings.Contains(err.Error(), testPassword) || strings.Contains(fmt.Sprintf("%+v %#v", pe, pe.Err), testPassword) {
		t.Fatalf("the error quotes the password: %v", err)
	}
}

func TestKeystoneURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:5000", "http://127.0.0.1:5000/v3/"},
		{"http://127.0.0.1:5000/", "http://127.0.0.1:5000/v3/"},
		{"http://127.0.0.1:5000/v3", "http://127.0.0.1:5000/v3/"},
		{"https://keystone.example/v3/", "https://keystone.example/v3/"},
		{"https://cloud.example/identity", "https://cloud.example/identity/v3/"},
		{"https://cloud.example/identity/v3//", "https://cloud.example/identity/v3/"},
	} {
		if got, err := keystoneURL(tc.in); err != nil || got != tc.want {
			t.Errorf("%s → %s %v, want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:5000", "ftp://h/v3", "http:///v3", "http://h/v3?x=1"} {
		if _, err := keystoneURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOpen(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	p, err := providers.Open(account(s))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("check through providers.Open: %v", err)
	}
	// Keystone's URL with or without /v3.
	for _, ep := range []string{strings.TrimSuffix(s.URL(), "/v3"), strings.TrimSuffix(s.URL(), "/v3") + "/", s.URL() + "/"} {
		acct := account(s)
		acct.Endpoint = ep
		if err := openFast(t, acct).Check(context.Background()); err != nil {
			t.Errorf("endpoint %s: %v", ep, err)
		}
	}
	for name, mutate := range map[string]func(*providers.Account){
		"no password":     func(a *providers.Account) { a.Credentials.Password = "" },
		"no username":     func(a *providers.Account) { a.Credentials.Username = "" },
		"no project":      func(a *providers.Account) { a.Credentials.Project = "" },
		"no domain":       func(a *providers.Account) { a.Credentials.Domain = "" },
		"no endpoint":     func(a *providers.Account) { a.Endpoint = "" },
		"endpoint no URL": func(a *providers.Account) { a.Endpoint = "127.0.0.1:1" },
		"ftp endpoint":    func(a *providers.Account) { a.Endpoint = "ftp://127.0.0.1/" },
		"other type":      func(a *providers.Account) { a.Type = "aws" },
	} {
		acct := account(s)
		mutate(&acct)
		if _, err := Open(acct); err == nil {
			t.Errorf("%s: opened", name)
		} else if strings.Contains(err.Error(), testPassword) {
			t.Errorf("%s: the error quotes the password: %v", name, err)
		}
	}
	if n := s.Calls()["CreateServer"]; n != 0 {
		t.Fatalf("opening made %d servers", n)
	}
}

// TestNoAmbientConfig: credentials, region and endpoint come from the
// account alone, whatever OS_* variables and clouds.yaml say.
func TestNoAmbientConfig(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".config", "openstack"), 0o700); err != nil {
		t.Fatal(err)
	}
	clouds := "clouds:\n  openstack:\n    auth:\n      auth_url: http://127.0.0.1:1/v3\n      username: other\n      password: from-file\n"
	if err := os.WriteFile(filepath.Join(home, ".config", "openstack", "clouds.yaml"), []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	for k, v := range map[string]string{"OS_AUTH_URL": "http://127.0.0.1:1/v3", "OS_USERNAME": "other", "OS_PASSWORD": "from-env",
		"OS_PROJECT_NAME": "other", "OS_REGION_NAME": "Elsewhere", "OS_CLOUD": "openstack", "HTTP_PROXY": "http://127.0.0.1:1", "http_proxy": "http://127.0.0.1:1"} {
		t.Setenv(k, v)
	}
	if err := openFast(t, account(s)).Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
}

func TestCheckCredentials(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	ctx := context.Background()
	if err := openFast(t, account(s)).Check(ctx); err != nil {
		t.Fatalf("right password: %v", err)
	}
	for name, mutate := range map[string]func(*providers.Account){
		"wrong password": func(a *providers.Account) { a.Credentials.Password = "not-the-" + testPassword[:5] },
		"unknown user":   func(a *providers.Account) { a.Credentials.Username = "nobody" },
		"other project":  func(a *providers.Account) { a.Credentials.Project = "someone-elses" },
		"other domain":   func(a *providers.Account) { a.Credentials.Domain = "Corp" },
	} {
		acct := account(s)
		mutate(&acct)
		t.Run(name, func(t *testing.T) {
			wantKind(t, openFast(t, acct).Check(ctx), providers.KindBadCredentials, "Unauthorized")
		})
	}
	region := account(s)
	region.Region = "RegionTwo"
	wantKind(t, openFast(t, region).Check(ctx), providers.KindBadRequest, "EndpointNotFound")
	if n := s.Calls()["Authenticate"]; n != 6 {
		t.Fatalf("%d authentications, want 6", n)
	}
}

func TestCreateIdempotentWithMetadataAndUserData(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	p := openFast(t, account(s))
	ctx := context.Background()
	req := request("m-0001")
	m, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Create(ctx, req) // the hub retrying after a restart
	if err != nil {
		t.Fatal(err)
	}
	if m.ProviderID == "" || again.ProviderID != m.ProviderID || m.MachineID != "m-0001" || m.State != providers.StatePending {
		t.Fatalf("created %+v, then %+v", m, again)
	}
	list := s.Servers()
	if len(list) != 1 {
		t.Fatalf("%d servers, want 1", len(list))
	}
	sv := list[0]
	if string(sv.UserData) != string(req.UserData) {
		t.Fatalf("user data %q, want %q", sv.UserData, req.UserData)
	}
	wantMD := map[string]string{"wharf-cluster": "c1", "wharf-pool": "os-sh", "wharf-machine": "m-0001", "team": "infra"}
	if fmt.Sprint(sv.Metadata) != fmt.Sprint(wantMD) || fmt.Sprint(m.Tags) != fmt.Sprint(wantMD) || fmt.Sprint(again.Tags) != fmt.Sprint(wantMD) {
		t.Fatalf("metadata %v (machine %v, again %v), want %v", sv.Metadata, m.Tags, again.Tags, wantMD)
	}
	if sv.Name != "wharf-m-0001" || sv.FlavorID != "2" || sv.ImageID != s.Images()[0].ID || !slices.Equal(sv.Networks, []string{s.Networks()[0].ID}) {
		t.Fatalf("server %+v", sv)
	}
	calls := s.Calls()
	if calls["CreateServer"] != 1 || calls["ListServers"] != 2 || calls["Authenticate"] != 1 {
		t.Fatalf("calls %v, want one create after each of two lookups and one authentication", calls)
	}
	// Names resolve once: a second machine asks no lookups of them.
	if _, err := p.Create(ctx, request("m-0002")); err != nil {
		t.Fatal(err)
	}
	calls = s.Calls()
	if calls["ListFlavors"] != 1 || calls["ListImages"] != 1 || calls["ListNetworks"] != 1 {
		t.Fatalf("calls %v, want the names resolved once", calls)
	}
	// Ids work as well as names.
	byID := request("m-0003")
	byID.Template = providers.Template{Flavor: "3", Image: s.Images()[1].ID, Network: s.Networks()[0].ID}
	if _, err := p.Create(ctx, byID); err != nil {
		t.Fatal(err)
	}
	if sv, _ := s.Server(s.Servers()[2].ID); sv.FlavorID != "3" || sv.ImageID != s.Images()[1].ID {
		t.Fatalf("by id: %+v", sv)
	}

	s.ResetCalls()
	for name, mutate := range map[string]func(*providers.CreateRequest){
		"no machine id":        func(r *providers.CreateRequest) { r.MachineID = "" },
		"machine id too long":  func(r *providers.CreateRequest) { r.MachineID = strings.Repeat("m", 250) },
		"machine id not ASCII": func(r *providers.CreateRequest) { r.MachineID = "m-\u00e9" },
		"no image":             func(r *providers.CreateRequest) { r.Template.Image = "" },
		"no flavor":            func(r *providers.CreateRequest) { r.Template.Flavor = "" },
		"other machine tag":    func(r *providers.CreateRequest) { r.Tags[providers.TagMachine] = "m-other" },
		"tag value too long":   func(r *providers.CreateRequest) { r.Tags["x"] = strings.Repeat("v", 256) },
		"user data too large":  func(r *providers.CreateRequest) { r.UserData = make([]byte, 50000) },
	} {
		r := request("m-bad")
		mutate(&r)
		_, err := p.Create(ctx, r)
		if providers.KindOf(err) != providers.KindBadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(s.Calls()); n != 0 {
		t.Fatalf("bad requests reached OpenStack: %v", s.Calls())
	}
	for _, tc := range []struct {
		mutate func(*providers.Template)
		code   string
	}{
		{func(t *providers.Template) { t.Flavor = "m9.huge" }, "FlavorNotFound"},
		{func(t *providers.Template) { t.Image = "windows-95" }, "ImageNotFound"},
		{func(t *providers.Template) { t.Network = "public" }, "NetworkNotFound"},
	} {
		r := request("m-unknown")
		tc.mutate(&r.Template)
		_, err := p.Create(ctx, r)
		wantKind(t, err, providers.KindBadRequest, tc.code)
	}
	if n := s.Calls()["CreateServer"]; n != 0 || len(s.Servers()) != 3 {
		t.Fatalf("unknown names made servers: %d calls, %d servers", n, len(s.Servers()))
	}
}

// TestLostAnswerAdoptsTheServer: the create's answer is lost (the server
// was made); the retry looks it up first and adopts it: one server.
func TestLostAnswerAdoptsTheServer(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	p := openFast(t, account(s))
	ctx := context.Background()
	s.LoseAnswers("CreateServer", 1)
	m, err := p.Create(ctx, request("m-lost"))
	if err != nil {
		t.Fatalf("a lost answer within the attempts: %v", err)
	}
	list := s.Servers()
	if len(list) != 1 || list[0].ID != m.ProviderID || m.MachineID != "m-lost" {
		t.Fatalf("servers %+v, machine %+v: want one, adopted", list, m)
	}
	if calls := s.Calls(); calls["CreateServer"] != 1 || calls["ListServers"] != 2 {
		t.Fatalf("calls %v, want one create between two lookups", calls)
	}
}

// TestLostAnswersThenHubRetry: the create's answer is lost and the
// provider has no attempt left, so the create fails as unavailable; the
// hub's retry with the same machine id finds the server the lost call
// made.
func TestLostAnswersThenHubRetry(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	p := openFast(t, account(s))
	ctx := context.Background()
	p.attempts = 1
	s.LoseAnswers("CreateServer", 1)
	_, err := p.Create(ctx, request("m-lost"))
	wantKind(t, err, providers.KindUnavailable, "")
	if !providers.Retryable(err) {
		t.Fatalf("a lost answer is not retryable: %v", err)
	}
	p.attempts = maxAttempts
	m, err := p.Create(ctx, request("m-lost"))
	if err != nil {
		t.Fatal(err)
	}
	list := s.Servers()
	if len(list) != 1 || list[0].ID != m.ProviderID {
		t.Fatalf("servers %+v after a lost answer and a retry, want one: %s", list, m.ProviderID)
	}
	if n := s.Calls()["CreateServer"]; n != 1 {
		t.Fatalf("%d creates, want 1", n)
	}
}

func TestDescribeListDelete(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{BootDelay: 100 * time.Millisecond, DeleteDelay: time.Second})
	p := openFast(t, account(s))
	p.pageSize = 5 // several pages
	ctx := context.Background()
	var ours []string
	for i := range 12 {
		req := request(fmt.Sprintf("m-%02d", i))
		if i%3 == 2 {
			req.Cluster, req.Tags[providers.TagCluster] = "other", "other"
		}
		m, err := p.Create(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if req.Cluster == "c1" {
			ours = append(ours, m.ProviderID)
		}
	}
	s.ResetCalls()
	list, err := p.List(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list {
		got = append(got, m.ProviderID)
		if m.Tags[providers.TagCluster] != "c1" || m.MachineID == "" {
			t.Fatalf("listed %+v", m)
		}
	}
	if !slices.Equal(got, ours) {
		t.Fatalf("listed %v, want %v", got, ours)
	}
	if n := s.Calls()["ListServers"]; n != 3 {
		t.Fatalf("%d ListServers pages for 12 servers by 5, want 3", n)
	}

	id := ours[0]
	waitState(t, p, id, providers.StateRunning)
	m, err := p.Describe(ctx, id)
	if err != nil || m.MachineID != "m-00" || len(m.Addresses) == 0 {
		t.Fatalf("describe: %+v %v", m, err)
	}
	if err := p.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if m, err := p.Describe(ctx, id); err != nil || m.State != providers.StateGone {
		t.Fatalf("describe while deleting: %+v %v", m, err)
	}
	if list, err = p.List(ctx, "c1"); err != nil || len(list) != len(ours) {
		t.Fatalf("a deleting machine left the list at once: %d, %v", len(list), err)
	}
	waitGone(t, p, id)
	if err := p.Delete(ctx, id); err != nil {
		t.Fatalf("delete of a deleted server: %v", err)
	}
	unknown := "0b1c2d3e-0000-4000-8000-000000000000"
	if err := p.Delete(ctx, unknown); err != nil {
		t.Fatalf("delete of an unknown server: %v", err)
	}
	_, err = p.Describe(ctx, unknown)
	wantKind(t, err, providers.KindNotFound, "itemNotFound")
	if list, err = p.List(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Fatalf("list of another cluster: %v %v", list, err)
	}
}

// TestDescribeStates: a building server is pending; one Nova could not
// build is stopped, with Nova's fault message as an error.
func TestDescribeStates(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{BootDelay: time.Hour})
	p := openFast(t, account(s))
	ctx := context.Background()
	building, err := p.Create(ctx, request("m-build"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := p.Describe(ctx, building.ProviderID); err != nil || m.State != providers.StatePending || m.MachineID != "m-build" {
		t.Fatalf("describe while building: %+v %v", m, err)
	}
	if err := p.Delete(ctx, building.ProviderID); err != nil {
		t.Fatal(err)
	}
	waitGone(t, p, building.ProviderID)
	s.SetBootDelay(0)
	s.FailBoots(1, "No valid host was found. There are not enough hosts available.")
	m, err := p.Create(ctx, request("m-err"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := p.Describe(ctx, m.ProviderID)
		if err != nil {
			wantKind(t, err, providers.KindUnavailable, "ERROR")
			if !strings.Contains(err.Error(), "No valid host was found") || got.State != providers.StateStopped || got.ProviderID != m.ProviderID {
				t.Fatalf("describe of a failed server: %+v %v", got, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never failed: %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	list, err := p.List(ctx, "c1")
	if err != nil || len(list) != 1 || list[0].State != providers.StateStopped || list[0].ProviderID != m.ProviderID {
		t.Fatalf("list: %+v %v", list, err)
	}
}

// waitGone waits until Nova no longer knows the server.
func waitGone(t testing.TB, p *Provider, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := p.Describe(context.Background(), id)
		if providers.KindOf(err) == providers.KindNotFound {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted server %s stays: %v", id, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitState(t testing.TB, p *Provider, id string, want providers.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := p.Describe(context.Background(), id)
		if err == nil && m.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s %v, want %s", id, m.State, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShape(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	p := openFast(t, account(s))
	ctx := context.Background()
	for range 3 {
		r, ok, err := p.Shape(ctx, providers.Template{Flavor: "m1.large", Image: "ubuntu-24.04"})
		if err != nil || !ok || r.CPUMillis != 4000 || r.MemoryBytes != 8<<30 {
			t.Fatalf("shape %+v %v %v", r, ok, err)
		}
	}
	if n := s.Calls()["ListFlavors"]; n != 1 {
		t.Fatalf("%d ListFlavors calls, want 1 (cached)", n)
	}
	if r, ok, err := p.Shape(ctx, providers.Template{Flavor: "1"}); err != nil || !ok || r.CPUMillis != 1000 || r.MemoryBytes != 512<<20 {
		t.Fatalf("shape by id: %+v %v %v", r, ok, err)
	}
	if _, ok, err := p.Shape(ctx, providers.Template{}); ok || err != nil {
		t.Fatalf("no flavor: %v %v", ok, err)
	}
	_, ok, err := p.Shape(ctx, providers.Template{Flavor: "m9.gigantic"})
	if ok {
		t.Fatal("an unknown flavor has a shape")
	}
	wantKind(t, err, providers.KindBadRequest, "FlavorNotFound")
}

// TestFaultKinds: every refusal Nova can give maps to the kind the hub
// branches on, keeping Nova's error name and message.
func TestFaultKinds(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	p := openFast(t, account(s))
	ctx := context.Background()
	if err := p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status int
		msg    string
		kind   providers.Kind
		code   string
	}{
		{400, "Invalid input for field/attribute flavorRef.", providers.KindBadRequest, "badRequest"},
		{401, "The request you have made requires authentication.", providers.KindBadCredentials, "unauthorized"},
		{403, "Policy doesn't allow os_compute_api:servers:create to be performed.", providers.KindBadCredentials, "forbidden"},
		{403, "Quota exceeded for cores: Requested 2, but already used 20 of 20 cores", providers.KindQuota, "forbidden"},
		{413, "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances", providers.KindQuota, "overLimit"},
		{413, "This request was rate-limited.", providers.KindThrottled, "overLimit"},
		{429, "This request was rate-limited.", providers.KindThrottled, "overLimit"},
		{409, "Cannot 'create' instance while it is in task_state deleting", providers.KindUnavailable, "conflictingRequest"},
		{500, "Unexpected API Error.", providers.KindUnavailable, "computeFault"},
		{503, "The server is currently unavailable.", providers.KindUnavailable, "serviceUnavailable"},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.kind), func(t *testing.T) {
			s.ClearFaults()
			s.Inject(cloudsim.NovaFault{Call: "CreateServer", Status: tc.status, Message: tc.msg})
			_, err := p.Create(ctx, request("m-fault"))
			wantKind(t, err, tc.kind, tc.code)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("message lost: %v", err)
			}
		})
	}
	s.ClearFaults()
	if n := len(s.Servers()); n != 0 {
		t.Fatalf("refused creates made %d servers", n)
	}
	// A 401 once (a token revoked early) is passed by authenticating again.
	s.Inject(cloudsim.NovaFault{Call: "CreateServer", Status: 401, Times: 1})
	if _, err := p.Create(ctx, request("m-401")); err != nil {
		t.Fatalf("one 401: %v", err)
	}
}

func TestQuota(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{MaxInstances: 2})
	p := openFast(t, account(s))
	ctx := context.Background()
	for _, id := range []string{"m-1", "m-2"} {
		if _, err := p.Create(ctx, request(id)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := p.Create(ctx, request("m-3"))
	wantKind(t, err, providers.KindQuota, "forbidden")
	if !strings.Contains(err.Error(), "Quota exceeded for instances") {
		t.Fatalf("quota message: %v", err)
	}
	if n := s.Calls()["CreateServer"]; n != 3 {
		t.Fatalf("%d creates, want 3: a quota is not retried", n)
	}
}

// TestThrottling: throttles for fewer calls than the attempts pass; more
// are KindThrottled; Retry-After is waited for.
func TestThrottling(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	p := openFast(t, account(s))
	ctx := context.Background()
	s.Throttle("CreateServer", 2, 0)
	if _, err := p.Create(ctx, request("m-1")); err != nil {
		t.Fatalf("two throttles within three attempts: %v", err)
	}
	s.Throttle("ListServers", maxAttempts, 0)
	_, err := p.List(ctx, "c1")
	wantKind(t, err, providers.KindThrottled, "overLimit")
	if len(s.Servers()) != 1 {
		t.Fatalf("%d servers, want 1", len(s.Servers()))
	}

	slow, err := open(account(s)) // the real backoff
	if err != nil {
		t.Fatal(err)
	}
	s.Throttle("ListServers", 1, 1)
	start := time.Now()
	if _, err := slow.List(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("retried after %v, before Retry-After: 1", d)
	}
	if got := backoff(1, 0); got != baseWait {
		t.Fatalf("first backoff %v", got)
	}
	if got := backoff(3, time.Minute); got != maxWait {
		t.Fatalf("capped backoff %v", got)
	}
}

func TestTimeoutIsUnavailable(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	p := openFast(t, account(s))
	s.SetLatency(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	wantKind(t, p.Check(ctx), providers.KindUnavailable, "")
	s.SetLatency(0)
	if err := p.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.SetLatency(5 * time.Second)
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := p.List(ctx, "c1")
	wantKind(t, err, providers.KindUnavailable, "")
	s.SetLatency(0)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := p.Check(ctx); !errors.Is(err, context.Canceled) || providers.KindOf(err) != "" {
		t.Fatalf("a cancelled call: %v (kind %q)", err, providers.KindOf(err))
	}
}

// TestTokenExpiry: an expired token is replaced by authenticating again,
// without the caller seeing it.
func TestTokenExpiry(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	p := openFast(t, account(s))
	ctx := context.Background()
	if _, err := p.Create(ctx, request("m-1")); err != nil {
		t.Fatal(err)
	}
	s.ExpireTokens()
	list, err := p.List(ctx, "c1")
	if err != nil || len(list) != 1 {
		t.Fatalf("list after the token expired: %v %v", list, err)
	}
	if n := s.Calls()["Authenticate"]; n != 2 {
		t.Fatalf("%d authentications, want 2", n)
	}
}

// TestInsecureEndpoint: a TLS Keystone with a certificate nobody trusts
// is refused unless the account says insecure.
func TestInsecureEndpoint(t *testing.T) {
	s := newSim(t, cloudsim.OpenStackOptions{})
	target, err := url.Parse(strings.TrimSuffix(s.URL(), "/v3"))
	if err != nil {
		t.Fatal(err)
	}
	tlsFront := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(tlsFront.Close)
	acct := account(s)
	acct.Endpoint = tlsFront.URL + "/v3"
	err = openFast(t, acct).Check(context.Background())
	wantKind(t, err, providers.KindUnavailable, "")
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate error: %v", err)
	}
	acct.Insecure = true
	if err := openFast(t, acct).Check(context.Background()); err != nil {
		t.Fatalf("insecure: %v", err)
	}
}

func TestStateMapping(t *testing.T) {
	for in, want := range map[string]providers.State{
		"BUILD": providers.StatePending, "ACTIVE": providers.StateRunning, "REBOOT": providers.StatePending,
		"SHUTOFF": providers.StateStopped, "STOPPED": providers.StateStopped, "ERROR": providers.StateStopped,
		"DELETED": providers.StateGone, "SOFT_DELETED": providers.StateGone, "SOMETHING_NEW": providers.StatePending,
	} {
		if got := stateOf(in); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}

func TestErrorBody(t *testing.T) {
	for _, tc := range []struct{ body, name, msg string }{
		{`{"forbidden": {"code": 403, "message": "Quota exceeded for instances"}}`, "forbidden", "Quota exceeded for instances"},
		{`{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}`, "Unauthorized", "The request you have made requires authentication."},
		{`{"NeutronError": {"type": "NetworkNotFound", "message": "Network x could not be found.", "detail": ""}}`, "NetworkNotFound", "Network x could not be found."},
		{`404 Not Found`, "", "404 Not Found"},
		{`{}`, "", ""},
	} {
		if name, msg := errorBody([]byte(tc.body)); name != tc.name || msg != tc.msg {
			t.Errorf("%s → %q %q, want %q %q", tc.body, name, msg, tc.name, tc.msg)
		}
	}
}
