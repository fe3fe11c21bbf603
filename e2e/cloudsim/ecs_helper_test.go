package cloudsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// ecsClient signs and sends RPC calls the way the Alibaba Cloud SDK does
// (providers/aliyun tests the simulator through the SDK itself; the
// signature is checked against Alibaba Cloud's published example).
type ecsClient struct {
	t                       testing.TB
	url, id, secret, region string
	method                  string // GET, or POST with the parameters in a form body
	now                     func() time.Time
}

func newECSSim(t testing.TB, opts ECSOptions) (*ECS, *ecsClient) {
	t.Helper()
	if opts.Keys == nil {
		opts.Keys = map[string]string{"LTAITEST": "secret-test-key"}
	}
	s, err := NewECS(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	id, secret := s.Key()
	return s, &ecsClient{t: t, url: s.URL(), id: id, secret: secret, region: s.Region(), method: http.MethodGet, now: time.Now}
}

// params are a call's parameters, signed; an empty value in extra
// removes that parameter.
func (c *ecsClient) params(action string, extra map[string]string) ecsParams {
	p := ecsParams{
		"Action": action, "Version": ECSVersion, "Format": "JSON", "RegionId": c.region,
		"AccessKeyId": c.id, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
		"SignatureNonce": randomHex(16), "Timestamp": c.now().UTC().Format(ecsTimeFormat),
	}
	for k, v := range extra {
		if v == "" {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	p["Signature"] = ecsSign(ecsStringToSign(c.method, p), c.secret)
	return p
}

// send sends signed parameters and returns the status and body.
func (c *ecsClient) send(p ecsParams) (int, []byte, error) {
	q := url.Values{}
	for k, v := range p {
		q.Set(k, v)
	}
	var r *http.Request
	var err error
	if c.method == http.MethodGet {
		r, err = http.NewRequest(http.MethodGet, c.url+"/?"+q.Encode(), nil)
	} else {
		r, err = http.NewRequest(http.MethodPost, c.url+"/", strings.NewReader(q.Encode()))
		if err == nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// call runs an action that must succeed and decodes its answer into out.
func (c *ecsClient) call(action string, extra map[string]string, out any) {
	c.t.Helper()
	status, body, err := c.send(c.params(action, extra))
	if err != nil || status != http.StatusOK {
		c.t.Fatalf("%s: status %d err %v: %s", action, status, err, body)
	}
	var head struct{ RequestId string }
	if err := json.Unmarshal(body, &head); err != nil || head.RequestId == "" {
		c.t.Fatalf("%s: answer without a RequestId: %s", action, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			c.t.Fatalf("%s: decode %s: %v", action, body, err)
		}
	}
}

// fail runs an action that must fail and returns its status and code.
func (c *ecsClient) fail(action string, extra map[string]string) (int, string) {
	c.t.Helper()
	status, body, err := c.send(c.params(action, extra))
	if err != nil {
		c.t.Fatalf("%s: %v", action, err)
	}
	return status, ecsErrorCode(c.t, status, body)
}

// ecsErrorCode checks an error answer's shape and returns its code.
func ecsErrorCode(t testing.TB, status int, body []byte) string {
	t.Helper()
	if status == http.StatusOK {
		t.Fatalf("answer 200, want an error: %s", body)
	}
	var e ecsErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Code == "" || e.Message == "" || e.RequestID == "" || e.HostID == "" || e.Recommend == "" {
		t.Fatalf("error answer %q: %v", body, err)
	}
	return e.Code
}

type ecsRunResult struct {
	InstanceIdSets struct{ InstanceIdSet []string }
}

type ecsDescribeResult struct {
	TotalCount, PageNumber, PageSize int
	NextToken                        string
	Instances                        struct {
		Instance []struct {
			InstanceId, InstanceName, Status string
			Memory, Cpu                      int64
			Tags                             struct {
				Tag []struct{ TagKey, TagValue string }
			}
		}
	}
}

func (d ecsDescribeResult) ids() []string {
	var out []string
	for _, in := range d.Instances.Instance {
		out = append(out, in.InstanceId)
	}
	return out
}

// ecsRun is RunInstances' parameters on the default catalogue.
func ecsRunParams(token string, kv ...string) map[string]string {
	p := map[string]string{"ImageId": "m-bp1wharf0000000000001", "InstanceType": "ecs.g6.large",
		"VSwitchId": "vsw-bp1wharf0000000000001", "SecurityGroupId": "sg-bp1wharf0000000000001", "Amount": "1"}
	if token != "" {
		p["ClientToken"] = token
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i]] = kv[i+1]
	}
	return p
}

// ecsStatus is an instance's status as DescribeInstances answers it,
// "" once it is deleted.
func (c *ecsClient) status(id string) string {
	c.t.Helper()
	var d ecsDescribeResult
	c.call("DescribeInstances", map[string]string{"InstanceIds": `["` + id + `"]`}, &d)
	if len(d.Instances.Instance) == 0 {
		return ""
	}
	return d.Instances.Instance[0].Status
}
