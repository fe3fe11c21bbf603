package cloudsim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeRequest feeds arbitrary bodies and Authorization headers
// through the signature check, the form decoding and every action: none
// may panic, and every answer must be a well-formed success or error.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []struct{ body, auth string }{
		{"Action=RunInstances&Version=2016-11-15&ImageId=ami-12345678&InstanceType=t3.small&MinCount=1&MaxCount=1&ClientToken=m1" +
			"&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=wharf-cluster&TagSpecification.1.Tag.1.Value=c1" +
			"&UserData=I2Nsb3VkLWNvbmZpZwo%3D&SecurityGroupId.1=sg-12345678&SecurityGroup.1=web&SubnetId=subnet-12345678", ""},
		{"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Awharf-cluster&Filter.1.Value.1=c*&MaxResults=5&NextToken=YWZ0ZXI6MQ", ""},
		{"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0&InstanceId.2=i-0123456789abcdef0", ""},
		{"Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0", ""},
		{"Action=DescribeInstanceTypes&Version=2016-11-15&InstanceType.1=t3.micro", ""},
		{"Action=DescribeRegions&Version=2016-11-15&RegionName.1=us-east-1", ""},
		{"Action=RunInstances&Version=2016-11-15&TagSpecification.99999999999999999999.Tag.1.Key=x", ""},
		{"Action=DescribeInstances&Version=2016-11-15&Filter.01.Name=x&Filter.1.Value.0=y", ""},
		{"%zz&&==", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64)},
		{"", "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request,SignedHeaders=b;a,Signature=x"},
	} {
		f.Add(seed.body, seed.auth)
	}
	s, err := NewEC2(EC2Options{Keys: map[string]string{"AKIDTEST": "secret-test-key"}, MaxInstances: 50, BootDelay: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, body, auth string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", time.Now().UTC().Format(amzDateForm))
		if aerr := verifySignature(r, []byte(body), s.keys, s.region, time.Now()); aerr == nil {
			t.Fatalf("a fuzzed signature verified: %q", auth)
		}
		form, aerr := parseForm(r, []byte(body))
		w := httptest.NewRecorder()
		if aerr == nil {
			action := form.Get("Action")
			var resp response
			if resp, aerr = s.call(action, actions[action], form); aerr == nil {
				writeXML(w, "req", resp)
			}
		}
		if aerr != nil {
			writeError(w, "req", aerr)
			if aerr.Status < 400 || aerr.Code == "" || aerr.Message == "" {
				t.Fatalf("error answer %+v", aerr)
			}
			errorCode(t, w.Code, w.Body.Bytes())
		} else if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	})
}
