// Package vsphere drives VMware vSphere for Wharf through govmomi.
// Importing it registers the provider type "vsphere".
//
// The client is built from the account alone: the vCenter SDK endpoint
// (https://HOST/sdk), a username and password, and whether to skip TLS
// verification. A session that vCenter ends (NotAuthenticated) is
// replaced by logging in again.
//
// A machine is a clone of the template VM, named wharf-<machine id> and
// powered on by the clone itself. What Wharf needs to find it again lives
// in the VM's extraConfig (not custom attributes, which need a vCenter
// license and their field definitions created first): the keys
// wharf-cluster, wharf-pool and wharf-machine, any other tag K as
// wharf-tag.K, and what cloud-init's VMware datasource reads: the user
// data as guestinfo.userdata (base64) with
// guestinfo.userdata.encoding=base64, and guestinfo.metadata (base64 JSON,
// guestinfo.metadata.encoding=base64) whose instance-id is the machine id
// and local-hostname the VM's name (a clone of a template that once ran
// keeps no instance-id of its own: without one cloud-init would take the
// clone for the template and not run the user data). provider_id is the
// VM's managed object reference value (vm-123).
//
// vSphere has no client token: Create looks the machine up (by name and
// its wharf-machine key, over every VM vCenter holds) before every clone
// and retry, and a clone refused with DuplicateName (an earlier clone of
// the same machine still running) waits for that VM and adopts it.
//
// Template values are inventory paths, names or managed object
// references (datacenter, datastore, resource_pool, folder, network);
// without resource_pool the clone goes to the template's pool, without
// folder to the datacenter's VM folder, without datastore to the
// template's datastore, without network it keeps the template's.
package vsphere

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/wharf-platform/wharf/providers"
)

// Type is the provider type this package registers.
const Type = "vsphere"

// NamePrefix starts the name of every VM Wharf creates: the rest is the
// machine id.
const NamePrefix = "wharf-"

// ExtraConfig keys of a created VM besides the wharf-* tags.
const (
	KeyUserData         = "guestinfo.userdata"
	KeyUserDataEncoding = "guestinfo.userdata.encoding"
	KeyMetadata         = "guestinfo.metadata"
	KeyMetadataEncoding = "guestinfo.metadata.encoding"
	// TagKeyPrefix stores a tag whose key does not start with wharf-,
	// so that no tag can set a VMX option.
	TagKeyPrefix = "wharf-tag."
)

// maxName is vSphere's limit on a VM name.
const maxName = 80

// Retries, as for every provider: throttles, server faults and lost
// answers are tried again up to maxAttempts in all.
const (
	maxAttempts = 3
	baseWait    = 200 * time.Millisecond
	maxWait     = 5 * time.Second
)

// vmProps are the properties read of every VM.
var vmProps = []string{"name", "config.extraConfig", "runtime.powerState", "guest.ipAddress"}

func init() { providers.Register(Type, Open) }

// Provider is one vCenter account.
type Provider struct {
	url      *url.URL // without credentials
	user     *url.Userinfo
	insecure bool
	attempts int
	wait     func(attempt int) time.Duration

	mu     sync.Mutex
	client *vim25.Client // nil until a call logs in
	shapes map[string]providers.Resources
}

var _ providers.Provider = (*Provider)(nil)

// Open makes a Provider for an account of type vsphere. It does not call
// vCenter: the first call logs in.
func Open(acct providers.Account) (providers.Provider, error) {
	return open(acct)
}

func open(acct providers.Account) (*Provider, error) {
	if acct.Type != "" && acct.Type != Type {
		return nil, fmt.Errorf("vsphere: account %q has type %q", acct.Name, acct.Type)
	}
	c := acct.Credentials
	if c.Username == "" || c.Password == "" {
		return nil, fmt.Errorf("vsphere: account %q needs username and password", acct.Name)
	}
	if acct.Endpoint == "" {
		return nil, fmt.Errorf("vsphere: account %q needs an endpoint (https://HOST/sdk)", acct.Name)
	}
	u, err := url.Parse(acct.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("vsphere: account %q: endpoint must be an http or https URL without credentials", acct.Name)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	return &Provider{
		url: u, user: url.UserPassword(c.Username, c.Password), insecure: acct.Insecure,
		attempts: maxAttempts, wait: backoff, shapes: map[string]providers.Resources{},
	}, nil
}

func backoff(attempt int) time.Duration {
	return min(baseWait<<(attempt-1), maxWait)
}

// session returns the logged-in client, logging in first when there is
// none (or when fresh is set).
func (p *Provider) session(ctx context.Context, fresh bool) (*vim25.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && !fresh {
		return p.client, nil
	}
	sc := soap.NewClient(p.url, p.insecure)
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, mapError("connect to vCenter", err)
	}
	if err := session.NewManager(vc).Login(ctx, p.user); err != nil {
		return nil, mapError("log in to vCenter", err)
	}
	p.client = vc
	return vc, nil
}

