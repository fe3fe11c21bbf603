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
	failover := &state.App{Spec: state.AppSpec{Image: "web:1", Pools: []string{"web-auto", "zz-auto"}, FailoverPools: []string{"manual", "fo-auto"}}}
	pools = append(pools, &state.Pool{Name: "fo-auto", Provider: "aws", Provision: &state.Provision{Provider: "sim"}})
	host := func(pool, st string) *state.Host { return &state.Host{Pool: pool, State: st} }
	for _, tc := range []struct {
		what   string
		tenant *state.Tenant
		hosts  []*state.Host
		app    *state.App
		want   string
	}{
		{"an image: the first provisioned pool whose machines run docker", &state.Tenant{}, nil, image, "web-auto"},
		{"a command: the exec pool", &state.Tenant{}, nil, command, "exec-auto"},
		{"the app's own pools only", &state.Tenant{}, nil, named, "zz-auto"},
		{"a hand-enrolled pool never grows", &state.Tenant{}, nil, manualOnly, ""},
		{"the tenant's allowed pools only", &state.Tenant{Pools: []string{"manual", "zz-auto"}}, nil, image, "zz-auto"},
		{"the app's pools while one is not lost", &state.Tenant{}, []*state.Host{host("web-auto", state.HostDown), host("zz-auto", state.HostReady)}, failover, "zz-auto"},
		{"a pool with one live host among lost ones is not lost", &state.Tenant{}, []*state.Host{host("web-auto", state.HostDown), host("web-auto", state.HostDraining)}, failover, "web-auto"},
		{"every pool of the app lost: its first provisioned failover pool", &state.Tenant{},
			[]*state.Host{host("web-auto", state.HostDown), host("zz-auto", state.HostDown), host("zz-auto", state.HostDown)}, failover, "fo-auto"},
		{"suspect hosts take no placement: lost too", &state.Tenant{}, []*state.Host{host("web-auto", state.HostDown), host("zz-auto", state.HostSuspect)}, failover, "fo-auto"},
		{"a lost pool without failover pools grows nothing", &state.Tenant{}, []*state.Host{host("zz-auto", state.HostDown)}, named, ""},
		{"a pool with no host yet is not lost", &state.Tenant{}, []*state.Host{host("web-auto", state.HostDown)}, failover, "zz-auto"},
	} {
		if got := provisionedPoolFor(pools, tc.hosts, tc.tenant, tc.app); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.what, got, tc.want)
		}
	}
}

func TestClusterTag(t *testing.T) {
	if got := clusterTag("sha256:0123456789abcdef0123"); got != "wharf-0123456789abcdef" {
		t.Fatalf("cluster tag %q", got)
	}
}
