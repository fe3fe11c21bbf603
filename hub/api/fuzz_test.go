package api

import (
	"net/http"
	"testing"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// FuzzDecodeAppSpec feeds any bytes to the app-spec decoding path: the
// answer is a 400/413 error or a spec that passes Validate, never a panic.
func FuzzDecodeAppSpec(f *testing.F) {
	f.Add([]byte(`{"name":"web","image":"web:1","instances":2,"ports":[{"container_port":8080}],"health":{"http":"/h","interval":"5s"}}`))
	f.Add([]byte(`{"name":"web","image":"i","failover":{"mode":"fenced","max_disconnect":"30s"}}`))
	f.Add([]byte(`{"name":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var spec apitypes.AppSpec
		if err := decodeJSON(b, &spec); err != nil {
			if s := apitypes.StatusOf(err); s != http.StatusBadRequest {
				t.Fatalf("decode error with status %d: %v", s, err)
			}
			return
		}
		if err := spec.Validate(); err != nil {
			if apitypes.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("validate error without 400: %v", err)
			}
			return
		}
		spec.Normalize()
		if err := spec.Validate(); err != nil {
			t.Fatalf("a normalized valid spec fails validation: %v", err)
		}
	})
}

// FuzzDecodeRequests does the same for the other request bodies.
func FuzzDecodeRequests(f *testing.F) {
	f.Add([]byte(`{"name":"acme","quota":{"instances":3}}`))
	f.Add([]byte(`{"name":"ci","role":"developer","tenant":"acme"}`))
	f.Add([]byte(`{"name":"aws-bj","datacenter":"dc1","labels":{"a":"b"}}`))
	f.Add([]byte(`{"name":"auto","provision":{"provider":"aws1","template":{"image":"i"},"min_hosts":1,"max_hosts":3,"boot_timeout":"5m"}}`))
	f.Add([]byte(`{"name":"aws1","type":"aws","endpoint":"http://127.0.0.1:9","credentials":{"access_key_id":"a"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		targets := []interface{ Validate() error }{&apitypes.TenantRequest{}, &apitypes.TokenRequest{}, &apitypes.PoolRequest{}, &apitypes.ScaleRequest{}, &apitypes.RollbackRequest{}, &apitypes.ProviderRequest{}}
		for _, v := range targets {
			if err := decodeJSON(b, v); err != nil {
				if apitypes.StatusOf(err) != http.StatusBadRequest {
					t.Fatalf("%T: %v", v, err)
				}
				continue
			}
			if err := v.Validate(); err != nil && apitypes.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("%T validate: %v", v, err)
			}
		}
	})
}