// drop forgets a client whose session vCenter ended.
func (p *Provider) drop(vc *vim25.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == vc {
		p.client = nil
	}
}

// do runs fn with a session, logging in again when vCenter ended the
// session, and retrying what may pass by itself.
func (p *Provider) do(ctx context.Context, op string, fn func(*vim25.Client) error) error {
	relogged := false
	for attempt := 1; ; attempt++ {
		vc, err := p.session(ctx, false)
		if err == nil {
			if err = fn(vc); err == nil {
				return nil
			}
			err = mapError(op, err)
			var pe *providers.Error
			if errors.As(err, &pe) && pe.Code == "NotAuthenticated" && !relogged {
				// The session expired: log in again, once, without
				// counting it as an attempt.
				p.drop(vc)
				relogged = true
				attempt--
				continue
			}
		}
		kind := providers.KindOf(err)
		if attempt >= p.attempts || (kind != providers.KindThrottled && kind != providers.KindUnavailable) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(p.wait(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// Check logs in afresh and reads the time of vCenter.
func (p *Provider) Check(ctx context.Context) error {
	vc, err := p.session(ctx, true)
	if err != nil {
		return err
	}
	if _, err := methods.GetCurrentTime(ctx, vc); err != nil {
		return mapError("check credentials", err)
	}
	return nil
}

func badRequest(format string, args ...any) error {
	return &providers.Error{Kind: providers.KindBadRequest, Message: fmt.Sprintf(format, args...)}
}

// Create clones the template into the VM wharf-<machine id>, powered on,
// or adopts the one an earlier attempt made.
func (p *Provider) Create(ctx context.Context, req providers.CreateRequest) (providers.Machine, error) {
	name := NamePrefix + req.MachineID
	switch {
	case req.MachineID == "":
		return providers.Machine{}, badRequest("create: no machine id")
	case len(name) > maxName || !printableASCII(req.MachineID) || strings.ContainsAny(req.MachineID, "/\\%"):
		return providers.Machine{}, badRequest("create: machine id %q: a VM name takes at most %d printable characters, no / \\ or %%", req.MachineID, maxName)
	case req.Template.VMTemplate == "":
		return providers.Machine{}, badRequest("create: the template needs template (the VM to clone)")
	}
	tags := tagsOf(req)
	if tags[providers.TagMachine] != req.MachineID {
		return providers.Machine{}, badRequest("create: tag %s is %q, not the machine id %q", providers.TagMachine, tags[providers.TagMachine], req.MachineID)
	}
	extra, err := extraConfig(req.MachineID, name, tags, req.UserData)
	if err != nil {
		return providers.Machine{}, err
	}
	var m providers.Machine
	err = p.do(ctx, "clone "+name, func(vc *vim25.Client) error {
		// No client token: what an earlier attempt made (its answer
		// lost) is found by name and key before anything is made.
		found, err := p.find(ctx, vc, name, req.MachineID)
		if err != nil || found != nil {
			if found != nil {
				m = machineOf(*found)
			}
			return err
		}
		tmpl, folder, spec, err := p.cloneSpec(ctx, vc, req.Template)
		if err != nil {
			return err
		}
		spec.Config = &types.VirtualMachineConfigSpec{ExtraConfig: extra}
		task, err := tmpl.Clone(ctx, folder, name, *spec)
		if err != nil {
			return err
		}
		info, err := task.WaitForResult(ctx)
		if err != nil {
			if isFault(err, &types.DuplicateName{}) {
				// An earlier clone of this machine made it (or is making
				// it): wait for it to show and adopt it.
				return p.adopt(ctx, vc, name, req.MachineID, &m)
			}
			return err
		}
		if info == nil {
			// govmomi answers a task whose info it never saw with neither
			// (seen with dozens of clones under way): the clone may exist,
			// and the retry's lookup by name adopts it.
			return &providers.Error{Kind: providers.KindUnavailable, Message: "the clone task of " + name + " ended without a result"}
		}
		ref, ok := info.Result.(types.ManagedObjectReference)
		if !ok {
			return &providers.Error{Kind: providers.KindUnavailable, Message: fmt.Sprintf("the clone task answered %T, want a VM reference", info.Result)}
		}
		var vm mo.VirtualMachine
		if err := property.DefaultCollector(vc).RetrieveOne(ctx, ref, vmProps, &vm); err != nil {
			return err
		}
		m = machineOf(vm)
		return nil
	})
	if err != nil {
		return providers.Machine{}, err
	}
	return m, nil
}

// adopt waits until the VM of a machine shows (a clone still running)
// and takes it; DuplicateName for a VM that is not the machine's is an
// admin's problem (the name is taken).
func (p *Provider) adopt(ctx context.Context, vc *vim25.Client, name, machineID string, m *providers.Machine) error {
	for i := 0; i < 50; i++ {
		found, err := p.find(ctx, vc, name, machineID)
		if err != nil {
			return err
		}
		if found != nil {
			*m = machineOf(*found)
			return nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return &providers.Error{Kind: providers.KindBadRequest, Code: "DuplicateName", Message: "a VM named " + name + " exists and is not machine " + machineID}
}

// cloneSpec resolves the template's inventory and builds the clone spec
// (without its config).
func (p *Provider) cloneSpec(ctx context.Context, vc *vim25.Client, t providers.Template) (*object.VirtualMachine, *object.Folder, *types.VirtualMachineCloneSpec, error) {
	f, dc, err := finder(ctx, vc, t.Datacenter)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl, err := f.VirtualMachine(ctx, t.VMTemplate)
	if err != nil {
		return nil, nil, nil, inventoryError("template", t.VMTemplate, err)
	}
	var folder *object.Folder
	if t.Folder != "" {
		if folder, err = f.Folder(ctx, t.Folder); err != nil {
			return nil, nil, nil, inventoryError("folder", t.Folder, err)
		}
	} else {
		folders, err := dc.Folders(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		folder = folders.VmFolder
	}
	spec := &types.VirtualMachineCloneSpec{PowerOn: true}
	if t.ResourcePool != "" {
		pool, err := f.ResourcePool(ctx, t.ResourcePool)
		if err != nil {
			return nil, nil, nil, inventoryError("resource_pool", t.ResourcePool, err)
		}
		ref := pool.Reference()
		spec.Location.Pool = &ref
	} else {
		pool, err := tmpl.ResourcePool(ctx)
		if err != nil {
			return nil, nil, nil, badRequest("the template %s has no resource pool (a VM template): set resource_pool", t.VMTemplate)
		}
		ref := pool.Reference()
		spec.Location.Pool = &ref
	}
	if t.Datastore != "" {
		ds, err := f.Datastore(ctx, t.Datastore)
		if err != nil {
			return nil, nil, nil, inventoryError("datastore", t.Datastore, err)
		}
		ref := ds.Reference()
		spec.Location.Datastore = &ref
	}
	if t.Network != "" {
		change, err := networkChange(ctx, f, tmpl, t.Network)
		if err != nil {
			return nil, nil, nil, err
		}
		spec.Location.DeviceChange = change
	}
	return tmpl, folder, spec, nil
}

// networkChange points the template's first network card at network.
func networkChange(ctx context.Context, f *find.Finder, tmpl *object.VirtualMachine, network string) ([]types.BaseVirtualDeviceConfigSpec, error) {
	net, err := f.Network(ctx, network)
	if err != nil {
		return nil, inventoryError("network", network, err)
	}
	backing, err := net.EthernetCardBackingInfo(ctx)
	if err != nil {
		return nil, err
	}
	devices, err := tmpl.Device(ctx)
	if err != nil {
		return nil, err
	}
	nics := devices.SelectByType((*types.VirtualEthernetCard)(nil))
	if len(nics) == 0 {
		return nil, badRequest("the template has no network card to connect to network %s", network)
	}
	card, ok := nics[0].(types.BaseVirtualEthernetCard)
	if !ok {
		return nil, badRequest("the template's first network card is not an ethernet card")
	}
	card.GetVirtualEthernetCard().Backing = backing
	return []types.BaseVirtualDeviceConfigSpec{&types.VirtualDeviceConfigSpec{
		Operation: types.VirtualDeviceConfigSpecOperationEdit,
		Device:    nics[0],
	}}, nil
}

// finder is a finder in the datacenter (the only one when "").
func finder(ctx context.Context, vc *vim25.Client, datacenter string) (*find.Finder, *object.Datacenter, error) {
	f := find.NewFinder(vc, false)
	dc, err := f.DatacenterOrDefault(ctx, datacenter)
	if err != nil {
		return nil, nil, inventoryError("datacenter", datacenter, err)
	}
	f.SetDatacenter(dc)
	return f, dc, nil
}

// inventoryError: an inventory item that is not found (or not one) is a
// template an admin must fix.
func inventoryError(key, value string, err error) error {
	var nf *find.NotFoundError
	var multi *find.MultipleFoundError
	var def *find.DefaultNotFoundError
	var defMulti *find.DefaultMultipleFoundError
	switch {
	case errors.As(err, &nf), errors.As(err, &def):
		return &providers.Error{Kind: providers.KindBadRequest, Code: "NotFound", Message: fmt.Sprintf("template %s %q: not found", key, value), Err: err}
	case errors.As(err, &multi), errors.As(err, &defMulti):
		return &providers.Error{Kind: providers.KindBadRequest, Code: "MultipleFound", Message: fmt.Sprintf("template %s %q: several match, give a path or a managed object reference", key, value), Err: err}
	}
	return err
}

// vms reads every VM vCenter holds (the properties Wharf needs).
func vms(ctx context.Context, vc *vim25.Client) ([]mo.VirtualMachine, error) {
	v, err := view.NewManager(vc).CreateContainerView(ctx, vc.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer v.Destroy(context.WithoutCancel(ctx)) //nolint:errcheck // the view ends with the session anyway
	var out []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, vmProps, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// find looks up the VM of a machine: named name and keyed with its id.
func (p *Provider) find(ctx context.Context, vc *vim25.Client, name, machineID string) (*mo.VirtualMachine, error) {
	all, err := vms(ctx, vc)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == name && extraValue(all[i], providers.TagMachine) == machineID {
			return &all[i], nil
		}
	}
	return nil, nil
}

func vmRef(providerID string) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VirtualMachine", Value: providerID}
}

// Delete powers a VM off and destroys it; one vCenter no longer knows
// is gone already.
func (p *Provider) Delete(ctx context.Context, providerID string) error {
	if providerID == "" {
		return badRequest("delete: no VM id")
	}
	err := p.do(ctx, "delete VM "+providerID, func(vc *vim25.Client) error {
		vm := object.NewVirtualMachine(vc, vmRef(providerID))
		state, err := vm.PowerState(ctx)
		if err != nil {
			return err
		}
		if state != types.VirtualMachinePowerStatePoweredOff {
			task, err := vm.PowerOff(ctx)
			if err != nil {
				return err
			}
			if err := task.Wait(ctx); err != nil && !isFault(err, &types.InvalidPowerState{}) {
				return err
			}
		}
		task, err := vm.Destroy(ctx)
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	})
	if providers.KindOf(err) == providers.KindNotFound {
		return nil
	}
	return err
}

// Describe reports one VM from its power state.
func (p *Provider) Describe(ctx context.Context, providerID string) (providers.Machine, error) {
	if providerID == "" {
		return providers.Machine{}, badRequest("describe: no VM id")
	}
	var vm mo.VirtualMachine
	err := p.do(ctx, "describe VM "+providerID, func(vc *vim25.Client) error {
		return property.DefaultCollector(vc).RetrieveOne(ctx, vmRef(providerID), vmProps, &vm)
	})
	if err != nil {
		return providers.Machine{}, err
	}
	return machineOf(vm), nil
}

// List returns the VMs whose extraConfig says wharf-cluster=cluster.
func (p *Provider) List(ctx context.Context, cluster string) ([]providers.Machine, error) {
	var out []providers.Machine
	err := p.do(ctx, "list VMs of cluster "+cluster, func(vc *vim25.Client) error {
		all, err := vms(ctx, vc)
		if err != nil {
			return err
		}
		out = nil
		for _, vm := range all {
			if extraValue(vm, providers.TagCluster) == cluster {
				out = append(out, machineOf(vm))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b providers.Machine) int { return strings.Compare(a.MachineID, b.MachineID) })
	return out, nil
}

// Shape is the template VM's CPUs and memory (config.hardware), asked
// once per datacenter and template.
func (p *Provider) Shape(ctx context.Context, t providers.Template) (providers.Resources, bool, error) {
	if t.VMTemplate == "" {
		return providers.Resources{}, false, nil
	}
	key := t.Datacenter + "\x00" + t.VMTemplate
	p.mu.Lock()
	r, ok := p.shapes[key]
	p.mu.Unlock()
	if ok {
		return r, true, nil
	}
	err := p.do(ctx, "describe template "+t.VMTemplate, func(vc *vim25.Client) error {
		f, _, err := finder(ctx, vc, t.Datacenter)
		if err != nil {
			return err
		}
		tmpl, err := f.VirtualMachine(ctx, t.VMTemplate)
		if err != nil {
			return inventoryError("template", t.VMTemplate, err)
		}
		var vm mo.VirtualMachine
		if err := property.DefaultCollector(vc).RetrieveOne(ctx, tmpl.Reference(), []string{"config.hardware"}, &vm); err != nil {
			return err
		}
		if vm.Config == nil {
			return &providers.Error{Kind: providers.KindUnavailable, Message: "the template has no config yet"}
		}
		hw := vm.Config.Hardware
		r = providers.Resources{CPUMillis: int64(hw.NumCPU) * 1000, MemoryBytes: int64(hw.MemoryMB) << 20}
		return nil
	})
	if err != nil {
		return providers.Resources{}, false, err
	}
	p.mu.Lock()
	p.shapes[key] = r
	p.mu.Unlock()
	return r, true, nil
}

// tagsOf is the request's tags with the three wharf keys.
func tagsOf(req providers.CreateRequest) map[string]string {
	tags := maps.Clone(req.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	for k, v := range map[string]string{providers.TagCluster: req.Cluster, providers.TagPool: req.Pool, providers.TagMachine: req.MachineID} {
		if _, ok := tags[k]; !ok && v != "" {
			tags[k] = v
		}
	}
	return tags
}

// metadata is guestinfo.metadata as cloud-init's VMware datasource reads
// it (JSON is YAML too).
type metadata struct {
	InstanceID    string `json:"instance-id"`
	LocalHostname string `json:"local-hostname"`
}

// extraConfig is what a clone carries: the tags (wharf-* as they are,
// others below wharf-tag.), the metadata and the user data, base64.
func extraConfig(machineID, name string, tags map[string]string, userData []byte) ([]types.BaseOptionValue, error) {
	md, err := json.Marshal(metadata{InstanceID: machineID, LocalHostname: hostname(name)})
	if err != nil {
		return nil, err
	}
	var out []types.BaseOptionValue
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		key := k
		if !strings.HasPrefix(k, "wharf-") {
			key = TagKeyPrefix + k
		}
		out = append(out, &types.OptionValue{Key: key, Value: tags[k]})
	}
	out = append(out,
		&types.OptionValue{Key: KeyMetadata, Value: base64.StdEncoding.EncodeToString(md)},
		&types.OptionValue{Key: KeyMetadataEncoding, Value: "base64"})
	if len(userData) > 0 {
		out = append(out,
			&types.OptionValue{Key: KeyUserData, Value: base64.StdEncoding.EncodeToString(userData)},
			&types.OptionValue{Key: KeyUserDataEncoding, Value: "base64"})
	}
	return out, nil
}

// hostname is a VM name as a host name: lower case letters, digits and
// dashes, at most 63 of them, not starting or ending with a dash.
func hostname(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b[:min(len(b), 63)]), "-")
}

func extraValue(vm mo.VirtualMachine, key string) string {
	if vm.Config == nil {
		return ""
	}
	for _, ov := range vm.Config.ExtraConfig {
		if o := ov.GetOptionValue(); o.Key == key {
			s, _ := o.Value.(string)
			return s
		}
	}
	return ""
}

// machineOf maps a VM.
func machineOf(vm mo.VirtualMachine) providers.Machine {
	m := providers.Machine{ProviderID: vm.Self.Value, Tags: map[string]string{}, State: stateOf(vm.Runtime.PowerState)}
	if vm.Config != nil {
		for _, ov := range vm.Config.ExtraConfig {
			o := ov.GetOptionValue()
			s, _ := o.Value.(string)
			switch {
			case strings.HasPrefix(o.Key, TagKeyPrefix):
				m.Tags[strings.TrimPrefix(o.Key, TagKeyPrefix)] = s
			case strings.HasPrefix(o.Key, "wharf-"):
				m.Tags[o.Key] = s
			}
		}
	}
	m.MachineID = m.Tags[providers.TagMachine]
	if vm.Guest != nil && vm.Guest.IpAddress != "" {
		m.Addresses = []string{vm.Guest.IpAddress}
	}
	return m
}

func stateOf(s types.VirtualMachinePowerState) providers.State {
	switch s {
	case types.VirtualMachinePowerStatePoweredOn:
		return providers.StateRunning
	case types.VirtualMachinePowerStatePoweredOff, types.VirtualMachinePowerStateSuspended:
		return providers.StateStopped
	}
	return providers.StatePending // not yet known (a clone being made)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
