package cloudsim

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSignatureKnownAnswer checks the canonicalisation against the
// example AWS publishes for Signature Version 4 (IAM ListUsers).
func TestSignatureKnownAnswer(t *testing.T) {
	r, err := http.NewRequest(http.MethodGet, "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	r.Header.Set("X-Amz-Date", "20150830T123600Z")
	p := sigParts{keyID: "AKIDEXAMPLE", date: "20150830", region: "us-east-1", service: "iam", signedHeaders: []string{"content-type", "host", "x-amz-date"}}
	const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	got := computeSignature(r, p, "20150830T123600Z", emptyHash, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	if want := "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

func TestAuthentication(t *testing.T) {
	s, c := newSim(t, EC2Options{})
	for _, tc := range []struct {
		name   string
		mutate func(c *client, r *http.Request)
		status int
		code   string
	}{
		{"right key", nil, 200, ""},
		{"unknown key id", func(c *client, r *http.Request) { c.id = "AKIDOTHER"; c.sign(r, body(r)) }, 401, "AuthFailure"},
		{"wrong secret", func(c *client, r *http.Request) { c.secret = "not-the-secret"; c.sign(r, body(r)) }, 403, "SignatureDoesNotMatch"},
		{"unsigned", func(c *client, r *http.Request) { r.Header.Del("Authorization") }, 401, "AuthFailure"},
		{"other region", func(c *client, r *http.Request) { c.region = "eu-west-1"; c.sign(r, body(r)) }, 401, "AuthFailure"},
		{"clock off by an hour", func(c *client, r *http.Request) {
			c.now = func() time.Time { return time.Now().Add(-time.Hour) }
			c.sign(r, body(r))
		}, 400, "RequestExpired"},
		{"body changed after signing", func(c *client, r *http.Request) {
			b := strings.Replace(string(body(r)), "DescribeRegions", "DescribeInstances", 1)
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
		}, 403, "SignatureDoesNotMatch"},
		{"garbled header", func(c *client, r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x") }, 400, "IncompleteSignature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := *c
			cc.t = t
			r := cc.request("DescribeRegions", nil)
			if tc.mutate != nil {
				tc.mutate(&cc, r)
			}
			status, b, err := cc.do(r)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			if tc.code != "" {
				if code := errorCode(t, status, b); code != tc.code {
					t.Fatalf("code %s, want %s", code, tc.code)
				}
			}
		})
	}
	if n := s.Calls()["DescribeRegions"]; n != 1 {
		t.Fatalf("refused calls were counted: %d DescribeRegions, want 1", n)
	}
}

func body(r *http.Request) []byte {
	rc, err := r.GetBody()
	if err != nil {
		panic(err)
	}
	b, _ := io.ReadAll(rc)
	return b
}

func TestRunInstancesIdempotentByClientToken(t *testing.T) {
	s, c := newSim(t, EC2Options{})
	ud := base64.StdEncoding.EncodeToString([]byte("#cloud-config\nruncmd:\n  - echo hi\n"))
	p := runParams("machine-1", "UserData", ud,
		"TagSpecification.1.ResourceType", "instance",
		"TagSpecification.1.Tag.1.Key", "wharf-cluster", "TagSpecification.1.Tag.1.Value", "c1",
		"TagSpecification.1.Tag.2.Key", "Name", "TagSpecification.1.Tag.2.Value", "pool-machine-1")
	var first, again runResult
	c.call("RunInstances", p, &first)
	c.call("RunInstances", p, &again)
	if len(first.Instances) != 1 || first.Instances[0].ID != again.Instances[0].ID || first.ReservationID != again.ReservationID {
		t.Fatalf("a repeated ClientToken gave %+v then %+v", first, again)
	}
	// The same tags in another order are the same parameters.
	swapped := runParams("machine-1", "UserData", ud,
		"TagSpecification.1.ResourceType", "instance",
		"TagSpecification.1.Tag.2.Key", "wharf-cluster", "TagSpecification.1.Tag.2.Value", "c1",
		"TagSpecification.1.Tag.1.Key", "Name", "TagSpecification.1.Tag.1.Value", "pool-machine-1")
	c.call("RunInstances", swapped, &again)
	if again.Instances[0].ID != first.Instances[0].ID {
		t.Fatal("reordered tags made a second instance")
	}
	insts := s.Instances()
	if len(insts) != 1 {
		t.Fatalf("%d instances, want 1", len(insts))
	}
	in := insts[0]
	if string(in.UserData) != "#cloud-config\nruncmd:\n  - echo hi\n" || in.Tags["wharf-cluster"] != "c1" || in.ClientToken != "machine-1" {
		t.Fatalf("instance %+v", in)
	}
	for _, tc := range []struct {
		name   string
		params url.Values
		status int
		code   string
	}{
		{"same token, other type", runParams("machine-1", "InstanceType", "m5.large"), 400, "IdempotentParameterMismatch"},
		{"token of 65 characters", runParams(strings.Repeat("x", 65)), 400, "InvalidParameterValue"},
		{"token not ASCII", runParams("machine-é"), 400, "InvalidParameterValue"},
		{"unknown instance type", runParams("m2", "InstanceType", "t3.gigantic"), 400, "InvalidParameterValue"},
		{"no image", runParams("m3", "ImageId", ""), 400, "MissingParameter"},
		{"malformed image", runParams("m4", "ImageId", "debian-12"), 400, "InvalidAMIID.Malformed"},
		{"malformed subnet", runParams("m5", "SubnetId", "net-1"), 400, "InvalidSubnetID.Malformed"},
		{"malformed group id", runParams("m6", "SecurityGroupId.1", "web"), 400, "InvalidGroupId.Malformed"},
		{"bad base64 user data", runParams("m7", "UserData", "!!!"), 400, "InvalidParameterValue"},
		{"reserved tag key", runParams("m8", "TagSpecification.1.ResourceType", "instance", "TagSpecification.1.Tag.1.Key", "aws:x", "TagSpecification.1.Tag.1.Value", "y"), 400, "InvalidParameterValue"},
		{"index out of range", runParams("m9", "SecurityGroupId.1001", "sg-12345678"), 400, "InvalidParameterValue"},
		{"no count", url.Values{"ImageId": {"ami-12345678"}, "InstanceType": {"t3.small"}}, 400, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := *c
			cc.t = t
			status, code := cc.fail("RunInstances", tc.params)
			if status != tc.status || code != tc.code {
				t.Fatalf("%d %s, want %d %s", status, code, tc.status, tc.code)
			}
		})
	}
	if n := len(s.Instances()); n != 1 {
		t.Fatalf("refused calls made instances: %d", n)
	}
}

func TestLifecycleAndBoot(t *testing.T) {
	var booted atomic.Int32
	bootEnded := make(chan string, 4)
	s, c := newSim(t, EC2Options{
		BootDelay:      50 * time.Millisecond,
		TerminateDelay: 50 * time.Millisecond,
		TerminatedTTL:  time.Second,
		Boot: func(ctx context.Context, in Instance) error {
			booted.Add(1)
			if in.State != StateRunning || !strings.HasPrefix(string(in.UserData), "#cloud-config") {
				return fmt.Errorf("boot saw %s with %q", in.State, in.UserData)
			}
			<-ctx.Done() // a machine runs until it is terminated
			bootEnded <- in.ID
			return errors.New("powered off")
		},
	})
	var run runResult
	c.call("RunInstances", runParams("m1", "UserData", base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))), &run)
	id := run.Instances[0].ID
	if run.Instances[0].State != StatePending {
		t.Fatalf("a new instance is %s, want pending", run.Instances[0].State)
	}
	state := func() string {
		var d describeResult
		c.call("DescribeInstances", url.Values{"InstanceId.1": {id}}, &d)
		return d.Reservations[0].Instances[0].State
	}
	waitFor(t, "running", func() bool { return state() == StateRunning })
	waitFor(t, "boot", func() bool { return booted.Load() == 1 })
	var term struct {
		Current  string `xml:"instancesSet>item>currentState>name"`
		Previous string `xml:"instancesSet>item>previousState>name"`
	}
	c.call("TerminateInstances", url.Values{"InstanceId.1": {id}}, &term)
	if term.Current != StateShuttingDown || term.Previous != StateRunning {
		t.Fatalf("terminate answered %+v", term)
	}
	if got := <-bootEnded; got != id {
		t.Fatalf("boot of %s ended", got)
	}
	waitFor(t, "terminated", func() bool { return state() == StateTerminated })
	if in, _ := s.Instance(id); in.BootError != "powered off" || !in.Booted {
		t.Fatalf("boot recorded as %v %q", in.Booted, in.BootError)
	}
	c.call("TerminateInstances", url.Values{"InstanceId.1": {id}}, &term)
	if term.Current != StateTerminated {
		t.Fatalf("terminating a terminated instance: %+v", term)
	}
	waitFor(t, "forgotten", func() bool {
		status, b, err := c.do(c.request("DescribeInstances", url.Values{"InstanceId.1": {id}}))
		return err == nil && status == 400 && strings.Contains(string(b), "InvalidInstanceID.NotFound")
	})
	// The client token still names the (gone) instance, as on EC2.
	var again runResult
	c.call("RunInstances", runParams("m1", "UserData", base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))), &again)
	if again.Instances[0].ID != id {
		t.Fatalf("the token made a new instance %s", again.Instances[0].ID)
	}
}

