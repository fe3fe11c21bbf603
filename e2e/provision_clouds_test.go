package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/providers"

	// The real SDKs against the simulators, as the wharf binary links them:
	// the hub opens accounts of every type through providers.Open.
	_ "github.com/wharf-platform/wharf/providers/aliyun"
	_ "github.com/wharf-platform/wharf/providers/aws"
	_ "github.com/wharf-platform/wharf/providers/openstack"
	_ "github.com/wharf-platform/wharf/providers/vsphere"
)

// simOptions starts a cloud simulator for the provisioning tests.
type simOptions struct {
	// Boot runs a machine's user data (a netboot booter's Boot); nil boots
	// machines to nothing, so that no agent ever enrolls.
	Boot cloudsim.BootFunc
	// BootDelay is how long a machine takes to boot.
	BootDelay time.Duration
}

// simMachine is what a cloud holds of one machine, in the terms the tests
// compare with the hub's machines.
type simMachine struct {
	ID       string // the provider id (instance id, server id, VM moref)
	Tags     map[string]string
	UserData []byte
	// Live is false once the machine is gone or on its way out
	// (terminated, shutting down, stopping, deleted).
	Live  bool
	State string
}

// provSim is one cloud's simulator as the provisioning tests drive it: the
// same steps for every cloud, each in its own words.
type provSim struct {
	cloud string // the provider type
	// account is the request of a provider account on the simulator, with
	// the right credentials or a wrong secret.
	account func(name string, good bool) apitypes.ProviderRequest
	// wrongSecret is what the cloud answers a wrong secret with.
	wrongSecret string
	// template is a pool template of 2-CPU machines; bad names a machine
	// kind (instance type, flavor, template VM) the cloud does not have,
	// badPart.
	template func(bad bool) json.RawMessage
	badPart  string
	// list is every machine the cloud lists now.
	list func() []simMachine
	// loseCreates makes the cloud carry out the next n creates and lose
	// their answers.
	loseCreates func(n int)
	// quota lets the account have at most one live machine (on), or
	// lifts the limit; quotaWords are the cloud's words for a refusal.
	quota      func(on bool)
	quotaWords string
	// throttle refuses the next n creates as too many requests.
	throttle func(n int)
	// revoke takes from the account's key the right to create machines
	// (the cloud's own refusal, until clearFaults); revokedWords are its
	// words.
	revoke       func()
	revokedWords string
	clearFaults  func()
	// creates counts the create calls so far.
	creates func() int
	// calls counts every call, by action or method.
	calls func() map[string]int
	// inspect checks what is particular to the cloud in a ready
	// machine's cloud side (resolved template names, its client token).
	inspect func(m apitypes.Machine, sm simMachine) error

	// close stops the simulator and ends every machine's boot (also done
	// in Cleanup; closing twice is fine).
	close func()

	mu       sync.Mutex
	launched map[string]map[string]bool // wharf-machine tag -> provider ids ever seen
}

// provClouds are the clouds whose provisioned pools the tests prove end to
// end, each with the constructor of its simulator.
var provClouds = []struct {
	name  string
	start func(t testing.TB, o simOptions) *provSim
}{
	{"aws", startEC2},
	{"aliyun", startECS},
	{"vsphere", startVSphere},
	{"openstack", startOpenStack},
}

// newProvSim fills in what every cloud shares and records launches: from
// every boot, and from a listing every 100 ms (a second machine for one
// machine id lives at least its boot delay, so the listing sees it).
func newProvSim(t testing.TB, s *provSim) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, m := range s.list() {
				s.saw(m.ID, m.Tags[providers.TagMachine])
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(done); wg.Wait() })
}

// recordBoots wraps a BootFunc so that every boot is recorded as a launch;
// nil boots to nothing.
func (s *provSim) recordBoots(boot cloudsim.BootFunc) cloudsim.BootFunc {
	return func(ctx context.Context, inst cloudsim.Instance) error {
		s.saw(inst.ID, inst.Tags[providers.TagMachine])
		if boot == nil {
			return nil
		}
		return boot(ctx, inst)
	}
}

