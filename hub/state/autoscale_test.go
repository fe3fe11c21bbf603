package state

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestAutoscaleCommands: a policy clamps the count into its bounds; while
// it is set a manual scale is a conflict and a spec's count is ignored;
// decisions are written with their reason, in the history and as an
// event; removing the policy keeps the last decision; a decision that
// arrives after the policy was removed is refused.
func TestAutoscaleCommands(t *testing.T) {
	h := newHarness(t)
	fill(h)
	app := func() *App {
		t.Helper()
		a, err := h.snap().App(nil, "acme", "web")
		if err != nil || a == nil {
			t.Fatalf("app: %v %v", a, err)
		}
		return a
	}
	assignIndex := func() uint64 {
		t.Helper()
		host, err := h.snap().Host(nil, "host1")
		if err != nil || host == nil {
			t.Fatalf("host1: %v", err)
		}
		return host.AssignIndex
	}
	web := withPools(spec("web", "web:2"), "aws-bj")
	web.Autoscale = &Autoscale{Min: 4, Max: 6, QPS: 20, Window: Duration(10 * time.Second), ScaleDownDelay: Duration(time.Minute)}
	before := assignIndex()
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, Time: t0.Add(time.Hour)})
	if assignIndex() != before {
		t.Fatalf("a qps policy changed host1's assignments")
	}
	// A CPU target: the hosts that run the app get new assignments (their
	// instances are sampled every second from now on).
	web.Autoscale.CPU = 70
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, Time: t0.Add(time.Hour)})
	if assignIndex() == before {
		t.Fatalf("a cpu target left host1's assignments as they were")
	}
	if a := app(); *a.Spec.Instances != 4 || !strings.Contains(a.AutoscaleReason, "policy set") {
		t.Fatalf("after the policy: %d instances, reason %q; want 4 (its min), policy set", *a.Spec.Instances, a.AutoscaleReason)
	}

	err := h.apply(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 2, Time: t0.Add(time.Hour)})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "autoscaled") || !strings.Contains(err.Error(), "--off") {
		t.Fatalf("manual scale of an autoscaled app: %v, want a conflict that says why", err)
	}

	// Nor can it be stopped: the autoscaler would start it again.
	err = h.apply(AppStopType, &AppStopRequest{Tenant: "acme", Name: "web", Time: t0.Add(time.Hour)})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "--off") || app().Stopped {
		t.Fatalf("stop of an autoscaled app: %v, want a conflict that says why", err)
	}

	h.must(AutoscaleType, &AutoscaleRequest{Tenant: "acme", Name: "web", Instances: 6, Reason: "qps 110.0/s", Time: t0.Add(2 * time.Hour)})
	a := app()
	if *a.Spec.Instances != 6 || a.AutoscaleReason != "qps 110.0/s" {
		t.Fatalf("after a decision: %d instances, reason %q", *a.Spec.Instances, a.AutoscaleReason)
	}
	hist, _ := h.snap().History(nil, "acme", "web")
	last := hist[len(hist)-1]
	if last.Kind != DeployAutoscale || last.Instances != 6 || !strings.Contains(last.Message, "from 4 to 6") {
		t.Fatalf("history's last entry: %+v", last)
	}
	evs, _ := h.snap().Events(nil, 0)
	if ev := evs[len(evs)-1]; ev.Type != "app.autoscale" || ev.Subject != "acme/web" || !strings.Contains(ev.Message, "qps 110.0/s") {
		t.Fatalf("last event: %+v", ev)
	}

	// A re-applied spec with a count of its own changes nothing.
	web.Instances = intp(1)
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, Time: t0.Add(3 * time.Hour)})
	if a := app(); *a.Spec.Instances != 6 {
		t.Fatalf("a spec's count overrode the autoscaler's: %d", *a.Spec.Instances)
	}

	// Off: the count stays at the last decision, and hands are free.
	web.Autoscale, web.Instances = nil, nil
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, Time: t0.Add(4 * time.Hour)})
	if a := app(); *a.Spec.Instances != 6 || a.AutoscaleReason != "" {
		t.Fatalf("after off: %d instances, reason %q; want 6 and none", *a.Spec.Instances, a.AutoscaleReason)
	}
	if err := h.apply(AutoscaleType, &AutoscaleRequest{Tenant: "acme", Name: "web", Instances: 2, Time: t0.Add(4 * time.Hour)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a decision without a policy: %v, want conflict", err)
	}
	h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 2, Time: t0.Add(5 * time.Hour)})

	for _, tc := range []struct {
		name string
		as   Autoscale
	}{
		{"min above max", Autoscale{Min: 5, Max: 3}},
		{"no max", Autoscale{Min: 0, Max: 0}},
		{"negative min", Autoscale{Min: -1, Max: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := web
			bad.Autoscale = &tc.as
			if err := h.apply(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: bad, Time: t0}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("%+v: %v, want invalid", tc.as, err)
			}
		})
	}
}
