package state

import (
	"slices"
	"testing"
	"time"
)

// TestAppWriteKeepsStatus: writing an app's spec again (a scale, a
// re-applied manifest, a new version) keeps what the spec does not say:
// the planner's explanation of why instances wait (else every write to an
// app that cannot be placed yet would make the planner commit it back), the
// troubles already told (else told again) and a failback asked for by hand
// (else instances still in a failover pool would stay there).
func TestAppWriteKeepsStatus(t *testing.T) {
	h := newHarness(t)
	fill(h) // acme/web version 2 in pool aws-bj
	s := spec("web", "web:2")
	s.Pools, s.FailoverPools, s.Instances = []string{"aws-bj"}, []string{"vs-sh"}, intp(3)
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Time: t0.Add(2 * time.Minute)})
	h.must(PlanApplyType, &PlanApplyRequest{Pending: []AppPending{{Tenant: "acme", App: "web", Reason: "3 of 3 instances cannot be placed: no room"}}, Time: t0})
	h.must(AppFailbackType, &AppFailbackRequest{Tenant: "acme", Name: "web", Time: t0})
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Time: t0, Updates: []InstanceUpdate{
		{ID: "i-1", State: InstanceStarting, Message: "no such image", Reason: ReasonImagePull}}})
	before, _ := h.snap().App(nil, "acme", "web")
	if before.Pending == "" || before.FailbackIndex == 0 || len(before.Noticed) == 0 {
		t.Fatalf("set-up: app %+v has no status to keep", before)
	}
	for _, c := range []struct {
		name string
		edit func(*AppSpec)
	}{
		{"the same spec again", func(*AppSpec) {}},
		{"a scale", func(s *AppSpec) { s.Instances = intp(4) }},
		{"a new version", func(s *AppSpec) { s.Image = "web:3" }},
	} {
		next := copySpec(s)
		c.edit(&next)
		h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: next, Time: t0.Add(3 * time.Minute)})
		a, _ := h.snap().App(nil, "acme", "web")
		if a.Pending != before.Pending || a.FailbackIndex != before.FailbackIndex || !slices.Equal(a.Noticed, before.Noticed) {
			t.Fatalf("%s: status pending %q failback %d noticed %v, want %q %d %v", c.name,
				a.Pending, a.FailbackIndex, a.Noticed, before.Pending, before.FailbackIndex, before.Noticed)
		}
		if a.ModifyIndex == before.ModifyIndex {
			t.Fatalf("%s: the write left the modify index", c.name)
		}
	}
}
