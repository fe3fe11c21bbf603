package state

import (
	"fmt"
	"testing"
	"time"
)

func TestHistory(t *testing.T) {
	h := newHarness(t)
	fill(h) // web: create (v1, 3 instances), then update to v2
	app, _ := h.snap().App(nil, "acme", "web")
	s := app.Spec
	s.Instances = intp(5)
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Time: t0})                 // scale through PUT
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Time: t0})                 // no change: no entry
	h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 2, Time: t0}) // scale
	h.must(AppRollbackType, &AppRollbackRequest{Tenant: "acme", Name: "web", Version: 1, Time: t0})
	s.Instances = nil
	s.Image = "web:3"
	s.Strategy = &Strategy{Type: "canary"}
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Time: t0})
	h.must(AppCanaryType, &AppCanaryRequest{Tenant: "acme", Name: "web", Promote: false, Time: t0})
	s.Image = "web:4"
	s.Strategy = &Strategy{Type: "rolling"}
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Time: t0})
	h.must(PlanApplyType, &PlanApplyRequest{Revert: []AppRevert{{Tenant: "acme", App: "web", From: 4, To: 1, Reason: "not ready"}}, Time: t0})

	ds, err := h.snap().History(nil, "acme", "web")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create 1<-0 x3", "update 2<-1 x3", "scale 2<-2 x5", "scale 2<-2 x2", "rollback 1<-2 x2",
		"canary 3<-1 x2", "abort 1<-3 x2", "update 4<-1 x2", "revert 1<-4 x2"}
	var got []string
	for i, d := range ds {
		got = append(got, fmt.Sprintf("%s %d<-%d x%d", d.Kind, d.Version, d.From, d.Instances))
		if i > 0 && d.Index <= ds[i-1].Index {
			t.Errorf("history not ordered by index: %+v", ds)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history:\n got %v\nwant %v", got, want)
	}
	if ds[len(ds)-1].Strategy != "rolling" || ds[0].Message == "" {
		t.Errorf("entry fields: %+v", ds[len(ds)-1])
	}

	// Bounded: only the newest historyLimit entries stay.
	for i := 0; i < historyLimit+10; i++ {
		h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 1 + i%3, Time: t0.Add(time.Duration(i) * time.Second)})
	}
	ds, _ = h.snap().History(nil, "acme", "web")
	if len(ds) != historyLimit || ds[len(ds)-1].Index != h.index {
		t.Fatalf("history holds %d entries, last at %d (want %d, %d)", len(ds), ds[len(ds)-1].Index, historyLimit, h.index)
	}
	// Gone with the app.
	h.must(AppDeleteType, &AppDeleteRequest{Tenant: "acme", Name: "web"})
	if ds, _ := h.snap().History(nil, "acme", "web"); len(ds) != 0 {
		t.Fatalf("history survives app delete: %d entries", len(ds))
	}
}
