package aliyun

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
)

const (
	testKeyID     = "LTAIWHARFTEST"
	testSecret    = "wharf-secret-VALUE-never-shown"
	testJoinToken = "WJ1.join-token-never-shown"
)

func newSim(t testing.TB, opts cloudsim.ECSOptions) *cloudsim.ECS {
	t.Helper()
	opts.Keys = map[string]string{testKeyID: testSecret}
	s, err := cloudsim.NewECS(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func account(s *cloudsim.ECS) providers.Account {
	return providers.Account{
		Name: "test", Type: Type, Region: s.Region(), Endpoint: s.URL(),
		Credentials: providers.Credentials{AccessKeyID: testKeyID, AccessKeySecret: testSecret},
	}
}

func openT(t testing.TB, acct providers.Account) *Provider {
	t.Helper()
	p, err := open(acct)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// request is a create on the default catalogue, its vSwitch and image
// given by name, its security group by id.
func request(machine string) providers.CreateRequest {
	return providers.CreateRequest{
		MachineID: machine,
		Cluster:   "c1",
		Pool:      "ali-hz",
		Template: providers.Template{
			InstanceType: "ecs.g6.large", Image: "Ubuntu 22.04 64 bit", VSwitch: "wharf-agents", SecurityGroup: "sg-bp1wharf0000000000001",
		},
		UserData: []byte("#cloud-config\nruncmd:\n  - curl -fsS http://hub/install.sh | sh -s -- --token " + testJoinToken + "\n"),
		Tags:     map[string]string{providers.TagCluster: "c1", providers.TagPool: "ali-hz", providers.TagMachine: machine, "team": "infra"},
	}
}

// noSecrets fails if err's text, or the text of anything it wraps, shows
// the secret or the user data's join token (plain or base64).
func noSecrets(t testing.TB, err error) {
	t.Helper()
	ud := base64.StdEncoding.EncodeToString(request("x").UserData)
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, text := range []string{e.Error(), fmt.Sprintf("%+v", e)} {
			for _, secret := range []string{testSecret, testJoinToken, ud[20:60], url.QueryEscape(ud[20:60])} {
				if strings.Contains(text, secret) {
					t.Fatalf("an error shows a secret (%q): %s", secret, text)
				}
			}
		}
	}
}

// wantKind fails unless err is a *providers.Error of kind with code.
func wantKind(t testing.TB, err error, kind providers.Kind, code string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want a *providers.Error", err, err)
	}
	if pe.Kind != kind || pe.Code != code {
		t.Fatalf("kind %s code %s (%v), want %s %s", pe.Kind, pe.Code, err, kind, code)
	}
	if pe.Message == "" {
		t.Fatalf("no message kept: %v", err)
	}
	noSecrets(t, err)
}

func TestOpen(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	p, err := providers.Open(account(s))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("check through providers.Open: %v", err)
	}
	for name, mutate := range map[string]func(*providers.Account){
		"no region":         func(a *providers.Account) { a.Region = "" },
		"region with a dot": func(a *providers.Account) { a.Region = "cn.hangzhou" },
		"no secret":         func(a *providers.Account) { a.Credentials.AccessKeySecret = "" },
		"the AWS secret key": func(a *providers.Account) {
			a.Credentials.AccessKeySecret, a.Credentials.SecretAccessKey = "", testSecret
		},
		"no key id":          func(a *providers.Account) { a.Credentials.AccessKeyID = "" },
		"endpoint no URL":    func(a *providers.Account) { a.Endpoint = "127.0.0.1:1" },
		"ftp endpoint":       func(a *providers.Account) { a.Endpoint = "ftp://127.0.0.1/" },
		"endpoint with path": func(a *providers.Account) { a.Endpoint = s.URL() + "/ecs" },
		"other type":         func(a *providers.Account) { a.Type = "aws" },
	} {
		acct := account(s)
		mutate(&acct)
		if _, err := Open(acct); err == nil {
			t.Errorf("%s: opened", name)
		} else if strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
	}
}

