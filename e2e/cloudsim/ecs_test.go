package cloudsim

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestECSSignatureKnownAnswer checks the canonicalisation against the
// example Alibaba Cloud publishes for RPC signatures (DescribeRegions with
// AccessKey testid/testsecret).
func TestECSSignatureKnownAnswer(t *testing.T) {
	p := ecsParams{
		"Timestamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions",
		"SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26",
		"SignatureVersion": "1.0", "Signature": "ignored",
	}
	sts := ecsStringToSign(http.MethodGet, p)
	const want = "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1" +
		"%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
	if sts != want {
		t.Fatalf("StringToSign\n%s\nwant\n%s", sts, want)
	}
	if got := ecsSign(sts, "testsecret"); got != "OLeaidS1JvxuMvnyHOwuJ+uX5qY=" {
		t.Fatalf("signature %s", got)
	}
	for in, want := range map[string]string{"a b": "a%20b", "a*b": "a%2Ab", "a~b": "a~b", "a+b": "a%2Bb", "é": "%C3%A9", "/": "%2F"} {
		if got := ecsPercentEncode(in); got != want {
			t.Errorf("percentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestECSAuthentication(t *testing.T) {
	s, c := newECSSim(t, ECSOptions{})
	for _, tc := range []struct {
		name   string
		mutate func(c *ecsClient) ecsParams
		status int
		code   string
	}{
		{"right key", func(c *ecsClient) ecsParams { return c.params("DescribeRegions", nil) }, 200, ""},
		{"right key, POST form", func(c *ecsClient) ecsParams { c.method = http.MethodPost; return c.params("DescribeRegions", nil) }, 200, ""},
		{"unknown key id", func(c *ecsClient) ecsParams { c.id = "LTAIOTHER"; return c.params("DescribeRegions", nil) }, 404, "InvalidAccessKeyId.NotFound"},
		{"wrong secret", func(c *ecsClient) ecsParams { c.secret = "not-the-secret"; return c.params("DescribeRegions", nil) }, 400, "SignatureDoesNotMatch"},
		{"unsigned", func(c *ecsClient) ecsParams {
			p := c.params("DescribeRegions", nil)
			delete(p, "Signature")
			return p
		}, 400, "MissingSignature"},
		{"no nonce", func(c *ecsClient) ecsParams {
			return c.params("DescribeRegions", map[string]string{"SignatureNonce": ""})
		}, 400, "MissingSignatureNonce"},
		{"HMAC-SHA256", func(c *ecsClient) ecsParams {
			return c.params("DescribeRegions", map[string]string{"SignatureMethod": "HMAC-SHA256"})
		}, 400, "InvalidSignatureMethod"},
		{"clock off by an hour", func(c *ecsClient) ecsParams {
			c.now = func() time.Time { return time.Now().Add(-time.Hour) }
			return c.params("DescribeRegions", nil)
		}, 400, "InvalidTimeStamp.Expired"},
		{"garbled time", func(c *ecsClient) ecsParams {
			return c.params("DescribeRegions", map[string]string{"Timestamp": "yesterday"})
		}, 400, "InvalidTimeStamp.Format"},
		{"parameter changed after signing", func(c *ecsClient) ecsParams {
			p := c.params("DescribeRegions", nil)
			p["RegionId"] = "cn-beijing"
			return p
		}, 400, "SignatureDoesNotMatch"},
		{"signed as POST, sent as GET", func(c *ecsClient) ecsParams {
			c.method = http.MethodPost
			p := c.params("DescribeRegions", nil)
			c.method = http.MethodGet
			return p
		}, 400, "SignatureDoesNotMatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := *c
			cc.t = t
			status, b, err := cc.send(tc.mutate(&cc))
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			if tc.code != "" {
				if code := ecsErrorCode(t, status, b); code != tc.code {
					t.Fatalf("code %s, want %s", code, tc.code)
				}
				if strings.Contains(string(b), c.secret) {
					t.Fatalf("the answer quotes the secret: %s", b)
				}
			}
		})
	}
	// A nonce answers once, whatever else changes.
	p := c.params("DescribeRegions", nil)
	if status, b, _ := c.send(p); status != 200 {
		t.Fatalf("first use of a nonce: %d %s", status, b)
	}
	again := c.params("DescribeRegions", map[string]string{"SignatureNonce": p["SignatureNonce"]})
	status, b, err := c.send(again)
	if err != nil || ecsErrorCode(t, status, b) != "SignatureNonceUsed" || status != 400 {
		t.Fatalf("a reused nonce: %d %s %v", status, b, err)
	}
	if n := s.Calls()["DescribeRegions"]; n != 3 {
		t.Fatalf("refused calls were counted: %d DescribeRegions, want 3", n)
	}
}

func TestECSRunInstancesIdempotentByClientToken(t *testing.T) {
	s, c := newECSSim(t, ECSOptions{})
	ud := base64.StdEncoding.EncodeToString([]byte("#cloud-config\nruncmd:\n  - echo hi\n"))
	p := ecsRunParams("machine-1", "UserData", ud, "InstanceName", "pool-machine-1",
		"Tag.1.Key", "wharf-cluster", "Tag.1.Value", "c1", "Tag.2.Key", "wharf-machine", "Tag.2.Value", "machine-1")
	var first, again ecsRunResult
	c.call("RunInstances", p, &first)
	c.call("RunInstances", p, &again)
	if len(first.InstanceIdSets.InstanceIdSet) != 1 || !slices.Equal(first.InstanceIdSets.InstanceIdSet, again.InstanceIdSets.InstanceIdSet) {
		t.Fatalf("a repeated ClientToken gave %+v then %+v", first, again)
	}
	// The same tags in another order are the same parameters.
	swapped := ecsRunParams("machine-1", "UserData", ud, "InstanceName", "pool-machine-1",
		"Tag.2.Key", "wharf-cluster", "Tag.2.Value", "c1", "Tag.1.Key", "wharf-machine", "Tag.1.Value", "machine-1")
	c.call("RunInstances", swapped, &again)
	if again.InstanceIdSets.InstanceIdSet[0] != first.InstanceIdSets.InstanceIdSet[0] {
		t.Fatal("reordered tags made a second instance")
	}
	insts := s.Instances()
	if len(insts) != 1 {
		t.Fatalf("%d instances, want 1", len(insts))
	}
	in := insts[0]
	if string(in.UserData) != "#cloud-config\nruncmd:\n  - echo hi\n" || in.Tags["wharf-cluster"] != "c1" || in.Tags["wharf-machine"] != "machine-1" ||
		in.ClientToken != "machine-1" || in.Name != "pool-machine-1" || in.VpcID != "vpc-bp1wharf0000000000001" || in.ZoneID != "cn-hangzhou-h" {
		t.Fatalf("instance %+v", in)
	}
	tags := make([]string, 0, 21)
	for i := 1; i <= 21; i++ {
		tags = append(tags, "Tag."+strconv.Itoa(i)+".Key", fmt.Sprintf("k%d", i))
	}
	for _, tc := range []struct {
		name   string
		params map[string]string
		status int
		code   string
	}{
		{"same token, other type", ecsRunParams("machine-1", "InstanceType", "ecs.c6.large"), 400, "IdempotentParameterMismatch"},
		{"token of 65 characters", ecsRunParams(strings.Repeat("x", 65)), 400, "InvalidParameter"},
		{"unknown instance type", ecsRunParams("m2", "InstanceType", "ecs.gigantic"), 400, "InvalidInstanceType.ValueNotSupported"},
		{"no image", ecsRunParams("m3", "ImageId", ""), 400, "MissingParameter"},
		{"unknown image", ecsRunParams("m4", "ImageId", "m-nope"), 404, "InvalidImageId.NotFound"},
		{"unknown vSwitch", ecsRunParams("m5", "VSwitchId", "vsw-nope"), 404, "InvalidVSwitchId.NotFound"},
		{"unknown security group", ecsRunParams("m6", "SecurityGroupId", "sg-nope"), 404, "InvalidSecurityGroupId.NotFound"},
		{"bad base64 user data", ecsRunParams("m7", "UserData", "!!!"), 400, "InvalidUserData.Base64FormatInvalid"},
		{"user data too large", ecsRunParams("m7", "UserData", strings.Repeat("QUFB", 8193)), 400, "InvalidUserData.SizeExceeded"},
		{"reserved tag key", ecsRunParams("m8", "Tag.1.Key", "aliyun:x", "Tag.1.Value", "y"), 400, "InvalidTagKey.Malformed"},
		{"value without a key", ecsRunParams("m8", "Tag.1.Value", "y"), 400, "InvalidTagKey.Malformed"},
		{"21 tags", ecsRunParams("m8", tags...), 400, "InvalidTagCount"},
		{"name starting with a digit", ecsRunParams("m9", "InstanceName", "1-pool"), 400, "InvalidInstanceName.Malformed"},
		{"amount 0", ecsRunParams("m10", "Amount", "0"), 400, "InvalidParameter"},
		{"another region", ecsRunParams("m11", "RegionId", "cn-beijing"), 404, "InvalidRegionId.NotFound"},
		{"no region", ecsRunParams("m11", "RegionId", ""), 400, "MissingParameter"},
		{"another version", ecsRunParams("m12", "Version", "2016-04-28"), 400, "InvalidVersion"},
		{"XML answers", ecsRunParams("m12", "Format", "XML"), 400, "InvalidParameter"},
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
	if status, code := c.fail("RebootInstances", nil); status != 404 || code != "InvalidAction.NotFound" {
		t.Fatalf("unknown action: %d %s", status, code)
	}
	if n := len(s.Instances()); n != 1 {
		t.Fatalf("refused calls made instances: %d", n)
	}
}

func TestECSLifecycleAndBoot(t *testing.T) {
	var booted atomic.Int32
	bootEnded := make(chan string, 4)
	s, c := newECSSim(t, ECSOptions{
		BootDelay: time.Second, // slow enough to see every status under load
		StopDelay: time.Second,
		Boot: func(ctx context.Context, in Instance) error {
			booted.Add(1)
			if in.State != ECSRunning || !strings.HasPrefix(string(in.UserData), "#cloud-config") || in.SubnetID != "vsw-bp1wharf0000000000001" {
				return fmt.Errorf("boot saw %+v", in)
			}
			<-ctx.Done() // a machine runs until it is deleted
			bootEnded <- in.ID
			return errors.New("powered off")
		},
	})
	var run ecsRunResult
	ud := base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))
	c.call("RunInstances", ecsRunParams("m1", "UserData", ud), &run)
	id := run.InstanceIdSets.InstanceIdSet[0]
	if st := c.status(id); st != ECSPending {
		t.Fatalf("a new instance is %s, want Pending", st)
	}
	seen := map[string]bool{}
	waitFor(t, "Running", func() bool { st := c.status(id); seen[st] = true; return st == ECSRunning })
	if !seen[ECSStarting] {
		t.Fatalf("never Starting on the way: saw %v", seen)
	}
	waitFor(t, "boot", func() bool { return booted.Load() == 1 })
	if status, code := c.fail("DeleteInstance", map[string]string{"InstanceId": id}); status != 403 || code != "IncorrectInstanceStatus" {
		t.Fatalf("delete of a running instance without Force: %d %s", status, code)
	}
	c.call("DeleteInstance", map[string]string{"InstanceId": id, "Force": "true"}, nil)
	if st := c.status(id); st != ECSStopping {
		t.Fatalf("a deleted instance is %s, want Stopping", st)
	}
	if got := <-bootEnded; got != id {
		t.Fatalf("boot of %s ended", got)
	}
	c.call("DeleteInstance", map[string]string{"InstanceId": id, "Force": "true"}, nil) // on its way already: fine
	waitFor(t, "the boot's end recorded", func() bool { in, ok := s.Instance(id); return ok && in.Booted && in.BootError == "powered off" })
	waitFor(t, "deleted", func() bool { return c.status(id) == "" })
	if status, code := c.fail("DeleteInstance", map[string]string{"InstanceId": id, "Force": "true"}); status != 404 || code != "InvalidInstanceId.NotFound" {
		t.Fatalf("delete of a deleted instance: %d %s", status, code)
	}
	// The client token still names the (deleted) instance.
	var again ecsRunResult
	c.call("RunInstances", ecsRunParams("m1", "UserData", ud), &again)
	if again.InstanceIdSets.InstanceIdSet[0] != id || len(s.Instances()) != 0 {
		t.Fatalf("the token made a new instance %v", again.InstanceIdSets.InstanceIdSet)
	}

	// Stopped by its owner: Stopping, then Stopped; a Stopped instance is
	// deleted without Force, at once.
	s.SetBootDelay(0)
	c.call("RunInstances", ecsRunParams("m2"), &run)
	id = run.InstanceIdSets.InstanceIdSet[0]
	waitFor(t, "Running", func() bool { return c.status(id) == ECSRunning })
	if err := s.Stop(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Stopped", func() bool { return c.status(id) == ECSStopped })
	c.call("DeleteInstances", map[string]string{"InstanceId.1": id}, nil)
	if st := c.status(id); st != "" {
		t.Fatalf("a deleted Stopped instance is %s", st)
	}
}

func TestECSCloseEndsBoots(t *testing.T) {
	ended := make(chan struct{})
	s, c := newECSSim(t, ECSOptions{Boot: func(ctx context.Context, in Instance) error {
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // tearing a host down takes a while
		close(ended)
		return nil
	}})
	c.call("RunInstances", ecsRunParams("m1"), nil)
	waitFor(t, "boot", func() bool { return s.Instances()[0].Booted })
	s.Close()
	select {
	case <-ended:
	default:
		t.Fatal("Close returned before Boot did")
	}
}

func TestECSDescribePagingAndFilters(t *testing.T) {
	s, c := newECSSim(t, ECSOptions{})
	var blue []string
	for i := range 12 {
		cluster := []string{"blue", "green"}[i%2]
		var r ecsRunResult
		c.call("RunInstances", ecsRunParams(fmt.Sprintf("m%d", i), "InstanceType", []string{"ecs.g6.large", "ecs.c6.large"}[i%3/2],
			"InstanceName", fmt.Sprintf("%s-m%d", cluster, i), "Tag.1.Key", "wharf-cluster", "Tag.1.Value", cluster), &r)
		if cluster == "blue" {
			blue = append(blue, r.InstanceIdSets.InstanceIdSet[0])
		}
	}
	var all []string
	pages, token := 0, ""
	for {
		p := map[string]string{"Tag.1.Key": "wharf-cluster", "Tag.1.Value": "blue", "MaxResults": "5", "NextToken": token}
		var d ecsDescribeResult
		c.call("DescribeInstances", p, &d)
		pages++
		all = append(all, d.ids()...)
		if token = d.NextToken; token == "" {
			break
		}
	}
	if !slices.Equal(all, blue) || pages != 2 {
		t.Fatalf("paged %v in %d pages, want %v in 2", all, pages, blue)
	}
	var d ecsDescribeResult
	c.call("DescribeInstances", map[string]string{"PageSize": "4", "PageNumber": "2"}, &d)
	if d.TotalCount != 12 || d.PageNumber != 2 || d.PageSize != 4 || len(d.ids()) != 4 || d.Instances.Instance[0].Memory != 8192 || d.Instances.Instance[0].Cpu != 2 {
		t.Fatalf("page 2 by 4: %+v", d)
	}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   int
		code   string
	}{
		{"tag and type", map[string]string{"Tag.1.Key": "wharf-cluster", "Tag.1.Value": "green", "InstanceType": "ecs.c6.large"}, 2, ""},
		{"tag key only", map[string]string{"Tag.1.Key": "wharf-cluster", "PageSize": "100"}, 12, ""},
		{"two tags", map[string]string{"Tag.1.Key": "wharf-cluster", "Tag.1.Value": "blue", "Tag.2.Key": "team"}, 0, ""},
		{"status", map[string]string{"Status": "Stopped"}, 0, ""},
		{"name wildcard", map[string]string{"InstanceName": "green-*", "PageSize": "100"}, 6, ""},
		{"ids", map[string]string{"InstanceIds": `["` + blue[0] + `","` + blue[1] + `","i-unknown"]`}, 2, ""},
		{"malformed ids", map[string]string{"InstanceIds": blue[0]}, 0, "InvalidInstanceIds.Malformed"},
		{"bad token", map[string]string{"NextToken": "zzz"}, 0, "InvalidNextToken.Malformed"},
		{"page too large", map[string]string{"PageSize": "101"}, 0, "InvalidParameter"},
		{"token and page", map[string]string{"MaxResults": "5", "PageNumber": "2"}, 0, "InvalidParameter"},
		{"tag index 0", map[string]string{"Tag.0.Key": "x"}, 0, "InvalidTagCount"},
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
			var d ecsDescribeResult
			cc.call("DescribeInstances", tc.params, &d)
			if n := len(d.ids()); n != tc.want {
				t.Fatalf("%d instances, want %d", n, tc.want)
			}
		})
	}
	if got := s.Calls()["DescribeInstances"]; got != 2+1+11 {
		t.Fatalf("%d DescribeInstances counted, want 14", got)
	}
}

