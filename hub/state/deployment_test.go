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

// TestAppRowsByPrefix: an app's versions and history, and a tenant's apps,
// are read by prefix of the "id" index; names that extend another ("web2",
// "acme2") must not be read with it, and one app's history bound must not
// drop another's entries.
func TestAppRowsByPrefix(t *testing.T) {
	h := newHarness(t)
	fill(h) // acme/web, versions 1 and 2
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme2"}, Time: t0})
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: spec("web2", "w:1"), Create: true, Time: t0})
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme2", Spec: spec("web", "w:1"), Create: true, Time: t0})
	for i := 0; i < historyLimit+3; i++ {
		h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 1 + i%2, Time: t0})
	}
	snap := h.snap()
	names := func(apps []*App) (out []string) {
		for _, a := range apps {
			out = append(out, a.Tenant+"/"+a.Name)
		}
		return out
	}
	for tenant, want := range map[string]string{"acme": "[acme/web acme/web2]", "acme2": "[acme2/web]", "acm": "[]"} {
		apps, err := snap.Apps(nil, tenant)
		if err != nil || fmt.Sprint(names(apps)) != want {
			t.Errorf("apps of %s: %v %v, want %s", tenant, names(apps), err, want)
		}
	}
	vs, err := snap.AppVersions(nil, "acme", "web")
	if err != nil || len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 {
		t.Fatalf("versions of acme/web: %+v %v", vs, err)
	}
	for _, v := range vs {
		if v.Tenant != "acme" || v.App != "web" {
			t.Fatalf("versions of acme/web hold %s/%s", v.Tenant, v.App)
		}
	}
	for _, app := range [][2]string{{"acme", "web"}, {"acme", "web2"}, {"acme2", "web"}} {
		ds, err := snap.History(nil, app[0], app[1])
		if err != nil {
			t.Fatal(err)
		}
		want := 1 // its creation
		if app == [2]string{"acme", "web"} {
			want = historyLimit
		}
		if len(ds) != want {
			t.Fatalf("history of %s/%s holds %d entries, want %d", app[0], app[1], len(ds), want)
		}
		for _, d := range ds {
			if d.Tenant != app[0] || d.App != app[1] {
				t.Fatalf("history of %s/%s holds an entry of %s/%s", app[0], app[1], d.Tenant, d.App)
			}
		}
	}
}
