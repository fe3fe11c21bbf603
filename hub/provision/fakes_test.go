package provision

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/providers"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeStore is the replicated state in memory, with the FSM's rules for
// machines: guarded changes, join tokens bound to machines, enrolment.
type fakeStore struct {
	now func() time.Time
	key []byte

	mu       sync.Mutex
	index    uint64
	ca       string
	accounts map[string]*state.ProviderAccount
	pools    map[string]*state.Pool
	machines map[string]*state.Machine
	hosts    map[string]*state.Host
	tokens   map[string]*state.JoinToken
	pending  map[string][]Demand
	idle     map[string]time.Time
	events   []state.Event
	clouds   map[string]*fakeCloud // by account name
	openErr  error
	// changed, when set, is called after every write, as the hub calls
	// Wake on Raft changes.
	changed func()
	// hostCPUs and hostMemMB are what an enrolling host reports.
	hostCPUs  int
	hostMemMB int
}

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{now: now, key: []byte("data key"), ca: "sha256:" + strings.Repeat("ab", 32),
		accounts: map[string]*state.ProviderAccount{}, pools: map[string]*state.Pool{},
		machines: map[string]*state.Machine{}, hosts: map[string]*state.Host{}, tokens: map[string]*state.JoinToken{},
		pending: map[string][]Demand{}, idle: map[string]time.Time{}, clouds: map[string]*fakeCloud{},
		hostCPUs: 4, hostMemMB: 8192}
}

func (s *fakeStore) bump(m *state.Meta, create bool) {
	if s.changed != nil {
		defer s.changed()
	}
	s.index++
	if create {
		m.CreateIndex = s.index
	}
	m.ModifyIndex = s.index
}

func (s *fakeStore) addAccount(name string, c *fakeCloud) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &state.ProviderAccount{Name: name, Type: "aws", Region: "r1"}
	s.bump(&a.Meta, true)
	s.accounts[name] = a
	s.clouds[name] = c
}

// touchAccount is an admin's change of an account (new credentials).
func (s *fakeStore) touchAccount(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bump(&s.accounts[name].Meta, false)
}

func (s *fakeStore) setPool(name, acct string, minHosts, maxHosts int, scaleDownAfter, bootTimeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pools[name]
	if p == nil {
		p = &state.Pool{Name: name}
		s.bump(&p.Meta, true)
		s.pools[name] = p
	}
	p.Provision = &state.Provision{Provider: acct, Template: json.RawMessage(`{"instance_type":"m5.large","image":"ami-1"}`),
		MinHosts: minHosts, MaxHosts: maxHosts, ScaleDownAfter: state.Duration(scaleDownAfter), BootTimeout: state.Duration(bootTimeout)}
	s.bump(&p.Meta, false)
}

func (s *fakeStore) setPending(pool string, d ...Demand) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[pool] = d
}

// setAlloc is the scheduler placing (or removing) instances on a host.
func (s *fakeStore) setAlloc(hostID string, cpu, memMB int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hosts[hostID]
	h.AllocCPU, h.AllocMemory = cpu, memMB
	if cpu == 0 && memMB == 0 {
		s.idle[hostID] = s.now()
		if h.State == state.HostDraining { // the planner's "no instance left"
			h.State = state.HostDrained
		}
	} else {
		delete(s.idle, hostID)
	}
	s.bump(&h.Meta, false)
}

func (s *fakeStore) View(ctx context.Context) (*View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &View{CAFingerprint: s.ca, Pending: map[string][]Demand{}, IdleSince: maps.Clone(s.idle)}
	for _, k := range slices.Sorted(maps.Keys(s.accounts)) {
		a := *s.accounts[k]
		v.Accounts = append(v.Accounts, &a)
	}
	for _, k := range slices.Sorted(maps.Keys(s.pools)) {
		v.Pools = append(v.Pools, s.pools[k].Copy())
	}
	for _, k := range slices.Sorted(maps.Keys(s.machines)) {
		m := *s.machines[k]
		v.Machines = append(v.Machines, &m)
	}
	for _, k := range slices.Sorted(maps.Keys(s.hosts)) {
		v.Hosts = append(v.Hosts, s.hosts[k].Copy())
	}
	for k, d := range s.pending {
		v.Pending[k] = slices.Clone(d)
	}
	return v, nil
}