// TestNoAmbientConfig: credentials, region, endpoint and proxy come from
// the account alone, whatever the environment and ~/.aliyun say.
func TestNoAmbientConfig(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".aliyun"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := `{"current":"default","profiles":[{"name":"default","mode":"AK","access_key_id":"LTAIFILE","access_key_secret":"from-file","region_id":"cn-beijing"}]}`
	if err := os.WriteFile(filepath.Join(home, ".aliyun", "config.json"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIENV")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "from-env")
	t.Setenv("ALIBABA_CLOUD_REGION_ID", "cn-beijing")
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA", "some-role")
	// The SDK itself would send every call through these.
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"} {
		t.Setenv(k, "http://127.0.0.1:1")
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	p := openT(t, account(s))
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	if _, err := p.Create(context.Background(), request("m-env")); err != nil {
		t.Fatalf("create: %v", err)
	}
}

func TestCheckCredentials(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	ctx := context.Background()
	if err := openT(t, account(s)).Check(ctx); err != nil {
		t.Fatalf("right secret: %v", err)
	}
	wrong := account(s)
	wrong.Credentials.AccessKeySecret = "not-the-" + testSecret[:5]
	err := openT(t, wrong).Check(ctx)
	wantKind(t, err, providers.KindBadCredentials, "SignatureDoesNotMatch")
	if strings.Contains(err.Error(), "string to sign") {
		t.Fatalf("the error quotes the signed request: %v", err)
	}
	unknown := account(s)
	unknown.Credentials.AccessKeyID = "LTAIUNKNOWN"
	wantKind(t, openT(t, unknown).Check(ctx), providers.KindBadCredentials, "InvalidAccessKeyId.NotFound")
	region := account(s)
	region.Region = "eu-central-1"
	wantKind(t, openT(t, region).Check(ctx), providers.KindBadRequest, "InvalidRegionId.NotFound")

	// A create signed with the wrong secret: ECS quotes the request it
	// signed (user data included); the error does not.
	req := request("m-wrong")
	req.Template.VSwitch, req.Template.Image = "vsw-bp1wharf0000000000001", "m-bp1wharf0000000000001"
	_, err = openT(t, wrong).Create(ctx, req)
	wantKind(t, err, providers.KindBadCredentials, "SignatureDoesNotMatch")
	if n := s.Calls()["RunInstances"]; n != 0 {
		t.Fatalf("a refused signature reached RunInstances: %d", n)
	}
}

// TestRunInstances: what a create sends ECS besides the tags and user
// data (the conformance suite checks those): the machine id as the
// ClientToken, the instance name, the template's names resolved to ids
// once (an id never looked up); the same id with another template is
// ECS's IdempotentParameterMismatch; bad input never reaches ECS.
func TestRunInstances(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	p := openT(t, account(s))
	ctx := context.Background()
	req := request("m-0001")
	for range 2 {
		if m, err := p.Create(ctx, req); err != nil || m.State != providers.StatePending {
			t.Fatalf("create: %+v %v", m, err)
		}
	}
	insts := s.Instances()
	if len(insts) != 1 {
		t.Fatalf("%d instances, want 1", len(insts))
	}
	in := insts[0]
	if in.ClientToken != "m-0001" || in.InstanceType != "ecs.g6.large" || in.ImageID != "ubuntu_22_04_x64_20G_alibase_20240130.vhd" ||
		in.VSwitchID != "vsw-bp1wharf0000000000001" || in.SecurityGroupID != "sg-bp1wharf0000000000001" || in.Name != "ali-hz-m-0001" {
		t.Fatalf("instance %+v", in)
	}
	calls := s.Calls()
	if calls["RunInstances"] != 2 || calls["DescribeVSwitches"] != 1 || calls["DescribeImages"] != 1 || calls["DescribeSecurityGroups"] != 0 {
		t.Fatalf("calls %v: want 2 RunInstances, the names looked up once, the id never", calls)
	}

	// The same machine id with other parameters (other user data: a new
	// leader names the hub nodes alive then; or another template) is ECS's
	// IdempotentParameterMismatch: the instance made first is the machine,
	// never a second one.
	changed := request("m-0001")
	changed.Template.InstanceType = "ecs.c6.large"
	changed.UserData = []byte("#cloud-config\n# other hub nodes\n")
	again, err := p.Create(ctx, changed)
	if err != nil || again.ProviderID != in.ID {
		t.Fatalf("create with other parameters: %+v %v; want the first instance %s", again, err, in.ID)
	}
	if n := len(s.Instances()); n != 1 {
		t.Fatalf("%d instances after a create with other parameters, want 1", n)
	}
	// Without a live instance of the machine, the mismatch is the cloud's
	// refusal, in its words.
	if err := p.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	_, err = p.Create(ctx, changed)
	wantKind(t, err, providers.KindBadRequest, "IdempotentParameterMismatch")

	tooMany := map[string]string{}
	for i := range 21 {
		tooMany[fmt.Sprintf("k%d", i)] = "v"
	}
	for name, mutate := range map[string]func(*providers.CreateRequest){
		"no machine id":    func(r *providers.CreateRequest) { r.MachineID = "" },
		"machine id of 65": func(r *providers.CreateRequest) { r.MachineID = strings.Repeat("m", 65) },
		"no vswitch":       func(r *providers.CreateRequest) { r.Template.VSwitch = "" },
		"21 tags":          func(r *providers.CreateRequest) { r.Tags = tooMany },
		"user data of 25 KiB": func(r *providers.CreateRequest) {
			r.UserData = []byte(strings.Repeat("#", 25<<10))
		},
	} {
		r := request("m-0002")
		mutate(&r)
		_, err := p.Create(ctx, r)
		if providers.KindOf(err) != providers.KindBadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := s.Calls()["RunInstances"]; n != 4 { // two, the mismatch adopted, the mismatch refused
		t.Fatalf("bad requests reached ECS: %d RunInstances calls, want 4", n)
	}
	// An image given by a public image's id, and by a custom image's name.
	for _, image := range []string{"ubuntu_22_04_x64_20G_alibase_20240130.vhd", "wharf-agent-base"} {
		r := request("m-img-" + image[:6])
		r.Template.Image = image
		if _, err := p.Create(ctx, r); err != nil {
			t.Fatalf("image %s: %v", image, err)
		}
	}
}

func TestAmbiguousNames(t *testing.T) {
	vsw, groups, images := cloudsim.DefaultECSCatalogue()
	groups = append(groups, cloudsim.ECSSecurityGroup{ID: "sg-bp1wharf0000000000002", Name: "wharf-agents", VpcID: "vpc-other"})
	s := newSim(t, cloudsim.ECSOptions{VSwitches: vsw, SecurityGroups: groups, Images: images})
	p := openT(t, account(s))
	r := request("m-amb")
	r.Template.SecurityGroup = "wharf-agents"
	_, err := p.Create(context.Background(), r)
	wantKind(t, err, providers.KindBadRequest, "InvalidTemplate")
	if !strings.Contains(err.Error(), "give its id") || !strings.Contains(err.Error(), "sg-bp1wharf0000000000002") {
		t.Fatalf("ambiguous name: %v", err)
	}
	if len(s.Instances()) != 0 {
		t.Fatal("an ambiguous template made an instance")
	}
}

// TestLostAnswers: an answer lost within the SDK's attempts is absorbed
// by its retry with the same ClientToken (the conformance suite checks
// the hub's retry after every attempt's answer was lost).
func TestLostAnswers(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	p := openT(t, account(s))
	ctx := context.Background()
	s.LoseAnswers("RunInstances", 1)
	if _, err := p.Create(ctx, request("m-1")); err != nil {
		t.Fatalf("a lost answer within three attempts: %v", err)
	}
	if n := len(s.Instances()); n != 1 || s.Calls()["RunInstances"] != 2 {
		t.Fatalf("%d instances after %d calls, want 1 after 2", n, s.Calls()["RunInstances"])
	}
}

// TestDescribeListDelete: List pages, a running instance has addresses,
// a deleted one is Stopping (stopped) until ECS deletes it, and one its
// owner stopped is stopped.
func TestDescribeListDelete(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{BootDelay: 100 * time.Millisecond, StopDelay: time.Second})
	p := openT(t, account(s))
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
	if n := s.Calls()["DescribeInstances"]; n != 2 {
		t.Fatalf("%d DescribeInstances pages for 8 machines by 5, want 2", n)
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
	if m, err := p.Describe(ctx, id); err != nil || m.State != providers.StateStopped {
		t.Fatalf("a deleted instance on its way (Stopping): %+v %v", m, err)
	}
	if err := p.Delete(ctx, id); err != nil {
		t.Fatalf("delete of a deleting instance: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := p.Describe(ctx, id)
		if providers.KindOf(err) == providers.KindNotFound {
			wantKind(t, err, providers.KindNotFound, "InvalidInstanceId.NotFound")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted instance stays: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if list, err = p.List(ctx, "c1"); err != nil || len(list) != len(ours)-1 {
		t.Fatalf("after a deletion: %d listed (%v), want %d", len(list), err, len(ours)-1)
	}
	// Stopped by its owner in the console: stopped, not gone.
	waitState(t, p, ours[1], providers.StateRunning)
	if err := s.Stop(ours[1]); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, ours[1], providers.StateStopped)
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
	s := newSim(t, cloudsim.ECSOptions{InstanceTypes: map[string]cloudsim.ECSInstanceType{
		"ecs.g6.large":      {CPUCores: 2, MemoryGiB: "8"},
		"ecs.t5-lc2m1.nano": {CPUCores: 1, MemoryGiB: "0.5"},
		"ecs.odd.large":     {CPUCores: 3, MemoryGiB: "1.1"},
	}})
	p := openT(t, account(s))
	ctx := context.Background()
	for _, tc := range []struct {
		typ   string
		cpu   int64
		bytes int64
	}{
		{"ecs.g6.large", 2000, 8 << 30},
		{"ecs.t5-lc2m1.nano", 1000, 512 << 20},
		{"ecs.odd.large", 3000, 1181116006}, // 1.1 GiB is 1181116006.4 bytes
	} {
		for range 3 {
			r, ok, err := p.Shape(ctx, providers.Template{InstanceType: tc.typ})
			if err != nil || !ok || r.CPUMillis != tc.cpu || r.MemoryBytes != tc.bytes {
				t.Fatalf("%s: shape %+v %v %v, want %d millis %d bytes", tc.typ, r, ok, err, tc.cpu, tc.bytes)
			}
		}
	}
	if n := s.Calls()["DescribeInstanceTypes"]; n != 3 {
		t.Fatalf("%d DescribeInstanceTypes calls, want 3 (one per type, cached)", n)
	}
	_, ok, err := p.Shape(ctx, providers.Template{InstanceType: "ecs.gigantic"})
	if ok {
		t.Fatal("an unknown type has a shape")
	}
	wantKind(t, err, providers.KindBadRequest, "InvalidInstanceType.ValueNotSupported")
	if _, ok, err := p.Shape(ctx, providers.Template{}); ok || err != nil {
		t.Fatalf("no instance type: %v %v", ok, err)
	}
}

func TestGiBToBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"8", 8 << 30, false}, {"0.5", 512 << 20, false}, {"3.75", 3840 << 20, false}, {"1.5e1", 15 << 30, false},
		{"1.1", 1181116006, false}, {"0.000000001", 1, false}, {"8.0", 8 << 30, false},
		{"0", 0, true}, {"-1", 0, true}, {"1e99", 0, true}, {"abc", 0, true}, {"1/3", 0, true}, {"", 0, true}, {"1e999999999", 0, true},
	} {
		got, err := gibToBytes(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("gibToBytes(%q) = %d %v, want %d (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestFaultKinds: every refusal ECS can give maps to the kind the hub
// branches on, keeping ECS's code and message.
func TestFaultKinds(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	p := openT(t, account(s))
	ctx := context.Background()
	if _, err := p.Create(ctx, request("m-warm")); err != nil { // names resolved before the faults
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code   string
		status int
		kind   providers.Kind
	}{
		{"Throttling", 0, providers.KindThrottled},
		{"Throttling.User", 0, providers.KindThrottled},
		{"Throttling.Api", 0, providers.KindThrottled},
		{"QuotaExceed.ElasticQuota", 0, providers.KindQuota},
		{"QuotaExceeded.PrivateIpAddress", 0, providers.KindQuota},
		{"OperationDenied.NoStock", 0, providers.KindQuota},
		{"InvalidInstanceType.ValueNotSupported", 0, providers.KindBadRequest},
		{"InvalidImageId.NotFound", 0, providers.KindBadRequest},
		{"InvalidVSwitchId.NotFound", 0, providers.KindBadRequest},
		{"InvalidParameter", 0, providers.KindBadRequest},
		{"MissingParameter", 0, providers.KindBadRequest},
		{"Forbidden.RAM", 0, providers.KindBadCredentials},
		{"InvalidAccessKeyId.Inactive", 0, providers.KindBadCredentials},
		{"IncorrectInstanceStatus", 0, providers.KindUnavailable},
		{"InternalError", 0, providers.KindUnavailable},
		{"ServiceUnavailable", 0, providers.KindUnavailable},
		{"SomethingNew", 0, providers.KindBadRequest},
		{"SomethingElse", 401, providers.KindBadCredentials},
		{"Whatever", 502, providers.KindUnavailable},
	} {
		t.Run(tc.code, func(t *testing.T) {
			s.ClearFaults()
			s.Inject(cloudsim.Fault{Action: "RunInstances", Code: tc.code, Message: "simulated " + tc.code, Status: tc.status})
			_, err := p.Create(ctx, request("m-fault"))
			wantKind(t, err, tc.kind, tc.code)
			if !strings.Contains(err.Error(), "simulated "+tc.code) {
				t.Fatalf("message lost: %v", err)
			}
		})
	}
	s.ClearFaults()
	// A real quota, not an injected one.
	s.SetMaxInstances(1)
	_, err := p.Create(ctx, request("m-quota"))
	wantKind(t, err, providers.KindQuota, "QuotaExceed.ElasticQuota")
	if n := len(s.Instances()); n != 1 {
		t.Fatalf("refused creates made %d instances", n-1)
	}
}

// TestSDKRetries: a server error for fewer calls than the SDK's attempts
// is absorbed by its retries; throttling is not (the hub backs off).
func TestSDKRetries(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	p := openT(t, account(s))
	ctx := context.Background()
	s.Inject(cloudsim.Fault{Action: "DescribeRegions", Code: "ServiceUnavailable", Times: maxAttempts - 1})
	if err := p.Check(ctx); err != nil {
		t.Fatalf("two server errors within three attempts: %v", err)
	}
	if n := s.Calls()["DescribeRegions"]; n != maxAttempts {
		t.Fatalf("%d DescribeRegions calls, want %d", n, maxAttempts)
	}
	s.Throttle("DescribeRegions", 1)
	wantKind(t, p.Check(ctx), providers.KindThrottled, "Throttling.User")
	if err := p.Check(ctx); err != nil {
		t.Fatalf("after the throttle: %v", err)
	}
}

// TestTimeoutIsUnavailable: the per-attempt timeout bounds a call whose
// context has no deadline (the conformance suite checks one with a
// deadline), and a cancelled call is no cloud's refusal.
func TestTimeoutIsUnavailable(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	p := openT(t, account(s))
	s.SetLatency(5 * time.Second)
	ctx := context.Background()
	// The per-attempt timeout, with a context that has none.
	p.timeout, p.attempts = 100*time.Millisecond, 1
	wantKind(t, p.Check(ctx), providers.KindUnavailable, "")
	s.SetLatency(0)
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Check(ctx); !errors.Is(err, context.Canceled) || providers.KindOf(err) != "" {
		t.Fatalf("a cancelled call: %v (kind %q)", err, providers.KindOf(err))
	}
}

// TestInsecureEndpoint: a TLS endpoint with a certificate nobody trusts
// is refused unless the account says insecure.
func TestInsecureEndpoint(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	target, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	tlsFront := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(tlsFront.Close)
	acct := account(s)
	acct.Endpoint = tlsFront.URL
	err = openT(t, acct).Check(context.Background())
	wantKind(t, err, providers.KindUnavailable, "")
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate error: %v", err)
	}
	acct.Insecure = true
	if err := openT(t, acct).Check(context.Background()); err != nil {
		t.Fatalf("insecure: %v", err)
	}
}

// TestConcurrentUse: one Provider serves concurrent calls (the SDK's
// clients do not, so each call has its own).
func TestConcurrentUse(t *testing.T) {
	s := newSim(t, cloudsim.ECSOptions{})
	p := openT(t, account(s))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := p.Create(ctx, request(fmt.Sprintf("m-conc-%d", i%4))) // two goroutines per machine
			if err == nil {
				_, err = p.Describe(ctx, m.ProviderID)
			}
			if err == nil {
				_, _, err = p.Shape(ctx, request("x").Template)
			}
			if err == nil {
				_, err = p.List(ctx, "c1")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.Instances()); n != 4 {
		t.Fatalf("%d instances for 4 machine ids", n)
	}
}

func TestInstanceName(t *testing.T) {
	for _, tc := range []struct{ pool, machine, want string }{
		{"ali-hz", "ali-hz-0a1b2c3d4e", "ali-hz-ali-hz-0a1b2c3d4e"},
		{"9lives", "9lives-01", "wharf-9lives-9lives-01"},
		{"a b/c", "m", "a-b-c-m"},
		{strings.Repeat("p", 100), strings.Repeat("m", 60), strings.Repeat("p", 100) + "-" + strings.Repeat("m", 27)},
	} {
		if got := instanceName(tc.pool, tc.machine); got != tc.want {
			t.Errorf("instanceName(%q, %q) = %q, want %q", tc.pool, tc.machine, got, tc.want)
		}
	}
}

func TestStateMapping(t *testing.T) {
	for in, want := range map[string]providers.State{
		"Pending": providers.StatePending, "Starting": providers.StatePending, "Running": providers.StateRunning,
		"Stopping": providers.StateStopped, "Stopped": providers.StateStopped, "SomethingNew": providers.StatePending,
	} {
		if got := stateOf(in); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}
