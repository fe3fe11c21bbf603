package aws

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

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
)

const (
	testKeyID  = "AKIDWHARFTEST"
	testSecret = "wharf-secret-VALUE-never-shown"
)

func newSim(t testing.TB, opts cloudsim.EC2Options) *cloudsim.EC2 {
	t.Helper()
	opts.Keys = map[string]string{testKeyID: testSecret}
	s, err := cloudsim.NewEC2(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func account(s *cloudsim.EC2) providers.Account {
	return providers.Account{
		Name: "test", Type: Type, Region: s.Region(), Endpoint: s.URL(),
		Credentials: providers.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
	}
}

// openFast opens a provider whose SDK retries without waiting, so that
// tests of retried faults take no seconds.
func openFast(t testing.TB, acct providers.Account) *Provider {
	t.Helper()
	p, err := open(acct, func(o *ec2.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = maxAttempts
			so.RateLimiter = ratelimit.None
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func request(machine string) providers.CreateRequest {
	return providers.CreateRequest{
		MachineID: machine,
		Cluster:   "c1",
		Pool:      "aws-bj",
		Template: providers.Template{
			InstanceType: "t3.small", Image: "ami-0123456789abcdef0", Subnet: "subnet-12345678",
			SecurityGroups: []string{"sg-12345678", "wharf-agents"}, KeyName: "ops",
		},
		UserData: []byte("#cloud-config\nruncmd:\n  - curl -fsS http://hub/install.sh | sh -s -- --token WJ1.x\n"),
		Tags:     map[string]string{providers.TagCluster: "c1", providers.TagPool: "aws-bj", providers.TagMachine: machine, "team": "infra"},
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
	if code != "" && pe.Message == "" {
		t.Fatalf("no message kept: %v", err)
	}
	if strings.Contains(err.Error(), testSecret) || strings.Contains(fmt.Sprintf("%+v", pe), testSecret) {
		t.Fatalf("the error quotes the secret: %v", err)
	}
}

func TestOpen(t *testing.T) {
	s := newSim(t, cloudsim.EC2Options{})
	p, err := providers.Open(account(s))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("check through providers.Open: %v", err)
	}
	for name, mutate := range map[string]func(*providers.Account){
		"no region":       func(a *providers.Account) { a.Region = "" },
		"no secret":       func(a *providers.Account) { a.Credentials.SecretAccessKey = "" },
		"no key id":       func(a *providers.Account) { a.Credentials.AccessKeyID = "" },
		"endpoint no URL": func(a *providers.Account) { a.Endpoint = "127.0.0.1:1" },
		"ftp endpoint":    func(a *providers.Account) { a.Endpoint = "ftp://127.0.0.1/" },
		"other type":      func(a *providers.Account) { a.Type = "aliyun" },
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

// TestNoAmbientConfig: credentials, region and endpoint come from the
// account alone, whatever the environment and ~/.aws say.
func TestNoAmbientConfig(t *testing.T) {
	s := newSim(t, cloudsim.EC2Options{})
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "from-env")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:1")
	p, err := Open(account(s))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
}

func TestCheckCredentials(t *testing.T) {
	s := newSim(t, cloudsim.EC2Options{})
	ctx := context.Background()
	if err := openFast(t, account(s)).Check(ctx); err != nil {
		t.Fatalf("right secret: %v", err)
	}
	wrong := account(s)
	wrong.Credentials.SecretAccessKey = "not-the-" + testSecret[:5]
	wantKind(t, openFast(t, wrong).Check(ctx), providers.KindBadCredentials, "SignatureDoesNotMatch")
	unknown := account(s)
	unknown.Credentials.AccessKeyID = "AKIDUNKNOWN"
	wantKind(t, openFast(t, unknown).Check(ctx), providers.KindBadCredentials, "AuthFailure")
	region := account(s)
	region.Region = "eu-west-1"
	wantKind(t, openFast(t, region).Check(ctx), providers.KindBadCredentials, "AuthFailure")
}

// TestRunInstances: what a create sends EC2 besides the tags and user
// data (the conformance suite checks those): the machine id as the
// ClientToken, a Name tag, the template's parts; the same id with
// another template is EC2's IdempotentParameterMismatch; bad input never
// reaches EC2.
func TestRunInstances(t *testing.T) {
	s := newSim(t, cloudsim.EC2Options{})
	p := openFast(t, account(s))
	ctx := context.Background()
	req := request("m-0001")
	m, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != providers.StatePending {
		t.Fatalf("created %+v, want pending", m)
	}
	insts := s.Instances()
	if len(insts) != 1 {
		t.Fatalf("%d instances, want 1", len(insts))
	}
	in := insts[0]
	wantTags := map[string]string{"wharf-cluster": "c1", "wharf-pool": "aws-bj", "wharf-machine": "m-0001", "team": "infra", "Name": "aws-bj-m-0001"}
	if fmt.Sprint(in.Tags) != fmt.Sprint(wantTags) || fmt.Sprint(m.Tags) != fmt.Sprint(wantTags) {
		t.Fatalf("tags %v (machine %v), want %v", in.Tags, m.Tags, wantTags)
	}
	if in.ClientToken != "m-0001" || in.InstanceType != "t3.small" || in.ImageID != "ami-0123456789abcdef0" ||
		in.SubnetID != "subnet-12345678" || in.KeyName != "ops" || !slices.Equal(in.SecurityGroups, []string{"sg-12345678", "wharf-agents"}) {
		t.Fatalf("instance %+v", in)
	}
	// The same machine id with other parameters (other user data: a new
	// leader names the hub nodes alive then; or another template) is EC2's
	// IdempotentParameterMismatch: the instance made first is the machine,
	// never a second one.
	changed := request("m-0001")
	changed.Template.InstanceType = "m5.large"
	changed.UserData = []byte("#cloud-config\n# other hub nodes\n")
	again, err := p.Create(ctx, changed)
	if err != nil || again.ProviderID != m.ProviderID {
		t.Fatalf("create with other parameters: %+v %v; want the first instance %s", again, err, m.ProviderID)
	}
	if n := len(s.Instances()); n != 1 {
		t.Fatalf("%d instances after a create with other parameters, want 1", n)
	}
	// Without a live instance of the machine, the mismatch is the cloud's
	// refusal, in its words.
	for _, in := range s.Instances() {
		if err := p.Delete(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
	}
	_, err = p.Create(ctx, changed)
	wantKind(t, err, providers.KindBadRequest, "IdempotentParameterMismatch")

	for name, mutate := range map[string]func(*providers.CreateRequest){
		"no machine id":    func(r *providers.CreateRequest) { r.MachineID = "" },
		"machine id of 65": func(r *providers.CreateRequest) { r.MachineID = strings.Repeat("m", 65) },
		"no image":         func(r *providers.CreateRequest) { r.Template.Image = "" },
	} {
		r := request("m-0002")
		mutate(&r)
		_, err := p.Create(ctx, r)
		if providers.KindOf(err) != providers.KindBadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := s.Calls()["RunInstances"]; n != 3 { // the first, the mismatch adopted, the mismatch refused
		t.Fatalf("bad requests reached EC2: %d RunInstances calls, want 3", n)
	}
}

// TestDescribeListDelete: List pages, a running machine has addresses,
// and a terminated one stays listed while EC2 lists it.
func TestDescribeListDelete(t *testing.T) {
	s := newSim(t, cloudsim.EC2Options{BootDelay: 100 * time.Millisecond, TerminateDelay: 100 * time.Millisecond})
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
	waitState(t, p, id, providers.StateGone)
	_, err = p.Describe(ctx, "i-0123456789abcdef0")
	wantKind(t, err, providers.KindNotFound, "InvalidInstanceID.NotFound")
	if list, err = p.List(ctx, "c1"); err != nil || len(list) != len(ours) {
		t.Fatalf("a terminated machine left the list at once: %d, %v", len(list), err)
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
	s := newSim(t, cloudsim.EC2Options{})
	p := openFast(t, account(s))
	ctx := context.Background()
	for range 3 {
		r, ok, err := p.Shape(ctx, providers.Template{InstanceType: "m5.xlarge", Image: "ami-12345678"})
		if err != nil || !ok || r.CPUMillis != 4000 || r.MemoryBytes != 16<<30 {
			t.Fatalf("shape %+v %v %v", r, ok, err)
		}
	}
	if n := s.Calls()["DescribeInstanceTypes"]; n != 1 {
		t.Fatalf("%d DescribeInstanceTypes calls, want 1 (cached)", n)
	}
	_, ok, err := p.Shape(ctx, providers.Template{InstanceType: "t3.gigantic"})
	if ok {
		t.Fatal("an unknown type has a shape")
	}
	wantKind(t, err, providers.KindBadRequest, "InvalidInstanceType")
}

// TestFaultKinds: every refusal EC2 can give maps to the kind the hub
// branches on, keeping EC2's code and message.
func TestFaultKinds(t *testing.T) {
	s := newSim(t, cloudsim.EC2Options{})
	p := openFast(t, account(s))
	ctx := context.Background()
	for _, tc := range []struct {
		code string
		kind providers.Kind
	}{
		{"RequestLimitExceeded", providers.KindThrottled},
		{"Throttling", providers.KindThrottled},
		{"InstanceLimitExceeded", providers.KindQuota},
		{"VcpuLimitExceeded", providers.KindQuota},
		{"InsufficientInstanceCapacity", providers.KindQuota},
		{"InvalidParameterValue", providers.KindBadRequest},
		{"InvalidAMIID.NotFound", providers.KindBadRequest},
		{"InvalidAMIID.Malformed", providers.KindBadRequest},
		{"InvalidSubnetID.NotFound", providers.KindBadRequest},
		{"InvalidGroup.NotFound", providers.KindBadRequest},
		{"Unsupported", providers.KindBadRequest},
		{"AuthFailure", providers.KindBadCredentials},
		{"UnauthorizedOperation", providers.KindBadCredentials},
		{"InvalidClientTokenId", providers.KindBadCredentials},
		{"SignatureDoesNotMatch", providers.KindBadCredentials},
		{"InternalError", providers.KindUnavailable},
		{"Unavailable", providers.KindUnavailable},
		{"SomethingNew", providers.KindBadRequest},
	} {
		t.Run(tc.code, func(t *testing.T) {
			s.ClearFaults()
			s.Inject(cloudsim.Fault{Action: "RunInstances", Code: tc.code, Message: "simulated " + tc.code})
			_, err := p.Create(ctx, request("m-fault"))
			wantKind(t, err, tc.kind, tc.code)
			if !strings.Contains(err.Error(), "simulated "+tc.code) {
				t.Fatalf("message lost: %v", err)
			}
		})
	}
	s.ClearFaults()
	// An unknown code on a server error may pass by itself.
	s.Inject(cloudsim.Fault{Action: "DescribeRegions", Code: "Whatever", Status: 502})
	wantKind(t, p.Check(ctx), providers.KindUnavailable, "Whatever")
	s.ClearFaults()
	if n := len(s.Instances()); n != 0 {
		t.Fatalf("refused creates made %d instances", n)
	}
}

// TestSDKRetries: a throttle or a lost answer for fewer calls than the
// SDK's attempts is absorbed by its retries, with the same ClientToken.
func TestSDKRetries(t *testing.T) {
	s := newSim(t, cloudsim.EC2Options{})
	p := openFast(t, account(s))
	ctx := context.Background()
	s.Throttle("RunInstances", 2)
	if _, err := p.Create(ctx, request("m-1")); err != nil {
		t.Fatalf("two throttles within three attempts: %v", err)
	}
	s.LoseAnswers("RunInstances", 1)
	m, err := p.Create(ctx, request("m-2"))
	if err != nil {
		t.Fatalf("a lost answer within three attempts: %v", err)
	}
	if n := len(s.Instances()); n != 2 {
		t.Fatalf("%d instances, want 2", n)
	}
	if got := s.Calls()["RunInstances"]; got != 5 {
		t.Fatalf("%d RunInstances calls, want 5", got)
	}
	if m.MachineID != "m-2" {
		t.Fatalf("machine %+v", m)
	}
}

// TestCancelledIsPlain: a call its caller cancelled is no cloud's
// refusal (the conformance suite covers a cloud that does not answer).
func TestCancelledIsPlain(t *testing.T) {
	s := newSim(t, cloudsim.EC2Options{})
	p := openFast(t, account(s))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Check(ctx); !errors.Is(err, context.Canceled) || providers.KindOf(err) != "" {
		t.Fatalf("a cancelled call: %v (kind %q)", err, providers.KindOf(err))
	}
}

// TestInsecureEndpoint: a TLS endpoint with a certificate nobody trusts
// is refused unless the account says insecure.
func TestInsecureEndpoint(t *testing.T) {
	s := newSim(t, cloudsim.EC2Options{})
	target, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	tlsFront := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(tlsFront.Close)
	acct := account(s)
	acct.Endpoint = tlsFront.URL
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
		"pending": providers.StatePending, "running": providers.StateRunning,
		"stopping": providers.StateStopped, "stopped": providers.StateStopped,
		"shutting-down": providers.StateGone, "terminated": providers.StateGone,
	} {
		if got := stateOf(types.InstanceStateName(in)); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}
