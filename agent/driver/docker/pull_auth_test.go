package docker

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/wharf-platform/wharf/agent/driver"
)

// TestPullOptions: credentials go as base64url JSON of username, password
// and serveraddress; what a failure names says where the pull went.
func TestPullOptions(t *testing.T) {
	tests := []struct {
		image    string
		auth     *driver.RegistryAuth
		wantFrom string
	}{
		{"nginx:1", nil, "registry docker.io"},
		{"library/nginx", nil, "registry docker.io"},
		{"127.0.0.1:5000/web:1", nil, "registry 127.0.0.1:5000 (no credentials for it)"},
		{"localhost/web", nil, "registry localhost (no credentials for it)"},
		{"r.acme.test/team/web:1", &driver.RegistryAuth{Server: "r.acme.test", Username: "ci", Password: "p+/=?"}, "registry r.acme.test (as ci)"},
	}
	for _, tt := range tests {
		opts, from, err := pullOptions(tt.image, tt.auth)
		if err != nil || from != tt.wantFrom {
			t.Errorf("%s: from %q, %v; want %q", tt.image, from, err, tt.wantFrom)
			continue
		}
		if tt.auth == nil {
			if opts.RegistryAuth != "" {
				t.Errorf("%s: credentials %q without any", tt.image, opts.RegistryAuth)
			}
			continue
		}
		raw, err := base64.URLEncoding.DecodeString(opts.RegistryAuth)
		if err != nil {
			t.Fatalf("%s: X-Registry-Auth %q is not base64url: %v", tt.image, opts.RegistryAuth, err)
		}
		var got map[string]string
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if got["username"] != tt.auth.Username || got["password"] != tt.auth.Password || got["serveraddress"] != tt.auth.Server {
			t.Errorf("%s: X-Registry-Auth carries %v", tt.image, got)
		}
	}
}
