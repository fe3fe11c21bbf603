package state

import (
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func seeds(f *testing.F) {
	for _, s := range []struct {
		t   MessageType
		req any
	}{
		{TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme"}}},
		{AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: spec("web", "web:1")}},
		{AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 3}},
		{HostInventoryType, &HostInventoryRequest{ID: "host1", Inventory: Inventory{CPUs: 4, GossipAddr: "10.0.0.1:7484"}}},
		{PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 1, Host: "host1", CPU: 100, Memory: 64}},
			Stop: []InstanceStop{{ID: "i-0", Reason: "scaled"}}, Pending: []AppPending{{Tenant: "acme", App: "web", Reason: "r"}}}},
		{AppCanaryType, &AppCanaryRequest{Tenant: "acme", Name: "web", Promote: true}},
		{InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceRunning, Ready: true}}}},
		{ProviderCreateType, &ProviderCreateRequest{Account: ProviderAccount{Name: "aws2", Type: "aws", SealedCredentials: []byte{1}}}},
		{ProviderUpdateType, &ProviderUpdateRequest{Account: ProviderAccount{Name: "aws2", Type: "aws"}}},
		{ProviderDeleteType, &ProviderDeleteRequest{Name: "aws2"}},
		{ProviderResealType, &ProviderResealRequest{Name: "aws2", SealedCredentials: []byte{2}, ModifyIndex: 3}},
		{PoolUpdateType, &PoolUpdateRequest{Pool: Pool{Name: "vs-sh", Provision: &Provision{Provider: "aws2", MaxHosts: 2}}}},
		{MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m1", Pool: "vs-sh"}, Token: JoinToken{ID: "t", SecretHash: "s"}}},
		{MachineUpdateType, &MachineUpdateRequest{ID: "m1", State: MachineBooting, ProviderID: new(string), CAS: new(uint64)}},
		{MachineDeleteType, &MachineDeleteRequest{ID: "m1"}},
		{HostEnrollType, &HostEnrollRequest{TokenID: "t", SecretHash: "s", MachineID: "m1", Host: Host{ID: "h9", Name: "n9"}}},
		{UsageCountersType, &UsageCountersRequest{Node: "hub0", Seq: 1, Counts: []UsageCount{{Tenant: "acme", App: "web", Start: t0, Requests: 5, EgressBytes: 7, LogBytes: 9}}}},
		{CloseHourType, &CloseHourRequest{From: t0, To: t0.Add(time.Hour), Time: t0.Add(time.Hour + time.Minute)}},
		{PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "std", PlanTerms: PlanTerms{Currency: "USD", Prices: map[string]string{"instance_hour": "0.01"}, MonthlyFee: "5.00"}}}},
		{PlanDeleteType, &PlanDeleteRequest{Name: "std"}},
		{TenantUpdateType, &TenantUpdateRequest{Name: "acme", Plan: strp("std"), Budget: strp("10.00"), BudgetHardStop: new(bool), BudgetWebhook: new(string)}},
		{BudgetCheckType, &BudgetCheckRequest{Tenant: "acme", Month: "2026-11", Spent: "10.00", Over: true, Percents: []int{80, 100}}},
		{BudgetNotifiedType, &BudgetNotifiedRequest{Tenant: "acme", Month: "2026-11", Percent: 80}},
		{AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: func() AppSpec {
			s := spec("web", "web:2")
			s.Autoscale = &Autoscale{Min: 0, Max: 4, QPS: 10, Schedules: []AutoscaleSchedule{{Cron: "0 9 * * *", Min: 2}}}
			return s
		}()}},
		{AutoscaleType, &AutoscaleRequest{Tenant: "acme", Name: "web", Instances: 2, Reason: "qps"}},
		{RegistryPutType, &RegistryPutRequest{Registry: Registry{Tenant: "acme", Server: "r.acme.test:5000", Username: "ci", SealedPassword: []byte{1}}}},
		{RegistryResealType, &RegistryResealRequest{Tenant: "acme", Server: "r.acme.test:5000", SealedPassword: []byte{2}, ModifyIndex: 1}},
		{RegistryDeleteType, &RegistryDeleteRequest{Tenant: "acme", Server: "r.acme.test:5000"}},
	} {
		b, err := Encode(s.t, s.req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Both forms of the commands that have a binary one: the JSON form is
	// what every log written before it holds.
	for _, c := range binaryCases() {
		for _, enc := range []func(MessageType, any) ([]byte, error){EncodeBinary, encodeJSON} {
			b, err := enc(c.t, c.req)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{7, '{', '"', 'S'})
	f.Add([]byte{byte(BinaryMarker)})
	f.Add([]byte{byte(BinaryMarker), byte(AppUpsertType), 0x12, 0x02, 0x4a, 0x00})
}

func FuzzDecode(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		mt, req, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decoded re-encodes and decodes to the same type.
		again, err := Encode(mt, req)
		if err != nil {
			t.Fatal(err)
		}
		if mt2, _, err := Decode(again); err != nil || mt2 != mt {
			t.Fatalf("re-decode: %v %v", mt2, err)
		}
		if MessageType(b[0]) != BinaryMarker {
			return
		}
		// A binary entry decodes to what the FSM would see had the request
		// travelled as JSON, and re-encodes in the binary form to itself.
		if want := jsonRoundTrip(t, mt, req); !reflect.DeepEqual(req, want) {
			t.Fatalf("binary decodes to\n%#v\nits JSON round trip to\n%#v", req, want)
		}
		bin, err := encodeBinary(mt, req)
		if err != nil {
			t.Fatalf("a decoded binary request does not re-encode: %v", err)
		}
		if _, req2, err := Decode(bin); err != nil || !reflect.DeepEqual(req2, req) {
			t.Fatalf("binary re-decode: %v\n%#v\n%#v", err, req2, req)
		}
	})
}

func FuzzApply(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h := newHarness(t)
		fill(h)
		before := dump(t, h.fsm.Store())
		idx := h.snap().LatestIndex()
		r := h.fsm.Apply(&raft.Log{Index: 1000, Type: raft.LogCommand, Data: b})
		if r != nil {
			if _, ok := r.(*Error); !ok {
				t.Fatalf("Apply returned %T", r)
			}
			if h.snap().LatestIndex() != idx || !reflect.DeepEqual(before, dump(t, h.fsm.Store())) {
				t.Fatal("a failed Apply changed the store")
			}
		}
	})
}
