package metrics

import (
	"testing"
	"time"

	info "github.com/google/cadvisor/lib/model"

	"github.com/wharf-platform/wharf/agent/driver/docker"
)

func TestLabelsMatchDockerDriver(t *testing.T) {
	for _, tc := range []struct{ ours, driver string }{
		{LabelInstance, docker.LabelInstance},
		{LabelApp, docker.LabelApp},
		{LabelTenant, docker.LabelTenant},
		{LabelHost, docker.LabelHost},
	} {
		if tc.ours != tc.driver {
			t.Errorf("label %q, docker driver uses %q", tc.ours, tc.driver)
		}
	}
}

func TestNewConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr bool
		want    time.Duration
	}{
		{"defaults", Config{HostID: "h"}, false, DefaultInterval},
		{"interval", Config{HostID: "h", Interval: time.Second}, false, time.Second},
		{"no host", Config{}, true, 0},
		{"negative interval", Config{HostID: "h", Interval: -1}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New: %v, want error %v", err, tc.wantErr)
			}
			if err == nil && c.cfg.Interval != tc.want {
				t.Errorf("interval %v, want %v", c.cfg.Interval, tc.want)
			}
		})
	}
}

func TestIdentify(t *testing.T) {
	id := newIdentifier("h1", map[string]string{"/wharf/h1/i-x": "i-x"},
		func(id string) (string, string) { return "app-" + id, "t" })
	lbl := func(host, inst string) *info.ContainerSpec {
		return &info.ContainerSpec{Labels: map[string]string{LabelHost: host, LabelInstance: inst, LabelApp: "a", LabelTenant: "t"}}
	}
	for _, tc := range []struct {
		name, cname string
		spec        *info.ContainerSpec
		want        identity
		ok          bool
	}{
		{"docker instance", "/docker/abc", lbl("h1", "i-1"), identity{"i-1", "a", "t"}, true},
		{"other host", "/docker/abc", lbl("h2", "i-1"), identity{}, false},
		{"no instance label", "/docker/abc", lbl("h1", ""), identity{}, false},
		{"unlabelled container", "/docker/abc", &info.ContainerSpec{Labels: map[string]string{"x": "y"}}, identity{}, false},
		{"exec cgroup", "/wharf/h1/i-x", &info.ContainerSpec{}, identity{"i-x", "app-i-x", "t"}, true},
		{"exec cgroup other host label", "/wharf/h1/i-x", lbl("h2", "i-9"), identity{}, false},
		{"unknown cgroup", "/wharf/h1/i-y", &info.ContainerSpec{}, identity{}, false},
		{"root", "/", &info.ContainerSpec{}, identity{}, false},
		{"nil spec", "/wharf/h1/i-x", nil, identity{"i-x", "app-i-x", "t"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := id(tc.cname, tc.spec)
			if ok != tc.ok || got != tc.want {
				t.Errorf("identify(%q) = %+v, %v; want %+v, %v", tc.cname, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCleanCgroup(t *testing.T) {
	for in, want := range map[string]string{
		"/wharf/h/i": "/wharf/h/i", "wharf/h/i/": "/wharf/h/i", " /a//b ": "/a/b", "": "/", "/": "/",
	} {
		if got := cleanCgroup(in); got != want {
			t.Errorf("cleanCgroup(%q) = %q, want %q", in, got, want)
		}
	}
}

func stats(ts time.Time, cpuNS, ws uint64, rx ...uint64) []*info.ContainerStats {
	st := &info.ContainerStats{Timestamp: ts, Cpu: &info.CpuStats{}, Memory: &info.MemoryStats{WorkingSet: ws, Usage: ws + 1}}
	st.Cpu.Usage.Total = cpuNS
	st.Network = &info.NetworkStats{}
	for i, r := range rx {
		st.Network.Interfaces = append(st.Network.Interfaces, info.InterfaceStats{Name: "eth" + string(rune('0'+i)), RxBytes: r, TxBytes: 2 * r})
	}
	st.Filesystem = []info.FsStats{{Usage: 10}, {Usage: 5}}
	return []*info.ContainerStats{st}
}

func TestBuildSample(t *testing.T) {
	t0 := time.Unix(1000, 0)
	labels := func(host, inst string) info.ContainerSpec {
		return info.ContainerSpec{Labels: map[string]string{LabelHost: host, LabelInstance: inst, LabelApp: "app", LabelTenant: "ten"}}
	}
	infos := map[string]info.ContainerInfo{
		"/":           {Stats: stats(t0, 7_500_000_000, 100, 1, 2)},
		"/docker/b":   {Spec: labels("h1", "i-b"), Stats: stats(t0, 2_000_000_000, 20, 5)},
		"/docker/a":   {Spec: labels("h1", "i-a"), Stats: stats(t0, 1_000_000_000, 10)},
		"/docker/a2":  {Spec: labels("h1", "i-a"), Stats: stats(t0.Add(time.Second), 3_000_000_000, 30)}, // fresher duplicate
		"/docker/f":   {Spec: labels("h2", "i-f"), Stats: stats(t0, 1, 1)},
		"/docker/ns":  {Spec: labels("h1", "i-nostats")},
		"/wharf/h1/x": {Stats: stats(t0, 500_000_000, 5)},
	}
	s := buildSample(t0.Add(2*time.Second), infos, newIdentifier("h1", map[string]string{"/wharf/h1/x": "i-x"}, nil))

	if s.Host.CPUSeconds != 7.5 || s.Host.MemoryUsed != 100 || s.Host.NetRxBytes != 3 || s.Host.NetTxBytes != 6 {
		t.Errorf("host %+v", s.Host)
	}
	want := []InstanceStats{
		{Instance: "i-a", App: "app", Tenant: "ten", Timestamp: t0.Add(time.Second), CPUSeconds: 3, MemoryWorkingSet: 30, MemoryUsage: 31, FsUsageBytes: 15},
		{Instance: "i-b", App: "app", Tenant: "ten", Timestamp: t0, CPUSeconds: 2, MemoryWorkingSet: 20, MemoryUsage: 21, NetRxBytes: 5, NetTxBytes: 10, FsUsageBytes: 15},
		{Instance: "i-x", Timestamp: t0, CPUSeconds: 0.5, MemoryWorkingSet: 5, MemoryUsage: 6, FsUsageBytes: 15},
	}
	if len(s.Instances) != len(want) {
		t.Fatalf("instances %+v, want %+v", s.Instances, want)
	}
	for i := range want {
		if s.Instances[i] != want[i] {
			t.Errorf("instance %d: %+v, want %+v", i, s.Instances[i], want[i])
		}
	}
}

func TestFilterInstances(t *testing.T) {
	t0 := time.Unix(1000, 0)
	spec := func(host, inst string) info.ContainerSpec {
		return info.ContainerSpec{Labels: map[string]string{LabelHost: host, LabelInstance: inst, LabelApp: "app", LabelTenant: "ten", "other": "x"}}
	}
	orig := spec("h1", "i-a")
	all := map[string]*info.ContainerInfo{
		"/":          {Stats: stats(t0, 1, 1)},
		"/docker/a":  {Spec: orig, Stats: stats(t0, 1, 1)},
		"/docker/a2": {Spec: spec("h1", "i-a"), Stats: stats(t0.Add(time.Second), 1, 1)},
		"/docker/f":  {Spec: spec("h2", "i-f"), Stats: stats(t0, 1, 1)},
		"/docker/n":  nil,
	}
	out := filterInstances(all, newIdentifier("h1", nil, nil))
	if len(out) != 1 || out["/docker/a2"] == nil {
		t.Fatalf("filtered %v, want only /docker/a2", keys(out))
	}
	got := promLabels(out["/docker/a2"])
	if want := map[string]string{"instance": "i-a", "app": "app", "tenant": "ten"}; len(got) != 3 || got["instance"] != want["instance"] || got["app"] != want["app"] || got["tenant"] != want["tenant"] {
		t.Errorf("labels %v, want %v", got, want)
	}
	if orig.Labels["other"] != "x" || all["/docker/a2"].Spec.Labels["other"] != "x" {
		t.Error("filterInstances changed cAdvisor's label maps")
	}
}

func TestGathererBeforeRun(t *testing.T) {
	c, err := New(Config{HostID: "h"})
	if err != nil {
		t.Fatal(err)
	}
	fams, err := c.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if len(f.GetName()) > 10 && f.GetName()[:10] == "container_" && f.GetName() != "container_scrape_error" {
			t.Errorf("series %s before Run", f.GetName())
		}
	}
	if s := c.Latest(); !s.Time.IsZero() || len(s.Instances) != 0 {
		t.Errorf("Latest before Run: %+v", s)
	}
}