func TestCloseEndsBoots(t *testing.T) {
	ended := make(chan struct{})
	s, c := newSim(t, EC2Options{Boot: func(ctx context.Context, in Instance) error {
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // tearing a host down takes a while
		close(ended)
		return nil
	}})
	c.call("RunInstances", runParams("m1"), nil)
	waitFor(t, "boot", func() bool { return s.Instances()[0].Booted })
	s.Close()
	select {
	case <-ended:
	default:
		t.Fatal("Close returned before Boot did")
	}
}

func TestDescribeFiltersAndPages(t *testing.T) {
	s, c := newSim(t, EC2Options{})
	var ids []string
	for i := range 12 {
		cluster := []string{"blue", "green"}[i%2]
		var r runResult
		c.call("RunInstances", runParams(fmt.Sprintf("m%d", i),
			"InstanceType", []string{"t3.micro", "m5.large"}[i%3/2],
			"TagSpecification.1.ResourceType", "instance",
			"TagSpecification.1.Tag.1.Key", "wharf-cluster", "TagSpecification.1.Tag.1.Value", cluster), &r)
		if cluster == "blue" {
			ids = append(ids, r.Instances[0].ID)
		}
	}
	var all []string
	pages := 0
	token := ""
	for {
		p := url.Values{"Filter.1.Name": {"tag:wharf-cluster"}, "Filter.1.Value.1": {"bl*"}, "MaxResults": {"5"}}
		if token != "" {
			p.Set("NextToken", token)
		}
		var d describeResult
		c.call("DescribeInstances", p, &d)
		pages++
		all = append(all, d.ids()...)
		if token = d.NextToken; token == "" {
			break
		}
	}
	if !slices.Equal(all, ids) || pages != 2 {
		t.Fatalf("paged %v in %d pages, want %v in 2", all, pages, ids)
	}
	for _, tc := range []struct {
		name   string
		params url.Values
		want   int
		code   string
	}{
		{"two filters", url.Values{"Filter.1.Name": {"tag:wharf-cluster"}, "Filter.1.Value.1": {"green"}, "Filter.2.Name": {"instance-type"}, "Filter.2.Value.1": {"m5.large"}}, 2, ""},
		{"values are OR", url.Values{"Filter.1.Name": {"tag:wharf-cluster"}, "Filter.1.Value.1": {"green"}, "Filter.1.Value.2": {"blue"}}, 12, ""},
		{"state", url.Values{"Filter.1.Name": {"instance-state-name"}, "Filter.1.Value.1": {"terminated"}}, 0, ""},
		{"tag key", url.Values{"Filter.1.Name": {"tag-key"}, "Filter.1.Value.1": {"wharf-*"}}, 12, ""},
		{"ids", url.Values{"InstanceId.1": {ids[0]}, "InstanceId.2": {ids[1]}}, 2, ""},
		{"unknown filter", url.Values{"Filter.1.Name": {"colour"}, "Filter.1.Value.1": {"red"}}, 0, "InvalidParameterValue"},
		{"bad token", url.Values{"NextToken": {"zzz"}}, 0, "InvalidParameterValue"},
		{"page too small", url.Values{"MaxResults": {"4"}}, 0, "InvalidParameterValue"},
		{"ids and pages", url.Values{"MaxResults": {"5"}, "InstanceId.1": {ids[0]}}, 0, "InvalidParameterCombination"},
		{"unknown id", url.Values{"InstanceId.1": {"i-0123456789abcdef0"}}, 0, "InvalidInstanceID.NotFound"},
		{"malformed id", url.Values{"InstanceId.1": {"vm-1"}}, 0, "InvalidInstanceID.Malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := *c
			cc.t = t
			if tc.code != "" {
				if _, code := cc.fail("DescribeInstances", tc.params); code != tc.code {
					t.Fatalf("code %s, want %s", code, tc.code)
				}
				return
			}
			var d describeResult
			cc.call("DescribeInstances", tc.params, &d)
			if n := len(d.ids()); n != tc.want {
				t.Fatalf("%d instances, want %d", n, tc.want)
			}
		})
	}
	if got := s.Calls()["DescribeInstances"]; got != 2+11 {
		t.Fatalf("%d DescribeInstances counted, want 13", got)
	}
}

