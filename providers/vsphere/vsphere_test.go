package vsphere

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
)

const (
	testUser     = "wharf@vsphere.local"
	testPassword = "wharf-vcenter-secret-never-shown"
)

// vcenter is govmomi's in-process vCenter simulator (over TLS, with one
// user) behind a cloudsim front that counts and breaks calls.
type vcenter struct {
	model  *simulator.Model
	sdk    *url.URL // the simulator's own SDK URL, with credentials
	front  *cloudsim.VSphereFront
	client *govmomi.Client // the test's own view of the simulator
}

func newVCenter(t testing.TB) *vcenter {
	t.Helper()
	m := simulator.VPX()
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	m.Service.TLS = new(tls.Config)
	m.Service.Listen = &url.URL{User: url.UserPassword(testUser, testPassword)}
	s := m.Service.NewServer()
	t.Cleanup(func() {
		s.Close()
		m.Remove()
	})
	sdk := *s.URL
	target := sdk
	target.User = nil
	front, err := cloudsim.NewVSphereFront(target.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(front.Close)
	c, err := govmomi.NewClient(context.Background(), &sdk, true)
	if err != nil {
		t.Fatal(err)
	}
	return &vcenter{model: m, sdk: &sdk, front: front, client: c}
}

// account reaches the simulator through the front (plain HTTP).
func (v *vcenter) account() providers.Account {
	return providers.Account{
		Name: "test", Type: Type, Endpoint: v.front.URL(),
		Credentials: providers.Credentials{Username: testUser, Password: testPassword},
	}
}

// vms lists the simulator's VMs as the booter sees them.
func (v *vcenter) vms(ctx context.Context) ([]cloudsim.VSphereVM, error) {
	cv, err := view.NewManager(v.client.Client).CreateContainerView(ctx, v.client.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer cv.Destroy(context.WithoutCancel(ctx)) //nolint:errcheck
	var list []mo.VirtualMachine
	if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, vmProps, &list); err != nil {
		return nil, err
	}
	var out []cloudsim.VSphereVM
	for _, vm := range list {
		ec := map[string]string{}
		if vm.Config != nil {
			for _, ov := range vm.Config.ExtraConfig {
				o := ov.GetOptionValue()
				s, _ := o.Value.(string)
				ec[o.Key] = s
			}
		}
		vv := cloudsim.VSphereVM{ID: vm.Self.Value, PoweredOn: vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn, ExtraConfig: ec}
		if vm.Guest != nil {
			vv.IP = vm.Guest.IpAddress
		}
		out = append(out, vv)
	}
	return out, nil
}

// named returns the simulator's VMs with a name.
func (v *vcenter) named(t testing.TB, name string) []cloudsim.VSphereVM {
	t.Helper()
	all, err := v.vms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []cloudsim.VSphereVM
	for _, vm := range all {
		var o mo.VirtualMachine
		if err := property.DefaultCollector(v.client.Client).RetrieveOne(context.Background(), vmRef(vm.ID), []string{"name"}, &o); err != nil {
			t.Fatal(err)
		}
		if o.Name == name {
			out = append(out, vm)
		}
	}
	return out
}

// openFast opens a provider that retries without waiting.
func openFast(t testing.TB, acct providers.Account) *Provider {
	t.Helper()
	p, err := open(acct)
	if err != nil {
		t.Fatal(err)
	}
	p.wait = func(int) time.Duration { return time.Millisecond }
	return p
}

func template() providers.Template {
	return providers.Template{
		VMTemplate: "DC0_H0_VM0", Datacenter: "DC0", Datastore: "LocalDS_0",
		ResourcePool: "/DC0/host/DC0_H0/Resources", Folder: "/DC0/vm", Network: "VM Network",
	}
}

func request(machine string) providers.CreateRequest {
	return providers.CreateRequest{
		MachineID: machine,
		Cluster:   "c1",
		Pool:      "vsphere-sh",
		Template:  template(),
		UserData:  []byte("#cloud-config\nruncmd:\n  - curl -fsS http://hub/install.sh | sh -s -- --token WJ1.x\n"),
		Tags:      map[string]string{providers.TagCluster: "c1", providers.TagPool: "vsphere-sh", providers.TagMachine: machine, "team": "infra"},
	}
}

func wantKind(t testing.TB, err error, kind providers.Kind, code string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want a *providers.Error", err, err)
	}
	if pe.Kind != kind || code != "" && pe.Code != code {
		t.Fatalf("kind %s code %s (%v), want %s %s", pe.Kind, pe.Code, err, kind, code)
	}
	if strings.Contains(err.Error(), testPassword) || strings.Contains(fmt.Sprintf("%+v %#v", pe, pe.Err), testPassword) {
		t.Fatalf("the error quotes the password: %v", err)
	}
}

