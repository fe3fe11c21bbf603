package cloudsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// client signs and sends Query API calls the way the AWS SDK does
// (providers/aws tests the simulator through the SDK itself).
type client struct {
	t                       testing.TB
	url, id, secret, region string
	now                     func() time.Time
}

func newSim(t testing.TB, opts EC2Options) (*EC2, *client) {
	t.Helper()
	if opts.Keys == nil {
		opts.Keys = map[string]string{"AKIDTEST": "secret-test-key"}
	}
	s, err := NewEC2(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	id, secret := s.Key()
	return s, &client{t: t, url: s.URL(), id: id, secret: secret, region: s.Region(), now: time.Now}
}

func (c *client) request(action string, params url.Values) *http.Request {
	c.t.Helper()
	form := url.Values{"Action": {action}, "Version": {EC2Version}}
	for k, v := range params {
		form[k] = v
	}
	body := form.Encode()
	r, err := http.NewRequest(http.MethodPost, c.url+"/", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	c.sign(r, []byte(body))
	return r
}

func (c *client) sign(r *http.Request, body []byte) {
	now := c.now().UTC()
	amzDate := now.Format(amzDateForm)
	r.Header.Set("X-Amz-Date", amzDate)
	r.Host = r.URL.Host
	p := sigParts{keyID: c.id, date: amzDate[:8], region: c.region, service: "ec2", signedHeaders: []string{"content-type", "host", "x-amz-date"}}
	sum := sha256.Sum256(body)
	sig := computeSignature(r, p, amzDate, hex.EncodeToString(sum[:]), c.secret)
	r.Header.Set("Authorization", sigAlgorithm+" Credential="+c.id+"/"+p.date+"/"+c.region+"/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="+sig)
}

// do sends r and returns the status and body.
func (c *client) do(r *http.Request) (int, []byte, error) {
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// call runs an action that must succeed and decodes its answer into out.
func (c *client) call(action string, params url.Values, out any) {
	c.t.Helper()
	status, body, err := c.do(c.request(action, params))
	if err != nil || status != http.StatusOK {
		c.t.Fatalf("%s: status %d err %v: %s", action, status, err, body)
	}
	if out != nil {
		if err := xml.Unmarshal(body, out); err != nil {
			c.t.Fatalf("%s: decode %s: %v", action, body, err)
		}
	}
}

// fail runs an action that must fail and returns its status and code.
func (c *client) fail(action string, params url.Values) (int, string) {
	c.t.Helper()
	status, body, err := c.do(c.request(action, params))
	if err != nil {
		c.t.Fatalf("%s: %v", action, err)
	}
	return status, errorCode(c.t, status, body)
}

func errorCode(t testing.TB, status int, body []byte) string {
	t.Helper()
	if status == http.StatusOK {
		t.Fatalf("answer 200, want an error: %s", body)
	}
	var e struct {
		XMLName   xml.Name `xml:"Response"`
		Code      string   `xml:"Errors>Error>Code"`
		Message   string   `xml:"Errors>Error>Message"`
		RequestID string   `xml:"RequestID"`
	}
	if err := xml.Unmarshal(body, &e); err != nil || e.Code == "" || e.Message == "" || e.RequestID == "" {
		t.Fatalf("error answer %q: %v", body, err)
	}
	return e.Code
}

type runResult struct {
	ReservationID string `xml:"reservationId"`
	Instances     []struct {
		ID    string `xml:"instanceId"`
		State string `xml:"instanceState>name"`
		Tags  []struct {
			Key   string `xml:"key"`
			Value string `xml:"value"`
		} `xml:"tagSet>item"`
	} `xml:"instancesSet>item"`
}

type describeResult struct {
	Reservations []struct {
		ID        string `xml:"reservationId"`
		Instances []struct {
			ID    string `xml:"instanceId"`
			State string `xml:"instanceState>name"`
		} `xml:"instancesSet>item"`
	} `xml:"reservationSet>item"`
	NextToken string `xml:"nextToken"`
}

func (d describeResult) ids() []string {
	var out []string
	for _, r := range d.Reservations {
		for _, in := range r.Instances {
			out = append(out, in.ID)
		}
	}
	return out
}

func runParams(token string, kv ...string) url.Values {
	v := url.Values{"ImageId": {"ami-12345678"}, "InstanceType": {"t3.small"}, "MinCount": {"1"}, "MaxCount": {"1"}}
	if token != "" {
		v.Set("ClientToken", token)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