func TestECSCatalogueTypesRegionsQuota(t *testing.T) {
	s, c := newECSSim(t, ECSOptions{MaxInstances: 2, InstanceTypes: map[string]ECSInstanceType{
		"ecs.g6.large": {CPUCores: 2, MemoryGiB: "8"}, "ecs.t5-lc2m1.nano": {CPUCores: 1, MemoryGiB: "0.5"},
	}})
	var vsw struct {
		VSwitches struct {
			VSwitch []struct{ VSwitchId, VpcId string }
		}
	}
	c.call("DescribeVSwitches", map[string]string{"Version": VPCVersion, "VSwitchName": "wharf-agents"}, &vsw)
	if len(vsw.VSwitches.VSwitch) != 1 || vsw.VSwitches.VSwitch[0].VSwitchId != "vsw-bp1wharf0000000000001" {
		t.Fatalf("vSwitch by name: %+v", vsw)
	}
	c.call("DescribeVSwitches", map[string]string{"Version": VPCVersion, "VSwitchName": "nope"}, &vsw)
	if len(vsw.VSwitches.VSwitch) != 0 {
		t.Fatalf("vSwitch by an unknown name: %+v", vsw)
	}
	var sgs struct {
		SecurityGroups struct {
			SecurityGroup []struct{ SecurityGroupId string }
		}
	}
	c.call("DescribeSecurityGroups", map[string]string{"SecurityGroupName": "wharf-agents"}, &sgs)
	if len(sgs.SecurityGroups.SecurityGroup) != 1 || sgs.SecurityGroups.SecurityGroup[0].SecurityGroupId != "sg-bp1wharf0000000000001" {
		t.Fatalf("security group by name: %+v", sgs)
	}
	var ims struct {
		Images struct {
			Image []struct{ ImageId, ImageName string }
		}
	}
	c.call("DescribeImages", map[string]string{"ImageName": "Ubuntu 22.04 64 bit"}, &ims)
	if len(ims.Images.Image) != 1 || ims.Images.Image[0].ImageId != "ubuntu_22_04_x64_20G_alibase_20240130.vhd" {
		t.Fatalf("image by name: %+v", ims)
	}
	c.call("DescribeImages", map[string]string{"ImageId": "m-bp1wharf0000000000001"}, &ims)
	if len(ims.Images.Image) != 1 || ims.Images.Image[0].ImageName != "wharf-agent-base" {
		t.Fatalf("image by id: %+v", ims)
	}

	status, body, err := c.send(c.params("DescribeInstanceTypes", map[string]string{"InstanceTypes.1": "ecs.t5-lc2m1.nano", "InstanceTypes.2": "ecs.gigantic"}))
	if err != nil || status != 200 || !strings.Contains(string(body), `"MemorySize":0.5`) || !strings.Contains(string(body), `"CpuCoreCount":1`) ||
		strings.Contains(string(body), "gigantic") || strings.Contains(string(body), "g6") {
		t.Fatalf("instance types: %d %s %v", status, body, err)
	}
	var regions struct {
		Regions struct{ Region []struct{ RegionId string } }
	}
	c.call("DescribeRegions", map[string]string{"RegionId": ""}, &regions)
	if len(regions.Regions.Region) != 1 || regions.Regions.Region[0].RegionId != "cn-hangzhou" {
		t.Fatalf("regions %+v", regions)
	}

	var r ecsRunResult
	c.call("RunInstances", ecsRunParams("a"), &r)
	c.call("RunInstances", ecsRunParams("b"), nil)
	if status, code := c.fail("RunInstances", ecsRunParams("c")); status != 403 || code != "QuotaExceed.ElasticQuota" {
		t.Fatalf("over quota: %d %s", status, code)
	}
	c.call("DeleteInstance", map[string]string{"InstanceId": r.InstanceIdSets.InstanceIdSet[0], "Force": "true"}, nil)
	waitFor(t, "deleted", func() bool { _, ok := s.Instance(r.InstanceIdSets.InstanceIdSet[0]); return !ok })
	c.call("RunInstances", ecsRunParams("c"), nil) // a deleted instance frees its quota
}

