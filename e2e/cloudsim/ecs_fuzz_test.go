package cloudsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeECSRequest feeds arbitrary methods, query strings and bodies
// through the parameter decoding, the signature check and every action:
// none may panic, no fuzzed signature may verify, and every answer must be
// a well-formed JSON success or error.
func FuzzDecodeECSRequest(f *testing.F) {
	const sig = "&AccessKeyId=LTAITEST&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n1&Timestamp=2026-01-01T00%3A00%3A00Z&Signature=abc%3D"
	for _, seed := range []struct{ method, query, body string }{
		{"POST", "Action=RunInstances&Version=2014-05-26&Format=JSON&RegionId=cn-hangzhou&ImageId=m-bp1wharf0000000000001&InstanceType=ecs.g6.large" +
			"&VSwitchId=vsw-bp1wharf0000000000001&SecurityGroupId=sg-bp1wharf0000000000001&ClientToken=m1&Amount=1&InstanceName=p-m1" +
			"&Tag.1.Key=wharf-cluster&Tag.1.Value=c1&UserData=I2Nsb3VkLWNvbmZpZwo%3D" + sig, ""},
		{"GET", "Action=DescribeInstances&Version=2014-05-26&RegionId=cn-hangzhou&InstanceIds=%5B%22i-1%22%5D&Tag.1.Key=wharf-cluster&MaxResults=5&NextToken=YWZ0ZXI6MQ" + sig, ""},
		{"GET", "Action=DescribeInstances&Version=2014-05-26&RegionId=cn-hangzhou&PageNumber=3&PageSize=2&InstanceName=a*b&Status=Running", ""},
		{"POST", "Action=DeleteInstance&Version=2014-05-26", "InstanceId=i-1&Force=true&RegionId=cn-hangzhou"},
		{"POST", "Action=DeleteInstances&Version=2014-05-26&RegionId=cn-hangzhou&InstanceId.1=i-1&InstanceId.2=i-2", ""},
		{"GET", "Action=DescribeInstanceTypes&Version=2014-05-26&InstanceTypes.1=ecs.g6.large&MaxResults=1", ""},
		{"GET", "Action=DescribeVSwitches&Version=2016-04-28&RegionId=cn-hangzhou&VSwitchName=wharf-agents", ""},
		{"GET", "Action=DescribeSecurityGroups&Version=2014-05-26&RegionId=cn-hangzhou&SecurityGroupIds=%5B%5D", ""},
		{"GET", "Action=DescribeImages&Version=2014-05-26&RegionId=cn-hangzhou&ImageId=a,b&Status=Available", ""},
		{"GET", "Action=DescribeRegions&Version=2014-05-26&Tag.99999.Key=x&Tag.01.Value=y", ""},
		{"PUT", "%zz&&==", "a=b"},
		{"POST", "Action=RunInstances&Action=RunInstances", "%%%"},
	} {
		f.Add(seed.method, seed.query, seed.body)
	}
	s, err := NewECS(ECSOptions{Keys: map[string]string{"LTAITEST": "secret-test-key"}, MaxInstances: 50, BootDelay: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, method, query, body string) {
		if method != http.MethodGet && method != http.MethodPost {
			method = http.MethodPut
		}
		r := httptest.NewRequest(method, "/", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		p, eerr := ecsParseParams(r, []byte(body))
		w := httptest.NewRecorder()
		if eerr == nil {
			if aerr := s.authenticate(method, p, time.Now()); aerr == nil {
				t.Fatalf("a fuzzed signature verified: %q %q", query, body)
			}
			var spec ecsSpec
			if spec, eerr = ecsLookup(p); eerr == nil {
				var resp ecsResponse
				if resp, eerr = s.call(p["Action"], spec, p); eerr == nil {
					ecsWriteJSON(w, "req", resp)
				}
			}
		}
		if eerr != nil {
			s.writeError(w, "req", eerr)
			if eerr.Status < 400 || eerr.Code == "" || eerr.Message == "" {
				t.Fatalf("error answer %+v", eerr)
			}
			ecsErrorCode(t, w.Code, w.Body.Bytes())
			return
		}
		var head struct{ RequestId string }
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &head) != nil || head.RequestId != "req" {
			t.Fatalf("answer %d %s", w.Code, w.Body.Bytes())
		}
	})
}