func (s *fakeStore) AddMachine(ctx context.Context, m state.Machine) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.machines[m.ID] != nil || s.tokens[m.JoinToken] != nil {
		return fmt.Errorf("machine %s: %w", m.ID, state.ErrConflict)
	}
	if m.State != state.MachineCreating || m.JoinToken == "" || m.Pool == "" || m.Provider == "" {
		return fmt.Errorf("bad machine %+v", m)
	}
	s.bump(&m.Meta, true)
	s.machines[m.ID] = &m
	t := &state.JoinToken{ID: m.JoinToken, Pool: m.Pool, SecretHash: pki.HashSecret(s.JoinSecret(m.ID)), MaxUses: 1, Machine: m.ID}
	s.bump(&t.Meta, true)
	s.tokens[t.ID] = t
	return nil
}

func (s *fakeStore) SetMachine(ctx context.Context, c Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.machines[c.ID]
	switch {
	case m == nil:
		return fmt.Errorf("machine %s: %w", c.ID, state.ErrNotFound)
	case m.State != c.From:
		return fmt.Errorf("machine %s is %s, not %s: %w", c.ID, m.State, c.From, state.ErrConflict)
	}
	if c.State != "" && c.State != m.State {
		m.State, m.StateSince = c.State, c.Time
	}
	if c.ProviderID != "" {
		m.ProviderID = c.ProviderID
	}
	m.Error = c.Error
	s.bump(&m.Meta, false)
	return nil
}

func (s *fakeStore) RemoveMachine(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.machines[id]
	if m == nil {
		return nil
	}
	delete(s.machines, id)
	delete(s.tokens, m.JoinToken)
	for hid, h := range s.hosts {
		if h.Machine == id {
			delete(s.hosts, hid)
			delete(s.idle, hid)
		}
	}
	s.index++
	return nil
}

func (s *fakeStore) DrainHost(ctx context.Context, hostID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hosts[hostID]
	if h == nil {
		return fmt.Errorf("host %s: %w", hostID, state.ErrNotFound)
	}
	if h.State == state.HostDraining || h.State == state.HostDrained {
		return nil
	}
	h.State = state.HostDraining
	if h.AllocCPU == 0 && h.AllocMemory == 0 {
		h.State = state.HostDrained
	}
	s.bump(&h.Meta, false)
	return nil
}