func TestOpen(t *testing.T) {
	v := newVCenter(t)
	p, err := providers.Open(v.account())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("check through providers.Open: %v", err)
	}
	for name, mutate := range map[string]func(*providers.Account){
		"no password":     func(a *providers.Account) { a.Credentials.Password = "" },
		"no username":     func(a *providers.Account) { a.Credentials.Username = "" },
		"no endpoint":     func(a *providers.Account) { a.Endpoint = "" },
		"endpoint no URL": func(a *providers.Account) { a.Endpoint = "vcenter:443" },
		"credentials in":  func(a *providers.Account) { a.Endpoint = "https://u:p@vcenter/sdk" },
		"ftp endpoint":    func(a *providers.Account) { a.Endpoint = "ftp://vcenter/sdk" },
		"other type":      func(a *providers.Account) { a.Type = "openstack" },
	} {
		acct := v.account()
		mutate(&acct)
		if _, err := Open(acct); err == nil {
			t.Errorf("%s: opened", name)
		} else if strings.Contains(err.Error(), testPassword) {
			t.Errorf("%s: the error quotes the password: %v", name, err)
		}
	}
}

func TestCheckCredentialsAndTLS(t *testing.T) {
	v := newVCenter(t)
	ctx := context.Background()
	wrong := v.account()
	wrong.Credentials.Password = "not-the-" + testPassword[:5]
	wantKind(t, openFast(t, wrong).Check(ctx), providers.KindBadCredentials, "InvalidLogin")
	// Straight to the simulator's TLS endpoint: its certificate is
	// trusted only when the account says insecure.
	direct := v.account()
	u := *v.sdk
	u.User = nil
	direct.Endpoint = u.String()
	err := openFast(t, direct).Check(ctx)
	wantKind(t, err, providers.KindUnavailable, "")
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate error: %v", err)
	}
	direct.Insecure = true
	if err := openFast(t, direct).Check(ctx); err != nil {
		t.Fatalf("insecure: %v", err)
	}
}

