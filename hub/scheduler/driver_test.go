package scheduler

import (
	"strings"
	"testing"
)

func withDrivers(h Host, ds ...string) Host {
	h.Drivers = ds
	return h
}

// TestDriverFeasibility: an app goes only to hosts with a driver that
// runs it (an image: docker or kubernetes; only a command: exec); a host
// that reports no driver is not judged; what no host runs stays pending
// with an explanation naming the missing driver.
func TestDriverFeasibility(t *testing.T) {
	docker := withDrivers(mkHost("d1", "default", "dc1", "", 4000, 8192), DriverDocker)
	exec := withDrivers(mkHost("e1", "default", "dc1", "", 4000, 8192), DriverExec)
	kube := withDrivers(mkHost("k1", "k8s", "dc1", "", 4000, 8192), DriverKubernetes)
	silent := mkHost("s1", "default", "dc1", "", 4000, 8192)
	tests := []struct {
		name        string
		hosts       []Host
		workload    string
		pools       []string
		want        map[string]int
		wantPending string // substring of the explanation; "" for none
	}{
		{"command goes to the exec host", []Host{docker, exec}, WorkloadCommand, nil, map[string]int{"e1": 2}, ""},
		{"image goes to the docker host", []Host{docker, exec}, WorkloadImage, nil, map[string]int{"d1": 2}, ""},
		{"image goes to a cluster", []Host{exec, kube}, WorkloadImage, nil, map[string]int{"k1": 2}, ""},
		{"no workload: any host", []Host{docker}, "", nil, map[string]int{"d1": 2}, ""},
		{"a host reporting no driver is not judged", []Host{silent}, WorkloadCommand, nil, map[string]int{"s1": 2}, ""},
		{"command without an exec host", []Host{docker}, WorkloadCommand, []string{"default"}, map[string]int{},
			`no host in pools [default] runs exec (apps with only a command need an exec host)`},
		{"image without a docker or kubernetes host", []Host{exec}, WorkloadImage, nil, map[string]int{},
			`no host in pools [default] runs docker or kubernetes (apps with an image need a docker or kubernetes host)`},
		{"the exec host is in a pool the app does not use", []Host{docker, withDrivers(mkHost("e2", "other", "dc1", "", 4000, 8192), DriverExec)},
			WorkloadCommand, []string{"default"}, map[string]int{}, `no host in pools [default] runs exec`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.hosts...)
			a := mkApp("web", 2, 100, 128, tt.pools...)
			a.Workload = tt.workload
			p := h.plan(a)
			eqCounts(t, "placements", perHost(p), tt.want)
			switch {
			case tt.wantPending == "" && len(p.Pending) != 0:
				t.Errorf("unexpected pending %+v", p.Pending)
			case tt.wantPending != "" && (len(p.Pending) != 1 || p.Pending[0].Count != 2 || !strings.Contains(p.Pending[0].Reason, tt.wantPending)):
				t.Errorf("pending %+v, want 2 with %q", p.Pending, tt.wantPending)
			}
		})
	}
}

// TestDriverExplainedBesideCapacity: when some host could run the app but
// has no room, the explanation counts the hosts that cannot run it and
// reports the capacity of those that could.
func TestDriverExplainedBesideCapacity(t *testing.T) {
	h := newHarness(t,
		withDrivers(mkHost("d1", "p", "dc1", "", 4000, 8192), DriverDocker),
		withDrivers(mkHost("e1", "p", "dc1", "", 4000, 256), DriverExec))
	a := mkApp("job", 1, 100, 512, "p")
	a.Workload = WorkloadCommand
	p := h.plan(a)
	if len(p.Place) != 0 || len(p.Pending) != 1 {
		t.Fatalf("got %+v", p)
	}
	for _, want := range []string{`1 ready host in pool "p" cannot run it (need exec)`, `no capacity in pool "p"`, `256 MB free`} {
		if !strings.Contains(p.Pending[0].Reason, want) {
			t.Errorf("explanation %q lacks %q", p.Pending[0].Reason, want)
		}
	}
}

func TestPoolRuns(t *testing.T) {
	tests := []struct {
		declared []string
		provider string
		workload string
		want     Verdict
	}{
		{[]string{DriverDocker, DriverExec}, "", WorkloadCommand, Yes},
		{[]string{DriverDocker}, "", WorkloadCommand, No},
		{[]string{DriverExec}, "aws", WorkloadImage, No}, // declared drivers win over the provider
		{nil, "kubernetes", WorkloadImage, Yes},
		{nil, "kubernetes", WorkloadCommand, No},
		{nil, "aws", WorkloadCommand, No},
		{nil, "vsphere", WorkloadImage, Yes},
		{nil, "openstack", WorkloadImage, Yes},
		{nil, "aliyun", WorkloadCommand, No},
		{nil, "", WorkloadCommand, Unknown},
		{nil, "baremetal", WorkloadImage, Unknown},
	}
	for _, tt := range tests {
		if got := PoolRuns(tt.declared, tt.provider, tt.workload); got != tt.want {
			t.Errorf("PoolRuns(%v, %q, %s) = %v, want %v", tt.declared, tt.provider, tt.workload, got, tt.want)
		}
	}
}