func (s *fakeStore) JoinSecret(machineID string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(machineID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (s *fakeStore) Open(acct *state.ProviderAccount) (providers.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openErr != nil {
		return nil, s.openErr
	}
	return s.clouds[acct.Name], nil
}

func (s *fakeStore) Event(ctx context.Context, ev state.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index++
	ev.Index = s.index
	s.events = append(s.events, ev)
}

// eventsOf returns the events of one type.
func (s *fakeStore) eventsOf(typ string) []state.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []state.Event
	for _, e := range s.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// enroll is an agent enrolling with a join token, as the FSM checks it:
// the token must be the machine's, its secret must match.
func (s *fakeStore) enroll(token, machineID string) error {
	t, err := pki.ParseJoinToken(token)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	jt := s.tokens[t.ID]
	if jt == nil || !pki.SecretMatches(t.Secret, jt.SecretHash) || jt.Used >= jt.MaxUses {
		return errors.New("join token unknown, used or revoked")
	}
	m := s.machines[jt.Machine]
	if m == nil || m.ID != machineID {
		return errors.New("join token of another machine")
	}
	jt.Used++
	h := &state.Host{ID: "h-" + m.ID, Name: m.ID, Pool: m.Pool, State: state.HostReady, Machine: m.ID, EnrolledAt: s.now(),
		Inventory: state.Inventory{CPUs: s.hostCPUs, MemoryBytes: uint64(s.hostMemMB) << 20}}
	s.bump(&h.Meta, true)
	s.hosts[h.ID] = h
	s.idle[h.ID] = s.now()
	m.Host = h.ID
	s.bump(&m.Meta, false)
	return nil
}

// deleteHost is the API's DELETE /v1/hosts/{id} of a provisioned host: it
// marks the host's machine draining.
func (s *fakeStore) deleteHost(hostID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.machines[s.hosts[hostID].Machine]
	m.State, m.StateSince = state.MachineDraining, s.now()
	s.bump(&m.Meta, false)
}

func (s *fakeStore) machineList() []state.Machine {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []state.Machine
	for _, k := range slices.Sorted(maps.Keys(s.machines)) {
		out = append(out, *s.machines[k])
	}
	return out
}

func (s *fakeStore) inState(st string) int {
	n := 0
	for _, m := range s.machineList() {
		if m.State == st {
			n++
		}
	}
	return n
}

// fakeCloud is a cloud in memory: idempotent creates on the client token
// (a retry with other parameters is refused, as EC2 does), machines that
// boot after a delay and then enroll through the store, counted calls,
// and hooks to fail, throttle or lose answers.
type fakeCloud struct {
	now       func() time.Time
	store     *fakeStore
	cluster   string
	bootDelay time.Duration
	// latency is how long each call takes (0: none).
	latency time.Duration
	shape   providers.Resources
	shapeOK bool

	mu      sync.Mutex
	seq     int
	vms     map[string]*fakeVM // by provider id
	byToken map[string]string  // machine id → provider id
	calls   map[string]int
	// fault, when set, runs before each call: an error is returned
	// instead of doing it; lose true does the call and loses the answer.
	fault func(action string) (err error, lose bool)
	// noBoot lists machine ids whose agents never enroll.
	noBoot map[string]bool
	// enrollErrs are the enrolments the store refused.
	enrollErrs []error
	// inCall counts calls in progress; maxInCall is its peak; perMachine
	// the peak of creates in progress for one machine id.
	inCall, maxInCall int
	machineCalls      map[string]int
	maxPerMachine     int
	// hang makes calls block until their context ends.
	hang bool
}

type fakeVM struct {
	m        providers.Machine
	req      providers.CreateRequest
	bootAt   time.Time
	enrolled bool
}

var _ providers.Provider = (*fakeCloud)(nil)

func newFakeCloud(now func() time.Time, store *fakeStore, cluster string) *fakeCloud {
	return &fakeCloud{now: now, store: store, cluster: cluster, bootDelay: 30 * time.Second,
		shape: providers.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30}, shapeOK: true,
		vms: map[string]*fakeVM{}, byToken: map[string]string{}, calls: map[string]int{}, noBoot: map[string]bool{}}
}

// begin counts a call and asks the fault hook.
func (c *fakeCloud) begin(ctx context.Context, action string) (error, bool) {
	c.mu.Lock()
	c.calls[action]++
	f, hang := c.fault, c.hang
	c.inCall++
	c.maxInCall = max(c.maxInCall, c.inCall)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inCall--
		c.mu.Unlock()
	}()
	if hang {
		<-ctx.Done()
	}
	if c.latency > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(c.latency):
		}
	}
	if err := ctx.Err(); err != nil {
		return err, false
	}
	if f != nil {
		return f(action)
	}
	return nil, false
}

func (c *fakeCloud) setFault(f func(action string) (error, bool)) {
	c.mu.Lock()
	c.fault = f
	c.mu.Unlock()
}

func (c *fakeCloud) count(action string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[action]
}

func (c *fakeCloud) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

var errLost = &providers.Error{Kind: providers.KindUnavailable, Message: "connection reset (answer lost)"}

func (c *fakeCloud) Check(ctx context.Context) error {
	err, _ := c.begin(ctx, "check")
	return err
}