func TestCreateIdempotentWithExtraConfig(t *testing.T) {
	v := newVCenter(t)
	p := openFast(t, v.account())
	ctx := context.Background()
	req := request("m-0001")
	m, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.ProviderID, "vm-") || again.ProviderID != m.ProviderID || m.MachineID != "m-0001" || m.State != providers.StateRunning {
		t.Fatalf("created %+v, then %+v", m, again)
	}
	vms := v.named(t, "wharf-m-0001")
	if len(vms) != 1 || vms[0].ID != m.ProviderID || !vms[0].PoweredOn {
		t.Fatalf("VMs named wharf-m-0001: %+v", vms)
	}
	ec := vms[0].ExtraConfig
	ud, err := base64.StdEncoding.DecodeString(ec[KeyUserData])
	if err != nil || string(ud) != string(req.UserData) || ec[KeyUserDataEncoding] != "base64" {
		t.Fatalf("user data %q (%v), encoding %q", ud, err, ec[KeyUserDataEncoding])
	}
	if ec["wharf-cluster"] != "c1" || ec["wharf-pool"] != "vsphere-sh" || ec["wharf-machine"] != "m-0001" || ec["wharf-tag.team"] != "infra" || ec["team"] != "" {
		t.Fatalf("extraConfig %v", ec)
	}
	wantTags := map[string]string{"wharf-cluster": "c1", "wharf-pool": "vsphere-sh", "wharf-machine": "m-0001", "team": "infra"}
	if fmt.Sprint(m.Tags) != fmt.Sprint(wantTags) || fmt.Sprint(again.Tags) != fmt.Sprint(wantTags) {
		t.Fatalf("tags %v, again %v, want %v", m.Tags, again.Tags, wantTags)
	}
	if n := v.front.Calls()["CloneVM_Task"]; n != 1 {
		t.Fatalf("%d clones, want 1", n)
	}
	// The template by managed object reference and without the
	// optional keys clones too (into the template's pool and folder).
	ref := v.vmByName(t, "DC0_H0_VM1")
	byRef := request("m-0002")
	byRef.Template = providers.Template{VMTemplate: ref.Value}
	if _, err := p.Create(ctx, byRef); err != nil {
		t.Fatalf("by moref: %v", err)
	}

	before := v.front.Calls()["CloneVM_Task"]
	for name, mutate := range map[string]func(*providers.CreateRequest){
		"no machine id":       func(r *providers.CreateRequest) { r.MachineID = "" },
		"machine id too long": func(r *providers.CreateRequest) { r.MachineID = strings.Repeat("m", 80) },
		"machine id slash":    func(r *providers.CreateRequest) { r.MachineID = "m/1" },
		"no template":         func(r *providers.CreateRequest) { r.Template.VMTemplate = "" },
		"other machine tag":   func(r *providers.CreateRequest) { r.Tags[providers.TagMachine] = "m-other" },
	} {
		r := request("m-bad")
		mutate(&r)
		if _, err := p.Create(ctx, r); providers.KindOf(err) != providers.KindBadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, mutate := range map[string]func(*providers.Template){
		"template":      func(t *providers.Template) { t.VMTemplate = "no-such-vm" },
		"datacenter":    func(t *providers.Template) { t.Datacenter = "DC9" },
		"resource pool": func(t *providers.Template) { t.ResourcePool = "/DC0/host/nowhere/Resources" },
		"datastore":     func(t *providers.Template) { t.Datastore = "NoDS" },
		"folder":        func(t *providers.Template) { t.Folder = "/DC0/vm/none" },
		"network":       func(t *providers.Template) { t.Network = "No Network" },
	} {
		r := request("m-unknown")
		mutate(&r.Template)
		_, err := p.Create(ctx, r)
		if providers.KindOf(err) != providers.KindBadRequest {
			t.Errorf("unknown %s: %v", name, err)
		}
	}
	if n := v.front.Calls()["CloneVM_Task"]; n != before {
		t.Fatalf("bad requests cloned: %d clones, want %d", n, before)
	}
}

