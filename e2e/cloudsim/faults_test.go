package cloudsim

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestFaultsInjection: faults match in order, by action or for any, count down
// their Times, lost answers are apart from errors, the rate limit comes
// first, and Clear ends them all.
func TestFaultsInjection(t *testing.T) {
	f := NewFaults()
	now := time.Now()
	f.Fail("RunInstances", FaultQuota, 2)
	f.Inject(Fault{Code: "Whatever", Times: 1})
	f.Lose("RunInstances", 1)
	kinds := func(action string) []FaultKind {
		var out []FaultKind
		for range 4 {
			if x := f.next(action, now); x != nil {
				out = append(out, x.Kind)
			} else {
				out = append(out, -1)
			}
		}
		return out
	}
	if got := kinds("RunInstances"); got[0] != FaultQuota || got[1] != FaultQuota || got[2] != FaultError || got[3] != -1 {
		t.Fatalf("faults of RunInstances: %v", got)
	}
	if !f.lost("RunInstances") || f.lost("RunInstances") {
		t.Fatal("one lost answer, lost once")
	}
	f.Fail("", FaultHang, 0)
	for range 3 {
		if x := f.next("Any", now); x == nil || x.Kind != FaultHang {
			t.Fatalf("every call hangs until Clear: %+v", x)
		}
	}
	f.Clear()
	if x := f.next("Any", now); x != nil {
		t.Fatalf("after Clear: %+v", x)
	}
	f.SetRate(1, 1)
	if f.next("A", now) != nil {
		t.Fatal("the burst was throttled")
	}
	if x := f.next("A", now); x == nil || x.Kind != FaultThrottle || !x.rate {
		t.Fatalf("beyond the rate: %+v", x)
	}
	f.Clear()
	f.count("A")
	f.count("A")
	f.count("B")
	if c := f.Calls(); c["A"] != 2 || c["B"] != 1 {
		t.Fatalf("calls %v", c)
	}
	f.ResetCalls()
	if len(f.Calls()) != 0 {
		t.Fatal("ResetCalls kept counts")
	}
	f.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if f.delay(ctx, nil) {
		t.Fatal("a call outlived its client's context in the latency")
	}
}

// TestFaultKindsInEachCloudsWords: one kind of fault, asked of every
// simulator, is answered with that cloud's code and status; a hang gives
// no answer until the client gives up.
func TestFaultKindsInEachCloudsWords(t *testing.T) {
	ec2, ec2c := newSim(t, EC2Options{})
	ecs, ecsc := newECSSim(t, ECSOptions{})
	nova, novac := newOpenStack(t, OpenStackOptions{})
	for _, tc := range []struct {
		kind           FaultKind
		ec2Status      int
		ec2Code        string
		ecsStatus      int
		ecsCode        string
		novaStatus     int
		novaWords      string
		novaRetryAfter string
	}{
		{FaultThrottle, 503, "RequestLimitExceeded", 400, "Throttling.User", 429, "rate-limited", "1"},
		{FaultQuota, 400, "InstanceLimitExceeded", 403, "QuotaExceed.ElasticQuota", 403, "Quota exceeded for instances", ""},
		{FaultAuth, 403, "UnauthorizedOperation", 403, "Forbidden.RAM", 401, "requires authentication", ""},
		{FaultServer, 500, "InternalError", 500, "InternalError", 500, "Unexpected API Error", ""},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			ec2.Faults().Fail("DescribeRegions", tc.kind, 1)
			if status, code := ec2c.fail("DescribeRegions", nil); status != tc.ec2Status || code != tc.ec2Code {
				t.Errorf("EC2: %d %s, want %d %s", status, code, tc.ec2Status, tc.ec2Code)
			}
			ecs.Faults().Fail("DescribeRegions", tc.kind, 1)
			if status, code := ecsc.fail("DescribeRegions", nil); status != tc.ecsStatus || code != tc.ecsCode {
				t.Errorf("ECS: %d %s, want %d %s", status, code, tc.ecsStatus, tc.ecsCode)
			}
			nova.Faults().Fail("ListFlavors", tc.kind, 1)
			status, hdr, body := novac.do("GET", "/compute/v2.1/flavors/detail", "")
			if status != tc.novaStatus || !strings.Contains(string(body), tc.novaWords) || hdr.Get("Retry-After") != tc.novaRetryAfter {
				t.Errorf("Nova: %d %s (Retry-After %q), want %d %q", status, body, hdr.Get("Retry-After"), tc.novaStatus, tc.novaWords)
			}
		})
	}
	// A hang holds the call until the client gives up.
	ec2.Faults().Fail("", FaultHang, 0)
	r := ec2c.request("DescribeRegions", nil)
	// start before the deadline's clock: the deadline may fire a hair
	// under 200 ms after a start taken later.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := ec2c.do(r.WithContext(ctx)); err == nil || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("a hung call answered after %v: %v", time.Since(start), err)
	}
	ec2.ClearFaults()
	ec2c.call("DescribeRegions", nil, nil)
}