func TestInstanceTypesRegionsQuota(t *testing.T) {
	s, c := newSim(t, EC2Options{MaxInstances: 2})
	var types struct {
		Items []struct {
			Name  string `xml:"instanceType"`
			VCPUs int    `xml:"vCpuInfo>defaultVCpus"`
			MiB   int64  `xml:"memoryInfo>sizeInMiB"`
		} `xml:"instanceTypeSet>item"`
	}
	c.call("DescribeInstanceTypes", url.Values{"InstanceType.1": {"m5.large"}}, &types)
	if len(types.Items) != 1 || types.Items[0].VCPUs != 2 || types.Items[0].MiB != 8192 {
		t.Fatalf("m5.large: %+v", types)
	}
	if _, code := c.fail("DescribeInstanceTypes", url.Values{"InstanceType.1": {"t3.gigantic"}}); code != "InvalidInstanceType" {
		t.Fatalf("unknown type: %s", code)
	}
	var regions struct {
		Names []string `xml:"regionInfo>item>regionName"`
	}
	c.call("DescribeRegions", nil, &regions)
	if !slices.Equal(regions.Names, []string{"us-east-1"}) {
		t.Fatalf("regions %v", regions.Names)
	}
	var r runResult
	c.call("RunInstances", runParams("a"), &r)
	c.call("RunInstances", runParams("b"), nil)
	if status, code := c.fail("RunInstances", runParams("c")); status != 400 || code != "InstanceLimitExceeded" {
		t.Fatalf("over quota: %d %s", status, code)
	}
	c.call("TerminateInstances", url.Values{"InstanceId.1": {r.Instances[0].ID}}, nil)
	waitFor(t, "terminated", func() bool { in, _ := s.Instance(r.Instances[0].ID); return in.State == StateTerminated })
	c.call("RunInstances", runParams("c"), nil) // a terminated instance frees its quota
	if _, code := c.fail("TerminateInstances", url.Values{"InstanceId.1": {"i-0123456789abcdef0"}}); code != "InvalidInstanceID.NotFound" {
		t.Fatalf("terminate of an unknown id: %s", code)
	}
	if _, code := c.fail("RebootInstances", nil); code != "InvalidAction" {
		t.Fatalf("unknown action: %s", code)
	}
}

