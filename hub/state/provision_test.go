package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func strp(s string) *string { return &s }

// fillProvision adds to fill's state: an aws account, a provisioned pool
// and a machine.
func fillProvision(h *harness) {
	h.must(ProviderCreateType, &ProviderCreateRequest{Account: ProviderAccount{Name: "aws1", Type: "aws", Region: "us-east-1", SealedCredentials: []byte{1, 2, 3}}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "auto", Datacenter: "dc1", Provision: &Provision{
		Provider: "aws1", Template: json.RawMessage(`{"instance_type":"t3.small","image":"ami-1"}`), MinHosts: 0, MaxHosts: 3,
		ScaleDownAfter: Duration(10 * time.Minute), BootTimeout: Duration(10 * time.Minute)}}, Time: t0})
	h.must(MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m1", Pool: "auto"}, Token: JoinToken{ID: "mt1", SecretHash: "ms1"}, Time: t0})
}

func TestProvisionCommands(t *testing.T) {
	h := newHarness(t)
	fill(h)
	fillProvision(h)
	prov := func(name string, min, max int) *Provision {
		return &Provision{Provider: name, Template: json.RawMessage(`{}`), MinHosts: min, MaxHosts: max}
	}
	tests := []struct {
		name string
		mt   MessageType
		req  any
		want error
	}{
		{"provider taken", ProviderCreateType, &ProviderCreateRequest{Account: ProviderAccount{Name: "aws1", Type: "aws"}}, ErrConflict},
		{"provider without type", ProviderCreateType, &ProviderCreateRequest{Account: ProviderAccount{Name: "x"}}, ErrInvalid},
		{"update missing provider", ProviderUpdateType, &ProviderUpdateRequest{Account: ProviderAccount{Name: "nope", Type: "aws"}}, ErrNotFound},
		{"change type of a used provider", ProviderUpdateType, &ProviderUpdateRequest{Account: ProviderAccount{Name: "aws1", Type: "aliyun"}}, ErrConflict},
		{"delete used provider", ProviderDeleteType, &ProviderDeleteRequest{Name: "aws1"}, ErrConflict},
		{"delete missing provider", ProviderDeleteType, &ProviderDeleteRequest{Name: "nope"}, ErrNotFound},
		{"reseal stale", ProviderResealType, &ProviderResealRequest{Name: "aws1", SealedCredentials: []byte{9}, ModifyIndex: 1}, ErrConflict},
		{"pool of missing provider", PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "p2", Provision: prov("nope", 0, 1)}}, ErrRefused},
		{"pool provider is not the account's type", PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "p2", Provider: "vsphere", Provision: prov("aws1", 0, 1)}}, ErrRefused},
		{"min above max", PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "p2", Provision: prov("aws1", 3, 2)}}, ErrInvalid},
		{"max 0", PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "p2", Provision: prov("aws1", 0, 0)}}, ErrInvalid},
		{"update missing pool", PoolUpdateType, &PoolUpdateRequest{Pool: Pool{Name: "nope"}}, ErrNotFound},
		{"drop provision with machines", PoolUpdateType, &PoolUpdateRequest{Pool: Pool{Name: "auto", Datacenter: "dc1"}}, ErrConflict},
		{"delete pool with machines", PoolDeleteType, &PoolDeleteRequest{Name: "auto"}, ErrConflict},
		{"machine in unprovisioned pool", MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m9", Pool: "vs-sh"}, Token: JoinToken{ID: "t9", SecretHash: "s9"}}, ErrRefused},
		{"machine id taken", MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m1", Pool: "auto"}, Token: JoinToken{ID: "t9", SecretHash: "s9"}}, ErrConflict},
		{"machine token id taken", MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m9", Pool: "auto"}, Token: JoinToken{ID: "jt1", SecretHash: "s9"}}, ErrConflict},
		{"machine without token", MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m9", Pool: "auto"}}, ErrInvalid},
		{"new machine already ready", MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m9", Pool: "auto", State: MachineReady}, Token: JoinToken{ID: "t9", SecretHash: "s9"}}, ErrInvalid},
		{"update missing machine", MachineUpdateType, &MachineUpdateRequest{ID: "nope", State: MachineBooting}, ErrNotFound},
		{"unknown machine state", MachineUpdateType, &MachineUpdateRequest{ID: "m1", State: "flying"}, ErrInvalid},
		{"machine stale cas", MachineUpdateType, &MachineUpdateRequest{ID: "m1", State: MachineBooting, CAS: u64p(1)}, ErrConflict},
		{"machine on a missing host", MachineUpdateType, &MachineUpdateRequest{ID: "m1", Host: strp("nope")}, ErrRefused},
		{"delete missing machine", MachineDeleteType, &MachineDeleteRequest{ID: "nope"}, ErrNotFound},
		{"ok: update provider, same type", ProviderUpdateType, &ProviderUpdateRequest{Account: ProviderAccount{Name: "aws1", Type: "aws", Region: "eu-west-1", SealedCredentials: []byte{4}}}, nil},
		{"ok: pool update changes the provision", PoolUpdateType, &PoolUpdateRequest{Pool: Pool{Name: "auto", Provider: "aws", Provision: prov("aws1", 1, 5)}}, nil},
		{"ok: plain pool gains a provision", PoolUpdateType, &PoolUpdateRequest{Pool: Pool{Name: "vs-sh", Datacenter: "dc2", Provision: prov("aws1", 0, 1)}}, nil},
		{"ok: and drops it again", PoolUpdateType, &PoolUpdateRequest{Pool: Pool{Name: "vs-sh", Datacenter: "dc2"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dump(t, h.fsm.Store())
			err := h.apply(tt.mt, tt.req)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(before, dump(t, h.fsm.Store())) {
				t.Fatal("a refused command changed the store")
			}
		})
	}
	s := h.snap()
	p, _ := s.Pool(nil, "auto")
	if p.Provision.MaxHosts != 5 || p.Provider != "aws" || !p.CreatedAt.Equal(t0) {
		t.Fatalf("pool after update: %+v %+v", p, p.Provision)
	}
	a, _ := s.ProviderAccount(nil, "aws1")
	if a.Region != "eu-west-1" || !bytes.Equal(a.SealedCredentials, []byte{4}) || !a.CreatedAt.Equal(t0) {
		t.Fatalf("account after update: %+v", a)
	}
	if pools, _ := s.ProvisionedPools(nil); len(pools) != 1 || pools[0].Name != "auto" {
		t.Fatalf("provisioned pools: %v", pools)
	}
	// Reseal at the account's current index succeeds.
	h.must(ProviderResealType, &ProviderResealRequest{Name: "aws1", SealedCredentials: []byte{5}, ModifyIndex: a.ModifyIndex})
	if a, _ := h.snap().ProviderAccount(nil, "aws1"); !bytes.Equal(a.SealedCredentials, []byte{5}) {
		t.Fatalf("reseal did not replace the credentials: %v", a.SealedCredentials)
	}
}

func TestMachineCreateBindsToken(t *testing.T) {
	h := newHarness(t)
	fill(h)
	fillProvision(h)
	s := h.snap()
	m, _ := s.Machine(nil, "m1")
	tok, _ := s.JoinToken(nil, "mt1")
	if m == nil || tok == nil {
		t.Fatalf("machine %v, token %v: want both", m, tok)
	}
	if m.State != MachineCreating || m.JoinToken != "mt1" || m.Provider != "aws1" || !m.StateSince.Equal(t0) {
		t.Fatalf("machine: %+v", m)
	}
	if tok.Machine != "m1" || tok.Pool != "auto" || tok.MaxUses != 1 {
		t.Fatalf("token: %+v", tok)
	}
	if ms, _ := h.fsm.Store().Machines("auto"); len(ms) != 1 {
		t.Fatalf("Store.Machines(auto) = %v", ms)
	}
}

func TestMachineTransitions(t *testing.T) {
	path := []struct {
		to   string
		want error
	}{
		{MachineBooting, nil},
		{MachineCreating, ErrConflict},
		{MachineBooting, nil}, // staying is allowed
		{MachineDraining, nil},
		{MachineBooting, ErrConflict},
		{MachineReady, ErrConflict},
		{MachineDeleting, nil},
		{MachineBooting, ErrConflict},
		{MachineDraining, ErrConflict},
		{MachineFailed, nil},
		{MachineDeleting, nil},
	}
	h := newHarness(t)
	fill(h)
	fillProvision(h)
	for i, step := range path {
		err := h.apply(MachineUpdateType, &MachineUpdateRequest{ID: "m1", State: step.to, ProviderID: strp("i-0abc"), Error: strp("e"), Time: t0.Add(time.Duration(i+1) * time.Minute)})
		if !errors.Is(err, step.want) || (err == nil) != (step.want == nil) {
			t.Fatalf("step %d (-> %s): %v, want %v", i, step.to, err, step.want)
		}
	}
	m, _ := h.snap().Machine(nil, "m1")
	if m.State != MachineDeleting || m.ProviderID != "i-0abc" || m.Error != "e" {
		t.Fatalf("machine: %+v", m)
	}
	if got, _ := h.snap().MachineByProviderID(nil, "i-0abc"); got == nil || got.ID != "m1" {
		t.Fatalf("by provider id: %v", got)
	}
}

func TestEnrollWithMachineToken(t *testing.T) {
	h := newHarness(t)
	fill(h)
	fillProvision(h)
	enroll := func(id, name, machine string) error {
		return h.apply(HostEnrollType, &HostEnrollRequest{TokenID: "mt1", SecretHash: "ms1", MachineID: machine, Host: Host{ID: id, Name: name}, Time: t0.Add(time.Minute)})
	}
	before := dump(t, h.fsm.Store())
	if err := enroll("h-x", "x", "m-other"); !errors.Is(err, ErrRefused) {
		t.Fatalf("a mismatched machine id: %v, want refused", err)
	}
	if !reflect.DeepEqual(before, dump(t, h.fsm.Store())) {
		t.Fatal("a refused enrolment changed the store")
	}
	// A hand-made token refuses an agent that claims a machine.
	if err := h.apply(HostEnrollType, &HostEnrollRequest{TokenID: "jt1", SecretHash: "sh", MachineID: "m1", Host: Host{ID: "h-y", Name: "y"}, Time: t0}); !errors.Is(err, ErrRefused) {
		t.Fatalf("a machine id with an unbound token: %v, want refused", err)
	}
	h.must(MachineUpdateType, &MachineUpdateRequest{ID: "m1", State: MachineBooting, ProviderID: strp("i-1"), Time: t0})
	if err := enroll("h-m1", "m1", "m1"); err != nil {
		t.Fatal(err)
	}
	s := h.snap()
	host, _ := s.Host(nil, "h-m1")
	m, _ := s.Machine(nil, "m1")
	if host.Machine != "m1" || m.Host != "h-m1" || m.State != MachineReady {
		t.Fatalf("host %+v, machine %+v", host, m)
	}
	if got, _ := s.MachineByHost(nil, "h-m1"); got == nil || got.ID != "m1" {
		t.Fatalf("machine by host: %v", got)
	}
	// The token is single-use.
	if err := enroll("h-m2", "m2", ""); !errors.Is(err, ErrRefused) {
		t.Fatalf("second use of a machine's token: %v, want refused", err)
	}
	// Deleting the machine removes its token and its host.
	h.must(MachineUpdateType, &MachineUpdateRequest{ID: "m1", State: MachineDraining, Time: t0})
	h.must(MachineDeleteType, &MachineDeleteRequest{ID: "m1", Time: t0.Add(time.Hour)})
	s = h.snap()
	if m, _ := s.Machine(nil, "m1"); m != nil {
		t.Fatal("machine still there")
	}
	if tok, _ := s.JoinToken(nil, "mt1"); tok != nil {
		t.Fatal("its join token is still there")
	}
	if host, _ := s.Host(nil, "h-m1"); host != nil {
		t.Fatal("its host is still there")
	}
	// Now the pool may drop its provision and the account go.
	h.must(PoolDeleteType, &PoolDeleteRequest{Name: "auto"})
	h.must(ProviderDeleteType, &ProviderDeleteRequest{Name: "aws1"})
}

func TestProvisionSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t)
	fill(h)
	fillProvision(h)
	h.must(MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m2", Pool: "auto", State: MachineBooting, ProviderID: "i-2"}, Token: JoinToken{ID: "mt2", SecretHash: "ms2"}, Time: t0})
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	h2 := newHarness(t)
	if err := h2.fsm.Restore(nopCloser{&buf}); err != nil {
		t.Fatal(err)
	}
	if a, b := dump(t, h.fsm.Store()), dump(t, h2.fsm.Store()); !reflect.DeepEqual(a, b) {
		t.Fatalf("restored state differs:\n%v\n%v", a, b)
	}
	s := h2.snap()
	if m, _ := s.MachineByProviderID(nil, "i-2"); m == nil || m.ID != "m2" {
		t.Fatal("the restored machines are not indexed by provider id")
	}
	if a, _ := s.ProviderAccount(nil, "aws1"); a == nil || !bytes.Equal(a.SealedCredentials, []byte{1, 2, 3}) {
		t.Fatalf("restored account: %+v", a)
	}
}