func (s *provSim) saw(id, machine string) {
	if machine == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.launched == nil {
		s.launched = map[string]map[string]bool{}
	}
	if s.launched[machine] == nil {
		s.launched[machine] = map[string]bool{}
	}
	s.launched[machine][id] = true
}

// duplicates names the machines the cloud launched more than once.
func (s *provSim) duplicates() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for m, ids := range s.launched {
		if len(ids) > 1 {
			out[m] = len(ids)
		}
	}
	return out
}

// live is the cloud's live machines by provider id.
func (s *provSim) live() map[string]simMachine {
	out := map[string]simMachine{}
	for _, m := range s.list() {
		if m.Live {
			out[m.ID] = m
		}
	}
	return out
}

// jsonObject encodes a flat JSON object (credentials, templates).
func jsonObject(kv map[string]string) json.RawMessage {
	b, _ := json.Marshal(kv)
	return b
}

func startEC2(t testing.TB, o simOptions) *provSim {
	s, _ := startEC2Sim(t, o)
	return s
}

// startEC2Sim is startEC2 that also returns the simulator, for tests of
// what only EC2's simulator is asked here (its machines made by hand).
func startEC2Sim(t testing.TB, o simOptions) (*provSim, *cloudsim.EC2) {
	s := &provSim{cloud: "aws"}
	sim, err := cloudsim.NewEC2(cloudsim.EC2Options{Boot: s.recordBoots(o.Boot), BootDelay: o.BootDelay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	id, secret := sim.Key()
	s.account = func(name string, good bool) apitypes.ProviderRequest {
		key := secret
		if !good {
			key = "not-the-secret"
		}
		return apitypes.ProviderRequest{Name: name, Type: "aws", Region: sim.Region(), Endpoint: sim.URL(),
			Credentials: jsonObject(map[string]string{"access_key_id": id, "secret_access_key": key})}
	}
	s.wrongSecret = "SignatureDoesNotMatch"
	s.badPart = "t9.huge"
	s.template = func(bad bool) json.RawMessage {
		typ := "t3.small"
		if bad {
			typ = s.badPart
		}
		return jsonObject(map[string]string{"instance_type": typ, "image": "ami-0123456789abcdef0"})
	}
	s.list = func() []simMachine {
		var out []simMachine
		for _, in := range sim.Instances() {
			out = append(out, simMachine{ID: in.ID, Tags: in.Tags, UserData: in.UserData, State: in.State,
				Live: in.State == cloudsim.StatePending || in.State == cloudsim.StateRunning})
		}
		return out
	}
	s.loseCreates = func(n int) { sim.LoseAnswers("RunInstances", n) }
	s.quota = func(on bool) { sim.SetMaxInstances(map[bool]int{true: 1}[on]) }
	s.quotaWords = "InstanceLimitExceeded"
	s.throttle = func(n int) { sim.Throttle("RunInstances", n) }
	s.revoke = func() {
		sim.Inject(cloudsim.Fault{Action: "RunInstances", Code: "UnauthorizedOperation", Status: 403,
			Message: "You are not authorized to perform this operation."})
	}
	s.revokedWords = "UnauthorizedOperation"
	s.clearFaults = sim.ClearFaults
	s.close = sim.Close
	s.creates = func() int { return sim.Calls()["RunInstances"] }
	s.calls = sim.Calls
	s.inspect = func(m apitypes.Machine, _ simMachine) error {
		in, ok := sim.Instance(m.ProviderID)
		if !ok || in.ClientToken == "" || in.InstanceType != "t3.small" {
			return fmt.Errorf("machine %s's instance %+v: want a client token and type t3.small", m.ID, in)
		}
		return nil
	}
	newProvSim(t, s)
	return s, sim
}

func startECS(t testing.TB, o simOptions) *provSim {
	s := &provSim{cloud: "aliyun"}
	sim, err := cloudsim.NewECS(cloudsim.ECSOptions{Boot: s.recordBoots(o.Boot), BootDelay: o.BootDelay, StopDelay: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	id, secret := sim.Key()
	s.account = func(name string, good bool) apitypes.ProviderRequest {
		key := secret
		if !good {
			key = "not-the-secret"
		}
		return apitypes.ProviderRequest{Name: name, Type: "aliyun", Region: sim.Region(), Endpoint: sim.URL(),
			Credentials: jsonObject(map[string]string{"access_key_id": id, "access_key_secret": key})}
	}
	s.wrongSecret = "SignatureDoesNotMatch"
	s.badPart = "ecs.x9.huge"
	// The template by names, as an admin writes it: the provider resolves
	// them to ids.
	s.template = func(bad bool) json.RawMessage {
		typ := "ecs.g6.large"
		if bad {
			typ = s.badPart
		}
		return jsonObject(map[string]string{"instance_type": typ, "image": "Ubuntu 22.04 64 bit", "vswitch": "wharf-agents", "security_group": "wharf-agents"})
	}
	s.list = func() []simMachine {
		var out []simMachine
		for _, in := range sim.Instances() {
			out = append(out, simMachine{ID: in.ID, Tags: in.Tags, UserData: in.UserData, State: in.Status,
				Live: in.Status != cloudsim.ECSStopping && in.Status != cloudsim.ECSStopped})
		}
		return out
	}
	s.loseCreates = func(n int) { sim.LoseAnswers("RunInstances", n) }
	s.quota = func(on bool) { sim.SetMaxInstances(map[bool]int{true: 1}[on]) }
	s.quotaWords = "QuotaExceed.ElasticQuota"
	s.throttle = func(n int) { sim.Throttle("RunInstances", n) }
	s.revoke = func() {
		sim.Inject(cloudsim.Fault{Action: "RunInstances", Code: "Forbidden.RAM", Status: 403,
			Message: "User not authorized to operate on the specified resource, or this API doesn't support RAM."})
	}
	s.revokedWords = "Forbidden.RAM"
	s.clearFaults = sim.ClearFaults
	s.close = sim.Close
	s.creates = func() int { return sim.Calls()["RunInstances"] }
	s.calls = sim.Calls
	s.inspect = func(m apitypes.Machine, _ simMachine) error {
		in, ok := sim.Instance(m.ProviderID)
		if !ok || in.ClientToken != m.ID || in.VSwitchID != "vsw-bp1wharf0000000000001" || in.SecurityGroupID != "sg-bp1wharf0000000000001" ||
			in.ImageID != "ubuntu_22_04_x64_20G_alibase_20240130.vhd" || in.InstanceType != "ecs.g6.large" {
			return fmt.Errorf("machine %s's instance %+v: want client token %s and the template's names resolved", m.ID, in, m.ID)
		}
		return nil
	}
	newProvSim(t, s)
	return s
}

func startOpenStack(t testing.TB, o simOptions) *provSim {
	s := &provSim{cloud: "openstack"}
	sim, err := cloudsim.NewOpenStack(cloudsim.OpenStackOptions{Boot: s.recordBoots(o.Boot), BootDelay: o.BootDelay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	u := sim.User()
	s.account = func(name string, good bool) apitypes.ProviderRequest {
		pw := u.Password
		if !good {
			pw = "not-the-password"
		}
		return apitypes.ProviderRequest{Name: name, Type: "openstack", Region: sim.Region(), Endpoint: sim.URL(),
			Credentials: jsonObject(map[string]string{"username": u.Name, "password": pw, "project": u.Project, "domain": u.Domain})}
	}
	s.wrongSecret = "requires authentication"
	s.badPart = "m9.huge"
	s.template = func(bad bool) json.RawMessage {
		flavor := "m1.medium"
		if bad {
			flavor = s.badPart
		}
		return jsonObject(map[string]string{"flavor": flavor, "image": "ubuntu-24.04", "network": "private"})
	}
	s.list = func() []simMachine {
		var out []simMachine
		for _, sv := range sim.Servers() {
			out = append(out, simMachine{ID: sv.ID, Tags: sv.Metadata, UserData: sv.UserData, State: sv.Status,
				Live: sv.Status != cloudsim.NovaDeleted})
		}
		return out
	}
	s.loseCreates = func(n int) { sim.LoseAnswers("CreateServer", n) }
	s.quota = func(on bool) { sim.SetMaxInstances(map[bool]int{true: 1}[on]) }
	s.quotaWords = "Quota exceeded"
	s.throttle = func(n int) { sim.Throttle("CreateServer", n, 1) }
	s.revoke = func() {
		sim.Inject(cloudsim.NovaFault{Call: "CreateServer", Status: 403, Message: "Policy doesn't allow os_compute_api:servers:create to be performed."})
	}
	s.revokedWords = "os_compute_api:servers:create"
	s.clearFaults = sim.ClearFaults
	s.close = sim.Close
	s.creates = func() int { return sim.Calls()["CreateServer"] }
	s.calls = sim.Calls
	s.inspect = func(m apitypes.Machine, _ simMachine) error {
		sv, ok := sim.Server(m.ProviderID)
		if !ok || sv.Name != "wharf-"+m.ID || sv.FlavorID != "3" {
			return fmt.Errorf("machine %s's server %+v: want name wharf-%s and flavor m1.medium (3)", m.ID, sv, m.ID)
		}
		return nil
	}
	newProvSim(t, s)
	return s
}

const (
	vcUser     = "wharf@vsphere.local"
	vcPassword = "vc-secret"
	vcTemplate = "DC0_H0_VM0"
)

// startVSphere runs govmomi's vCenter simulator (a process of its own:
// vcsimURL) behind cloudsim's fault-injecting front (which the hub talks
// to), with a booter that boots its VMs as they power on. The template VM
// is given 2 CPUs and 2 GiB, the shape of the other clouds' machines.
func startVSphere(t testing.TB, o simOptions) *provSim {
	s := &provSim{cloud: "vsphere"}
	srvURL := vcsimURL(t)
	ctx := context.Background()
	login := *srvURL
	login.User = url.UserPassword(vcUser, vcPassword)
	vc, err := govmomi.NewClient(ctx, &login, true)
	if err != nil {
		t.Fatal(err)
	}
	front, err := cloudsim.NewVSphereFront(srvURL.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(front.Close)
	f := find.NewFinder(vc.Client, true)
	dc, err := f.Datacenter(ctx, "DC0")
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	tmpl, err := f.VirtualMachine(ctx, vcTemplate)
	if err != nil {
		t.Fatal(err)
	}
	task, err := tmpl.Reconfigure(ctx, types.VirtualMachineConfigSpec{NumCPUs: 2, MemoryMB: 2048})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatalf("reconfigure the template VM: %v", err)
	}
	vms := func(ctx context.Context) ([]cloudsim.VSphereVM, error) {
		cv, err := view.NewManager(vc.Client).CreateContainerView(ctx, vc.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
		if err != nil {
			return nil, err
		}
		defer cv.Destroy(context.WithoutCancel(ctx)) //nolint:errcheck
		var all []mo.VirtualMachine
		if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"config.extraConfig", "runtime.powerState"}, &all); err != nil {
			return nil, err
		}
		var out []cloudsim.VSphereVM
		for _, vm := range all {
			ec := map[string]string{}
			if vm.Config != nil {
				for _, ov := range vm.Config.ExtraConfig {
					opt := ov.GetOptionValue()
					v, _ := opt.Value.(string)
					ec[opt.Key] = v
				}
			}
			out = append(out, cloudsim.VSphereVM{ID: vm.Self.Value, PoweredOn: vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn, ExtraConfig: ec})
		}
		return out, nil
	}
	// vCenter has no boot delay of its own: the guest takes it after
	// power-on.
	boot := s.recordBoots(o.Boot)
	delayed := func(ctx context.Context, inst cloudsim.Instance) error {
		select {
		case <-time.After(o.BootDelay):
		case <-ctx.Done():
			return nil
		}
		return boot(ctx, inst)
	}
	watch, err := cloudsim.NewVSphereBooter(cloudsim.VSphereBootOptions{List: vms, Boot: delayed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.Close)

	endpoint := front.URL()
	s.account = func(name string, good bool) apitypes.ProviderRequest {
		pw := vcPassword
		if !good {
			pw = "not-the-password"
		}
		return apitypes.ProviderRequest{Name: name, Type: "vsphere", Endpoint: endpoint, Insecure: true,
			Credentials: jsonObject(map[string]string{"username": vcUser, "password": pw})}
	}
	s.wrongSecret = "InvalidLogin"
	s.badPart = "no-such-template"
	s.template = func(bad bool) json.RawMessage {
		vm := vcTemplate
		if bad {
			vm = s.badPart
		}
		return jsonObject(map[string]string{"template": vm, "datacenter": "DC0", "resource_pool": "/DC0/host/DC0_H0/Resources"})
	}
	s.list = func() []simMachine {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		all, err := vms(lctx)
		if err != nil {
			return nil
		}
		var out []simMachine
		for _, vm := range all {
			if vm.ExtraConfig[providers.TagMachine] == "" {
				continue // the simulator's own VMs, the template among them
			}
			tags := map[string]string{}
			for k, v := range vm.ExtraConfig {
				if k == providers.TagCluster || k == providers.TagPool || k == providers.TagMachine {
					tags[k] = v
				}
			}
			ud, _, _ := cloudsim.DecodeGuestinfoUserData(vm.ExtraConfig)
			state := "poweredOff"
			if vm.PoweredOn {
				state = "poweredOn"
			}
			out = append(out, simMachine{ID: vm.ID, Tags: tags, UserData: ud, State: state, Live: true})
		}
		return out
	}
	s.loseCreates = func(n int) { front.LoseAnswers("CloneVM_Task", n) }
	// vCenter has no count of machines: a full resource pool refuses
	// every clone.
	s.quota = func(on bool) {
		if !on {
			front.ClearFaults()
			return
		}
		front.Inject(cloudsim.VSphereFault{Method: "CloneVM_Task", Fault: "InsufficientResourcesFault",
			Message: "Insufficient resources to satisfy configured failover level for vSphere HA."})
	}
	s.quotaWords = "InsufficientResourcesFault"
	s.throttle = func(n int) { front.Inject(cloudsim.VSphereFault{Method: "CloneVM_Task", Status: 429, Times: n}) }
	s.revoke = func() {
		front.Inject(cloudsim.VSphereFault{Method: "CloneVM_Task", Fault: "NoPermission", Message: "Permission to perform this operation was denied."})
	}
	s.revokedWords = "NoPermission"
	s.clearFaults = front.ClearFaults
	s.close = watch.Close
	s.creates = func() int { return front.Calls()["CloneVM_Task"] }
	s.calls = front.Calls
	s.inspect = func(m apitypes.Machine, sm simMachine) error {
		if sm.State != "poweredOn" {
			return fmt.Errorf("machine %s's VM %s is %s", m.ID, sm.ID, sm.State)
		}
		return nil
	}
	newProvSim(t, s)
	return s
}

// checkSimMachine checks what every cloud's machine carries: the three
// tags and the cloud-config user data.
func checkSimMachine(m apitypes.Machine, sm simMachine) error {
	want := map[string]string{providers.TagMachine: m.ID, providers.TagPool: m.Pool}
	got := maps.Clone(sm.Tags)
	if got[providers.TagCluster] == "" {
		return fmt.Errorf("machine %s's %s carries no %s tag: %v", m.ID, sm.ID, providers.TagCluster, sm.Tags)
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("machine %s's %s has tag %s=%q, want %q", m.ID, sm.ID, k, got[k], v)
		}
	}
	if !bytes.HasPrefix(sm.UserData, []byte("#cloud-config")) {
		return fmt.Errorf("machine %s's %s has user data %q, want a #cloud-config", m.ID, sm.ID, sm.UserData)
	}
	return nil
}