func TestFaults(t *testing.T) {
	s, c := newSim(t, EC2Options{})
	s.Inject(Fault{Action: "RunInstances", Code: "InsufficientInstanceCapacity", Times: 2})
	for range 2 {
		if status, code := c.fail("RunInstances", runParams("m1")); status != 500 || code != "InsufficientInstanceCapacity" {
			t.Fatalf("fault: %d %s", status, code)
		}
	}
	c.call("DescribeRegions", nil, nil) // other actions are not touched
	c.call("RunInstances", runParams("m1"), nil)

	s.Throttle("", 1)
	if status, code := c.fail("DescribeRegions", nil); status != 503 || code != "RequestLimitExceeded" {
		t.Fatalf("throttle: %d %s", status, code)
	}
	s.Inject(Fault{Code: "UnauthorizedOperation"}) // until cleared
	for range 3 {
		if status, code := c.fail("DescribeInstances", nil); status != 403 || code != "UnauthorizedOperation" {
			t.Fatalf("persistent fault: %d %s", status, code)
		}
	}
	s.ClearFaults()

	s.SetRate(1, 2)
	c.call("DescribeRegions", nil, nil)
	c.call("DescribeRegions", nil, nil)
	if _, code := c.fail("DescribeRegions", nil); code != "RequestLimitExceeded" {
		t.Fatalf("over the rate: %s", code)
	}
	s.SetRate(0, 0)

	s.SetLatency(100 * time.Millisecond)
	start := time.Now()
	c.call("DescribeRegions", nil, nil)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("answered in %v despite the latency", d)
	}
	s.SetLatency(0)

	// A lost answer: the instance is made, the client sees no answer, and
	// the retry with the same token finds it.
	s.LoseAnswers("RunInstances", 1)
	if _, _, err := c.do(c.request("RunInstances", runParams("m2"))); err == nil {
		t.Fatal("a lost answer arrived")
	}
	var r runResult
	c.call("RunInstances", runParams("m2"), &r)
	if n := len(s.Instances()); n != 2 {
		t.Fatalf("%d instances after a lost answer and its retry, want 2", n)
	}
	if got := s.Calls(); got["RunInstances"] != 5 || got["DescribeRegions"] != 6 || got["DescribeInstances"] != 3 {
		t.Fatalf("calls %v", got)
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 {
		t.Fatal("ResetCalls kept counts")
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []EC2Options{
		{BootDelay: -1},
		{Keys: map[string]string{"": "x"}},
		{Keys: map[string]string{"AK": ""}},
	} {
		if s, err := NewEC2(o); err == nil {
			s.Close()
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"a*", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*b*", "abc", true}, {"*x*", "abc", false}, {"abc", "abc", true}, {"ab", "abc", false},
		{"a*c*e", "abcde", true}, {"a**", "a", true},
	} {
		if got := match(tc.p, tc.s); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}