func TestECSFaults(t *testing.T) {
	s, c := newECSSim(t, ECSOptions{})
	s.Inject(Fault{Action: "RunInstances", Code: "OperationDenied.NoStock", Times: 2})
	for range 2 {
		if status, code := c.fail("RunInstances", ecsRunParams("m1")); status != 403 || code != "OperationDenied.NoStock" {
			t.Fatalf("fault: %d %s", status, code)
		}
	}
	c.call("DescribeRegions", nil, nil) // other actions are not touched
	c.call("RunInstances", ecsRunParams("m1"), nil)

	s.Throttle("", 1)
	if status, code := c.fail("DescribeRegions", nil); status != 400 || code != "Throttling.User" {
		t.Fatalf("throttle: %d %s", status, code)
	}
	s.Inject(Fault{Code: "Forbidden.RAM"}) // until cleared
	for range 3 {
		if status, code := c.fail("DescribeInstances", nil); status != 403 || code != "Forbidden.RAM" {
			t.Fatalf("persistent fault: %d %s", status, code)
		}
	}
	s.ClearFaults()
	s.Inject(Fault{Action: "DescribeRegions", Code: "ServiceUnavailable", Times: 1})
	if status, code := c.fail("DescribeRegions", nil); status != 503 || code != "ServiceUnavailable" {
		t.Fatalf("server error: %d %s", status, code)
	}

	s.SetRate(1, 2)
	c.call("DescribeRegions", nil, nil)
	c.call("DescribeRegions", nil, nil)
	if _, code := c.fail("DescribeRegions", nil); code != "Throttling" {
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
	// the retry with the same token finds it. (A POST, as the SDK sends:
	// Go's transport itself would resend a GET on a reused connection.)
	c.method = http.MethodPost
	s.LoseAnswers("RunInstances", 1)
	if _, _, err := c.send(c.params("RunInstances", ecsRunParams("m2"))); err == nil {
		t.Fatal("a lost answer arrived")
	}
	var r ecsRunResult
	c.call("RunInstances", ecsRunParams("m2"), &r)
	if n := len(s.Instances()); n != 2 {
		t.Fatalf("%d instances after a lost answer and its retry, want 2", n)
	}
	if got := s.Calls(); got["RunInstances"] != 5 || got["DescribeRegions"] != 7 || got["DescribeInstances"] != 3 {
		t.Fatalf("calls %v", got)
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 {
		t.Fatal("ResetCalls kept counts")
	}
}

func TestECSBadOptions(t *testing.T) {
	for _, o := range []ECSOptions{
		{BootDelay: -1},
		{Keys: map[string]string{"": "x"}},
		{Keys: map[string]string{"AK": ""}},
		{InstanceTypes: map[string]ECSInstanceType{"ecs.x": {CPUCores: 1, MemoryGiB: "lots"}}},
		{InstanceTypes: map[string]ECSInstanceType{"ecs.x": {CPUCores: 0, MemoryGiB: "1"}}},
	} {
		if s, err := NewECS(o); err == nil {
			s.Close()
			t.Errorf("%+v accepted", o)
		}
	}
}
