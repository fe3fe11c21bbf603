package hub

import (
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
)

func TestProvisionedPoolFor(t *testing.T) {
	pools := []*state.Pool{
		{Name: "manual"},
		{Name: "exec-auto", Drivers: []string{"exec"}, Provision: &state.Provision{Provider: "sim"}},
		{Name: "web-auto", Provider: "aws", Provision: &state.Provision{Provider: "sim"}},
		{Name: "zz-auto", Provider: "aws", Provision: &state.Provision{Provider: "sim"}},
	}
	image := &state.App{Spec: state.AppSpec{Image: "web:1"}}
	command := &state.App{Spec: state.AppSpec{Command: []string{"/bin/app"}}}
	named := &state.App{Spec: state.AppSpec{Image: "web:1", Pools: []string{"zz-auto"}}}
	manualOnly := &state.App{Spec: state.AppSpec{Image: "web:1", Pools: []string{"manual"}}}
	for _, tc := range []struct {
		what   string
		tenant *state.Tenant
		app    *state.App
		want   string
	}{
		{"an image: the first provisioned pool whose machines run docker", &state.Tenant{}, image, "web-auto"},
		{"a command: the exec pool", &state.Tenant{}, command, "exec-auto"},
		{"the app's own pools only", &state.Tenant{}, named, "zz-auto"},
		{"a hand-enrolled pool never grows", &state.Tenant{}, manualOnly, ""},
		{"the tenant's allowed pools only", &state.Tenant{Pools: []string{"manual", "zz-auto"}}, image, "zz-auto"},
	} {
		if got := provisionedPoolFor(pools, tc.tenant, tc.app); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.what, got, tc.want)
		}
	}
}

func TestClusterTag(t *testing.T) {
	if got := clusterTag("sha256:0123456789abcdef0123"); got != "wharf-0123456789abcdef" {
		t.Fatalf("cluster tag %q", got)
	}
}