func (v *vcenter) vmByName(t testing.TB, name string) types.ManagedObjectReference {
	t.Helper()
	cv, err := view.NewManager(v.client.Client).CreateContainerView(context.Background(), v.client.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := cv.Find(context.Background(), []string{"VirtualMachine"}, property.Match{"name": name})
	if err != nil || len(refs) == 0 {
		t.Fatalf("no VM %s: %v", name, err)
	}
	return refs[0]
}

// TestLostAnswerOneVM: the clone's answer is lost (the clone runs); the
// retry looks the machine up first, or meets DuplicateName and adopts
// the VM: one VM for the machine.
func TestLostAnswerOneVM(t *testing.T) {
	v := newVCenter(t)
	p := openFast(t, v.account())
	ctx := context.Background()
	v.front.LoseAnswers("CloneVM_Task", 1)
	m, err := p.Create(ctx, request("m-lost"))
	if err != nil {
		t.Fatalf("a lost answer within the attempts: %v", err)
	}
	vms := v.named(t, "wharf-m-lost")
	if len(vms) != 1 || vms[0].ID != m.ProviderID || m.MachineID != "m-lost" {
		t.Fatalf("VMs %+v, machine %+v: want one, adopted", vms, m)
	}

	// No attempt left: the create fails, the hub's retry adopts.
	p.attempts = 1
	v.front.LoseAnswers("CloneVM_Task", 1)
	_, err = p.Create(ctx, request("m-lost2"))
	wantKind(t, err, providers.KindUnavailable, "")
	p.attempts = maxAttempts
	m, err = p.Create(ctx, request("m-lost2"))
	if err != nil {
		t.Fatal(err)
	}
	if vms := v.named(t, "wharf-m-lost2"); len(vms) != 1 || vms[0].ID != m.ProviderID {
		t.Fatalf("VMs %+v after a lost answer and a retry, want one: %s", vms, m.ProviderID)
	}
}

func TestDescribeListDelete(t *testing.T) {
	v := newVCenter(t)
	p := openFast(t, v.account())
	ctx := context.Background()
	var ours []string
	for i := range 4 {
		req := request(fmt.Sprintf("m-%02d", i))
		if i == 2 {
			req.Cluster, req.Tags[providers.TagCluster] = "other", "other"
		}
		m, err := p.Create(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if req.Cluster == "c1" {
			ours = append(ours, m.ProviderID)
		}
	}
	list, err := p.List(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list {
		got = append(got, m.ProviderID)
		if m.Tags[providers.TagCluster] != "c1" || m.State != providers.StateRunning {
			t.Fatalf("listed %+v", m)
		}
	}
	if !slices.Equal(got, ours) {
		t.Fatalf("listed %v, want %v", got, ours)
	}
	id := ours[0]
	m, err := p.Describe(ctx, id)
	if err != nil || m.MachineID != "m-00" || m.State != providers.StateRunning {
		t.Fatalf("describe: %+v %v", m, err)
	}
	if err := p.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = p.Describe(ctx, id)
	wantKind(t, err, providers.KindNotFound, "ManagedObjectNotFound")
	if err := p.Delete(ctx, id); err != nil {
		t.Fatalf("delete of a deleted VM: %v", err)
	}
	if err := p.Delete(ctx, "vm-424242"); err != nil {
		t.Fatalf("delete of an unknown VM: %v", err)
	}
	if list, err = p.List(ctx, "c1"); err != nil || len(list) != 2 {
		t.Fatalf("list after a delete: %v %v", list, err)
	}
	if list, err = p.List(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Fatalf("list of another cluster: %v %v", list, err)
	}
	// A VM powered off (by an admin) is stopped.
	vm := object.NewVirtualMachine(v.client.Client, vmRef(ours[1]))
	task, err := vm.PowerOff(ctx)
	if err != nil || task.Wait(ctx) != nil {
		t.Fatal(err)
	}
	if m, err := p.Describe(ctx, ours[1]); err != nil || m.State != providers.StateStopped {
		t.Fatalf("powered off: %+v %v", m, err)
	}
	if err := p.Delete(ctx, ours[1]); err != nil {
		t.Fatalf("delete of a powered-off VM: %v", err)
	}
}

func TestShape(t *testing.T) {
	v := newVCenter(t)
	p := openFast(t, v.account())
	ctx := context.Background()
	ref := v.vmByName(t, "DC0_H0_VM0")
	var tmpl mo.VirtualMachine
	if err := property.DefaultCollector(v.client.Client).RetrieveOne(ctx, ref, []string{"config.hardware"}, &tmpl); err != nil {
		t.Fatal(err)
	}
	want := providers.Resources{CPUMillis: int64(tmpl.Config.Hardware.NumCPU) * 1000, MemoryBytes: int64(tmpl.Config.Hardware.MemoryMB) << 20}
	for range 3 {
		r, ok, err := p.Shape(ctx, template())
		if err != nil || !ok || r != want || r.CPUMillis == 0 {
			t.Fatalf("shape %+v %v %v, want %+v", r, ok, err, want)
		}
	}
	if n := v.front.Calls()["RetrievePropertiesEx"]; n == 0 {
		t.Fatal("no calls seen")
	}
	calls := v.front.Calls()
	if _, _, err := p.Shape(ctx, template()); err != nil || fmt.Sprint(calls) != fmt.Sprint(v.front.Calls()) {
		t.Fatalf("a cached shape called vCenter: %v → %v", calls, v.front.Calls())
	}
	if _, ok, err := p.Shape(ctx, providers.Template{}); ok || err != nil {
		t.Fatalf("no template: %v %v", ok, err)
	}
	_, ok, err := p.Shape(ctx, providers.Template{VMTemplate: "no-such-vm"})
	if ok {
		t.Fatal("an unknown template has a shape")
	}
	wantKind(t, err, providers.KindBadRequest, "NotFound")
}

// TestFaultKinds: faults vCenter (or a proxy before it) answers map to
// the kinds the hub branches on.
func TestFaultKinds(t *testing.T) {
	v := newVCenter(t)
	p := openFast(t, v.account())
	ctx := context.Background()
	if err := p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		fault  string
		status int
		kind   providers.Kind
		code   string
	}{
		{"InsufficientResourcesFault", 0, providers.KindQuota, "InsufficientResourcesFault"},
		{"NoDiskSpace", 0, providers.KindQuota, "NoDiskSpace"},
		{"NoPermission", 0, providers.KindBadCredentials, "NoPermission"},
		{"InvalidArgument", 0, providers.KindBadRequest, "InvalidArgument"},
		{"SystemError", 0, providers.KindUnavailable, "SystemError"},
		{"TaskInProgress", 0, providers.KindUnavailable, "TaskInProgress"},
		{"", 429, providers.KindThrottled, "429"},
		{"", 503, providers.KindUnavailable, "503"},
	} {
		t.Run(tc.fault+fmt.Sprint(tc.status), func(t *testing.T) {
			v.front.ClearFaults()
			v.front.Inject(cloudsim.VSphereFault{Method: "CloneVM_Task", Fault: tc.fault, Status: tc.status, Message: "simulated " + tc.fault})
			_, err := p.Create(ctx, request("m-fault"))
			wantKind(t, err, tc.kind, tc.code)
		})
	}
	v.front.ClearFaults()
	if vms := v.named(t, "wharf-m-fault"); len(vms) != 0 {
		t.Fatalf("refused clones made %d VMs", len(vms))
	}
	// Fewer throttles than attempts pass.
	v.front.Inject(cloudsim.VSphereFault{Method: "CloneVM_Task", Status: 429, Times: 2})
	if _, err := p.Create(ctx, request("m-throttled")); err != nil {
		t.Fatalf("two throttles within three attempts: %v", err)
	}
	// A session vCenter ended is replaced by logging in again.
	logins := v.front.Calls()["Login"]
	v.front.Inject(cloudsim.VSphereFault{Method: "RetrievePropertiesEx", Fault: "NotAuthenticated", Times: 1})
	if _, err := p.List(ctx, "c1"); err != nil {
		t.Fatalf("list after the session ended: %v", err)
	}
	if n := v.front.Calls()["Login"]; n != logins+1 {
		t.Fatalf("%d logins, want %d", n, logins+1)
	}
}

func TestTimeoutIsUnavailable(t *testing.T) {
	v := newVCenter(t)
	p := openFast(t, v.account())
	v.front.SetLatency(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	wantKind(t, p.Check(ctx), providers.KindUnavailable, "")
	v.front.SetLatency(0)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := p.Check(ctx); !errors.Is(err, context.Canceled) || providers.KindOf(err) != "" {
		t.Fatalf("a cancelled call: %v (kind %q)", err, providers.KindOf(err))
	}
}

func TestStateMapping(t *testing.T) {
	for in, want := range map[types.VirtualMachinePowerState]providers.State{
		types.VirtualMachinePowerStatePoweredOn:  providers.StateRunning,
		types.VirtualMachinePowerStatePoweredOff: providers.StateStopped,
		types.VirtualMachinePowerStateSuspended:  providers.StateStopped,
		"":                                       providers.StatePending,
	} {
		if got := stateOf(in); got != want {
			t.Errorf("%q → %s, want %s", in, got, want)
		}
	}
}
