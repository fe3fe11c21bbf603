package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecodeTemplate(t *testing.T) {
	for _, tc := range []struct {
		typ, raw, err string
	}{
		{"aws", `{"instance_type":"t3.small","image":"ami-1","security_groups":["sg-1","sg-2"]}`, ""},
		{"aws", `{"instance_type":"t3.small","image":"ami-1","security_groups":"sg-1,sg-2"}`, ""},
		{"aws", `{"instance_type":"t3.small"}`, "aws needs image"},
		{"aws", `{"instance_type":"t3.small","image":"ami-1","flavor":"x"}`, "not flavor"},
		{"aws", `{"instance_type":3,"image":"ami-1"}`, "instance_type"},
		{"aws", `[1]`, "want a JSON object"},
		{"ssh", `{"hosts":["10.0.0.1:22"]}`, ""},
		{"ssh", `{"hosts":["10.0.0.1"]}`, "want HOST:PORT"},
		{"ssh", `{}`, "ssh needs hosts"},
		{"ssh", ``, "ssh needs hosts"},
		{"openstack", `{"flavor":"m1.small","image":"debian","network":"private"}`, ""},
		{"vsphere", `{"template":"/DC0/vm/tmpl","resource_pool":"/DC0/host/DC0_C0/Resources"}`, ""},
		{"aliyun", `{"instance_type":"ecs.g6.large","image":"img","vswitch":"vsw","security_group":"sg"}`, ""},
		{"gce", `{}`, "unknown provider type"},
	} {
		tpl, err := DecodeTemplate(tc.typ, json.RawMessage(tc.raw))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s %s: %v, want %q", tc.typ, tc.raw, err, tc.err)
		}
		if tc.err == "" && tc.typ == "aws" && len(tpl.SecurityGroups) != 2 {
			t.Errorf("%s: security groups %v", tc.raw, tpl.SecurityGroups)
		}
	}
}

func TestDecodeCredentialsNeverQuotesValues(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	for _, tc := range []struct {
		typ, raw, err string
	}{
		{"aws", `{"access_key_id":"AK","secret_access_key":"` + secret + `"}`, ""},
		{"aws", `{"access_key_id":"AK"}`, "needs secret_access_key"},
		{"aws", `{"access_key_id":"AK","secret_access_key":"` + secret + `","token":"x"}`, "not token"},
		{"aws", `{"access_key_id":"AK","secret_access_key":["` + secret + `"]}`, "secret_access_key"},
		{"aws", `{"access_key_id":"AK","secret_access_key":"` + secret + `"`, "want a JSON object"},
		{"ssh", `{"user":"root","private_key":"` + secret + `","host_key_fingerprints":{"h:22":"SHA256:x"}}`, ""},
		{"ssh", `{"user":"root","private_key":"` + secret + `","host_key_fingerprints":{}}`, "needs host_key_fingerprints"},
		{"openstack", `{"username":"u","password":"` + secret + `","project":"p","domain":"Default"}`, ""},
	} {
		c, err := DecodeCredentials(tc.typ, json.RawMessage(tc.raw))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s %s: %v, want %q", tc.typ, tc.raw, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("the error quotes the secret: %v", err)
		}
		if tc.err == "" && tc.typ == "ssh" && c.HostKeyFingerprints["h:22"] != "SHA256:x" {
			t.Errorf("fingerprints %v", c.HostKeyFingerprints)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	throttled := fmt.Errorf("create: %w", &Error{Kind: KindThrottled, Code: "RequestLimitExceeded", Message: "slow down"})
	if KindOf(throttled) != KindThrottled || !Retryable(throttled) {
		t.Fatalf("kind %q retryable %v", KindOf(throttled), Retryable(throttled))
	}
	if got := throttled.Error(); got != "create: RequestLimitExceeded: slow down" {
		t.Fatalf("message %q", got)
	}
	quota := &Error{Kind: KindQuota, Code: "InstanceLimitExceeded"}
	if Retryable(quota) || KindOf(errors.New("x")) != "" || !Retryable(errors.New("x")) {
		t.Fatal("quota is for an admin; a plain error is retried")
	}
}

type nopProvider struct{ Provider }

func (nopProvider) Check(context.Context) error { return nil }

func TestRegistry(t *testing.T) {
	if _, err := Open(Account{Type: "test-none"}); err == nil || !strings.Contains(err.Error(), "not built into this binary") {
		t.Fatalf("open of an unregistered type: %v", err)
	}
	Register("test-nop", func(a Account) (Provider, error) { return nopProvider{}, nil })
	t.Cleanup(func() {
		// The registry is the process's: leave it as found, so the test
		// runs again under -count.
		mu.Lock()
		delete(openers, "test-nop")
		mu.Unlock()
	})
	p, err := Open(Account{Type: "test-nop"})
	if err != nil || p.Check(context.Background()) != nil {
		t.Fatalf("open: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a second registration of one type did not panic")
		}
	}()
	Register("test-nop", func(a Account) (Provider, error) { return nil, nil })
}
