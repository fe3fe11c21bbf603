package state

import (
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// FuzzMeterCommands applies an arbitrary entry to a store that metered
// for a while: it either fails and changes nothing, or succeeds and leaves
// every closed hour as it was.
func FuzzMeterCommands(f *testing.F) {
	for _, s := range []struct {
		t   MessageType
		req any
	}{
		{UsageCountersType, &UsageCountersRequest{Node: "hub0", Seq: 99, Counts: []UsageCount{{Tenant: "acme", App: "web", Start: t0, Requests: 5}}}},
		{UsageCountersType, &UsageCountersRequest{Node: "hub9", Seq: 1, Counts: []UsageCount{{Tenant: "beta", App: "x", Start: t0.Add(-time.Hour), LogBytes: 1}}}},
		{CloseHourType, &CloseHourRequest{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)}},
		{CloseHourType, &CloseHourRequest{From: t0, To: t0.Add(time.Hour)}},
		{CloseHourType, &CloseHourRequest{From: t0.Add(3 * time.Hour), To: t0.Add(2 * time.Hour)}},
	} {
		b, err := Encode(s.t, s.req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{byte(CloseHourType), '{', '}'})
	f.Add([]byte{byte(UsageCountersType), 'n', 'u', 'l', 'l'})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || (MessageType(b[0])&^IgnoreUnknownTypeFlag != UsageCountersType && MessageType(b[0])&^IgnoreUnknownTypeFlag != CloseHourType) {
			return
		}
		h := newHarness(t)
		fill(h)
		h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceRunning}}, Time: t0.Add(time.Minute)})
		h.must(UsageCountersType, &UsageCountersRequest{Node: "hub0", Seq: 3, Counts: []UsageCount{{Tenant: "acme", App: "web", Start: t0, Requests: 5}}, Time: t0})
		h.must(CloseHourType, &CloseHourRequest{From: t0, To: t0.Add(time.Hour), Time: t0.Add(time.Hour)})
		before := dump(t, h.fsm.Store())
		closed, _ := h.snap().ClosedUsage(nil, "", 0, 1<<62)
		r := h.fsm.Apply(&raft.Log{Index: 1000, Type: raft.LogCommand, Data: b})
		if r != nil {
			if _, ok := r.(*Error); !ok {
				t.Fatalf("Apply returned %T", r)
			}
			if !reflect.DeepEqual(before, dump(t, h.fsm.Store())) {
				t.Fatal("a failed Apply changed the store")
			}
			return
		}
		after, _ := h.snap().ClosedUsage(nil, "", 0, t0.Add(time.Hour).Unix())
		if !reflect.DeepEqual(closed, after) {
			t.Fatal("a closed hour changed")
		}
	})
}