func (c *fakeCloud) Create(ctx context.Context, req providers.CreateRequest) (providers.Machine, error) {
	c.mu.Lock()
	if c.machineCalls == nil {
		c.machineCalls = map[string]int{}
	}
	c.machineCalls[req.MachineID]++
	c.maxPerMachine = max(c.maxPerMachine, c.machineCalls[req.MachineID])
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.machineCalls[req.MachineID]--
		c.mu.Unlock()
	}()
	err, lose := c.begin(ctx, "create")
	if err != nil {
		return providers.Machine{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.byToken[req.MachineID]; ok {
		vm := c.vms[id]
		if !reflect.DeepEqual(vm.req.Tags, req.Tags) || !bytes.Equal(vm.req.UserData, req.UserData) || vm.req.Template.InstanceType != req.Template.InstanceType {
			return providers.Machine{}, &providers.Error{Kind: providers.KindBadRequest, Code: "IdempotentParameterMismatch", Message: "a retry carried other parameters"}
		}
		if lose {
			return providers.Machine{}, errLost
		}
		return vm.m, nil
	}
	c.seq++
	vm := &fakeVM{req: req, bootAt: c.now().Add(c.bootDelay), m: providers.Machine{ProviderID: fmt.Sprintf("i-%05d", c.seq),
		MachineID: req.Tags[providers.TagMachine], State: providers.StatePending, Tags: maps.Clone(req.Tags)}}
	c.vms[vm.m.ProviderID] = vm
	c.byToken[req.MachineID] = vm.m.ProviderID
	if lose {
		return providers.Machine{}, errLost
	}
	return vm.m, nil
}

// inject puts a machine in the cloud that Wharf did not create through
// this fake's Create (a leak, or a create whose answer is still out).
func (c *fakeCloud) inject(machineID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	id := fmt.Sprintf("i-%05d", c.seq)
	tags := map[string]string{providers.TagCluster: c.cluster, providers.TagMachine: machineID}
	c.vms[id] = &fakeVM{m: providers.Machine{ProviderID: id, MachineID: machineID, State: providers.StateRunning, Tags: tags}, enrolled: true}
	return id
}

func (c *fakeCloud) Delete(ctx context.Context, providerID string) error {
	err, lose := c.begin(ctx, "delete")
	if err != nil {
		return err
	}
	c.mu.Lock()
	if vm := c.vms[providerID]; vm != nil {
		vm.m.State = providers.StateGone
	}
	c.mu.Unlock()
	if lose {
		return errLost
	}
	return nil
}

func (c *fakeCloud) Describe(ctx context.Context, providerID string) (providers.Machine, error) {
	if err, _ := c.begin(ctx, "describe"); err != nil {
		return providers.Machine{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if vm := c.vms[providerID]; vm != nil {
		return vm.m, nil
	}
	return providers.Machine{}, &providers.Error{Kind: providers.KindNotFound, Code: "InvalidInstanceID.NotFound"}
}

func (c *fakeCloud) List(ctx context.Context, cluster string) ([]providers.Machine, error) {
	err, lose := c.begin(ctx, "list")
	if err != nil {
		return nil, err
	}
	if lose {
		return nil, errLost
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []providers.Machine
	for _, k := range slices.Sorted(maps.Keys(c.vms)) {
		if vm := c.vms[k]; vm.m.Tags[providers.TagCluster] == cluster {
			m := vm.m
			m.Tags = maps.Clone(vm.m.Tags)
			out = append(out, m)
		}
	}
	return out, nil
}

func (c *fakeCloud) Shape(ctx context.Context, t providers.Template) (providers.Resources, bool, error) {
	if err, _ := c.begin(ctx, "shape"); err != nil {
		return providers.Resources{}, false, err
	}
	return c.shape, c.shapeOK, nil
}

// boot runs the machines whose boot delay has passed and has their agents
// enroll with the join token their user data carries.
func (c *fakeCloud) boot() {
	now := c.now()
	type enrolment struct{ token, machine string }
	var due []enrolment
	c.mu.Lock()
	for _, vm := range c.vms {
		if vm.enrolled || vm.m.State != providers.StatePending || now.Before(vm.bootAt) {
			continue
		}
		vm.m.State = providers.StateRunning
		if c.noBoot[vm.m.MachineID] {
			continue
		}
		vm.enrolled = true
		pool, machine, token := parseUserData(vm.req.UserData)
		if pool != vm.req.Pool || machine != vm.req.MachineID {
			continue // user data for another machine: the agent cannot enroll
		}
		due = append(due, enrolment{token, machine})
	}
	c.mu.Unlock()
	for _, e := range due {
		if err := c.store.enroll(e.token, e.machine); err != nil {
			c.mu.Lock()
			c.enrollErrs = append(c.enrollErrs, fmt.Errorf("machine %s: %w", e.machine, err))
			c.mu.Unlock()
		}
	}
}

// live returns the machines the cloud has (not gone): machine id → provider ids.
func (c *fakeCloud) live() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]string{}
	for _, k := range slices.Sorted(maps.Keys(c.vms)) {
		if vm := c.vms[k]; vm.m.State != providers.StateGone {
			out[vm.m.MachineID] = append(out[vm.m.MachineID], vm.m.ProviderID)
		}
	}
	return out
}

// testUserData is the tests' user data: what an agent needs to enroll.
func testUserData(pool, machineID, joinToken string) ([]byte, error) {
	return []byte("#cloud-config\n# pool=" + pool + "\n# machine=" + machineID + "\n# token=" + joinToken + "\n"), nil
}

func parseUserData(b []byte) (pool, machine, token string) {
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "# pool="); ok {
			pool = v
		} else if v, ok := strings.CutPrefix(line, "# machine="); ok {
			machine = v
		} else if v, ok := strings.CutPrefix(line, "# token="); ok {
			token = v
		}
	}
	return
}
