package scheduler

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	other := AppKey{"acme", "other"}
	// Each case plans two instances of 3000 MB onto h1 and h2 (8192 MB
	// each), changes the state, and checks the plan against it.
	tests := []struct {
		name   string
		change func(h *harness, p *Plan)
		want   []string // conflict reasons, one per conflicting placement; none: valid
	}{
		{"fresh plan", func(h *harness, p *Plan) {}, nil},
		{"unrelated change", func(h *harness, p *Plan) {
			h.addHost(mkHost("h3", "eu", "dc1", "a", 4000, 8192))
			h.addInstance(Instance{ID: "o1", App: other, Version: 1, Host: "h1", CPU: 100, Memory: 1000})
		}, nil},
		{"a terminal instance holds nothing", func(h *harness, p *Plan) {
			h.addInstance(Instance{ID: "o1", App: other, Version: 1, Host: "h1", CPU: 100, Memory: 6000, Terminal: true})
		}, nil},
		{"host filled by someone else", func(h *harness, p *Plan) {
			h.addInstance(Instance{ID: "o1", App: other, Version: 1, Host: "h1", CPU: 100, Memory: 6000})
		}, []string{"no capacity: need 100m CPU/3000 MB, 3900m/2192 MB free"}},
		{"host went down", func(h *harness, p *Plan) {
			h.setHost("h2", func(x *Host) { x.Ready, x.Down = false, true })
		}, []string{"host is down"}},
		{"host became suspect", func(h *harness, p *Plan) {
			h.setHost("h2", func(x *Host) { x.Ready = false })
		}, []string{"host is not ready"}},
		{"host removed", func(h *harness, p *Plan) { h.removeHost("h1") }, []string{"host is gone"}},
		{"instance id taken", func(h *harness, p *Plan) {
			h.addInstance(Instance{ID: p.Place[0].InstanceID, App: other, Version: 1, Host: "h2", Terminal: true})
		}, []string{"is taken"}},
		{"instance id twice in the plan", func(h *harness, p *Plan) {
			p.Place[1].InstanceID = p.Place[0].InstanceID
		}, []string{"used twice in the plan"}},
		{"placements of the plan add up", func(h *harness, p *Plan) {
			p.Place[1].Host = p.Place[0].Host
			p.Place = append(p.Place, Placement{InstanceID: "extra", App: other, Version: 1, Host: p.Place[0].Host, CPU: 100, Memory: 3000})
		}, []string{"no capacity: need 100m CPU/3000 MB, 3800m/2192 MB free"}},
		{"same index is verified too", func(h *harness, p *Plan) {
			p.Place[0].Memory = 9000
			p.BaseIndex = h.Index()
		}, []string{"no capacity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, mkHost("h1", "eu", "dc1", "a", 4000, 8192), mkHost("h2", "eu", "dc1", "a", 4000, 8192))
			p := h.plan(mkApp("web", 2, 100, 3000, "eu"))
			if len(p.Place) != 2 || p.BaseIndex != h.Index() {
				t.Fatalf("setup: %+v", p)
			}
			tt.change(h, &p)
			err := Check(h, p)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if err := h.apply(p); err != nil {
					t.Fatalf("apply: %v", err)
				}
				return
			}
			ce := mustConflict(t, err)
			if len(ce.Conflicts) != len(tt.want) {
				t.Fatalf("conflicts %+v, want %d", ce.Conflicts, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(ce.Conflicts[i].Reason, w) {
					t.Errorf("conflict %d: %q, want %q", i, ce.Conflicts[i].Reason, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "stale plan") || !strings.Contains(err.Error(), tt.want[0]) {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestCheckReplanSucceeds(t *testing.T) {
	h := newHarness(t, mkHost("h1", "eu", "dc1", "a", 4000, 4096), mkHost("h2", "eu", "dc1", "a", 4000, 4096))
	app := mkApp("web", 1, 100, 3000, "eu")
	p := h.plan(app)
	// Someone else takes the chosen host first.
	h.addInstance(Instance{ID: "o1", App: AppKey{"acme", "other"}, Version: 1, Host: p.Place[0].Host, Memory: 3000})
	if err := h.apply(p); !errors.Is(err, ErrStalePlan) {
		t.Fatalf("apply: %v, want ErrStalePlan", err)
	}
	if err := h.apply(h.plan(app)); err != nil {
		t.Fatalf("replanned: %v", err)
	}
}

func TestConflictErrorMessageIsBounded(t *testing.T) {
	e := &ConflictError{BaseIndex: 3, Index: 9}
	for range 20 {
		e.Conflicts = append(e.Conflicts, Conflict{InstanceID: "i", Host: "h", Reason: "host is gone"})
	}
	msg := e.Error()
	if !strings.Contains(msg, "20 placements no longer fit") || !strings.Contains(msg, "and 15 more") || strings.Count(msg, "host is gone") != 5 {
		t.Errorf("message %q", msg)
	}
}
