package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestInstancesBlockingQuery: a blocking query on one app's instances is
// answered when they change (written, removed, their host down) and not
// when another app's instances, another app or another host change, nor
// when the app changes in a way its list does not show.
func TestInstancesBlockingQuery(t *testing.T) {
	f := newFixture(t)
	f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 1, Host: "host1"}}})
	f.applyState(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-other", Pool: "aws-bj", SecretHash: "sh", ExpiresAt: time.Now().Add(time.Hour), MaxUses: 1}, Time: time.Now()})
	f.applyState(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-other", SecretHash: "sh", Host: state.Host{ID: "host2", Name: "n2"}, Time: time.Now()})
	const path = "/v1/apps/web/instances"
	_, _, hdr := f.do("acme/viewer", "GET", path, nil)
	idx, err := strconv.ParseUint(hdr.Get("X-Wharf-Index"), 10, 64)
	if err != nil || idx == 0 {
		t.Fatalf("X-Wharf-Index %q", hdr.Get("X-Wharf-Index"))
	}

	steps := []struct {
		name   string
		change func()
		wake   bool
		check  func([]apitypes.Instance) bool // on a woken answer
	}{
		{"another app's instance placed on the same host", func() {
			f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "b-1", Tenant: "beta", App: "web", Version: 1, Host: "host1"}}})
		}, false, nil},
		{"another app's instance reported", func() {
			f.applyState(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "host1", Updates: []state.InstanceUpdate{{ID: "b-1", State: state.InstanceRunning, Ready: true}}})
		}, false, nil},
		{"another app updated", func() {
			f.ok("beta/developer", "PUT", "/v1/apps/web", apitypes.AppSpec{Name: "web", Image: "web:2"}, nil)
		}, false, nil},
		{"its instance reported running", func() {
			f.applyState(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "host1", Updates: []state.InstanceUpdate{{ID: "i-1", State: state.InstanceRunning, Ready: true}}})
		}, true, func(is []apitypes.Instance) bool { return len(is) == 1 && is[0].State == state.InstanceRunning }},
		// Writes of the app that its list of instances does not show: the
		// answer is the one the watcher holds.
		{"its pending explanation", func() {
			f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Pending: []state.AppPending{{Tenant: "acme", App: "web", Reason: "no capacity"}}})
		}, false, nil},
		{"its count, before anything is placed", func() {
			f.applyState(state.AppScaleType, &state.AppScaleRequest{Tenant: "acme", Name: "web", Instances: 3, Time: time.Now()})
		}, false, nil},
		{"another app's pending explanation", func() {
			f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Pending: []state.AppPending{{Tenant: "beta", App: "web", Reason: "no capacity"}}})
		}, false, nil},
		{"another host down", func() {
			f.applyState(state.HostStateType, &state.HostStateRequest{ID: "host2", State: state.HostDown, Time: time.Now()})
		}, false, nil},
		{"its host down", func() {
			f.applyState(state.HostStateType, &state.HostStateRequest{ID: "host1", State: state.HostDown, Time: time.Now()})
		}, true, func(is []apitypes.Instance) bool { return len(is) == 1 && is[0].State == apitypes.InstanceLost }},
		{"its host ready again", func() {
			f.applyState(state.HostStateType, &state.HostStateRequest{ID: "host1", State: state.HostReady, Time: time.Now()})
		}, true, func(is []apitypes.Instance) bool { return len(is) == 1 && is[0].State == state.InstanceRunning }},
		{"its instance stopped", func() {
			f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Stop: []state.InstanceStop{{ID: "i-1", Reason: "test"}}})
		}, true, func(is []apitypes.Instance) bool { return len(is) == 1 && is[0].Desired == state.DesiredStop }},
		{"its instance removed", func() {
			f.applyState(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "host1", Updates: []state.InstanceUpdate{{ID: "i-1", State: state.InstanceStopped}}})
		}, true, func(is []apitypes.Instance) bool { return len(is) == 0 }},
	}
	for _, s := range steps {
		wait := "300ms"
		if s.wake {
			wait = "10s"
		}
		type answer struct {
			body []byte
			idx  uint64
			took time.Duration
		}
		done := make(chan answer, 1)
		go func() {
			start := time.Now()
			_, body, h := f.do("acme/viewer", "GET", fmt.Sprintf("%s?index=%d&wait=%s", path, idx, wait), nil)
			n, _ := strconv.ParseUint(h.Get("X-Wharf-Index"), 10, 64)
			done <- answer{body, n, time.Since(start)}
		}()
		time.Sleep(50 * time.Millisecond) // let the query block
		s.change()
		var a answer
		select {
		case a = <-done:
		case <-time.After(8 * time.Second):
			t.Fatalf("%s: no answer within 8 s", s.name)
		}
		if !s.wake {
			if a.idx != idx || a.took < 300*time.Millisecond {
				t.Fatalf("%s: answered after %s with index %d (was %d): %s", s.name, a.took, a.idx, idx, a.body)
			}
			continue
		}
		var is []apitypes.Instance
		if err := json.Unmarshal(a.body, &is); err != nil {
			t.Fatalf("%s: %s: %v", s.name, a.body, err)
		}
		if a.idx <= idx || a.took >= 5*time.Second || !s.check(is) {
			t.Fatalf("%s: answered after %s with index %d (was %d): %s", s.name, a.took, a.idx, idx, strings.TrimSpace(string(a.body)))
		}
		idx = a.idx
	}
}

// TestInstancesAnswerHasItsLength: an instances answer, shared between
// watchers and past net/http's 2 KB buffer, goes out with its length
// rather than in chunks (fewer writes for 1,000 woken watchers).
func TestInstancesAnswerHasItsLength(t *testing.T) {
	f := newFixture(t)
	var place []state.Instance
	for n := range 40 {
		place = append(place, state.Instance{ID: fmt.Sprintf("i-%02d", n), Tenant: "acme", App: "web", Version: 1, Host: "host1"})
	}
	f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: place})
	code, body, hdr := f.do("acme/viewer", "GET", "/v1/apps/web/instances", nil)
	if code != 200 || len(body) < 4<<10 {
		t.Fatalf("%d, %d bytes: want 200 and an answer past 4 KB", code, len(body))
	}
	if cl := hdr.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Fatalf("Content-Length %q for a body of %d bytes", cl, len(body))
	}
}

// TestInstancesWatchSkipsTheAppsRecord: what a query of an app's
// instances watches does not fire on a write of the app alone (its count,
// before anything is placed), which its list does not show, and does
// fire when the app is deleted, even one without instances.
func TestInstancesWatchSkipsTheAppsRecord(t *testing.T) {
	f := newFixture(t)
	f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 1, Host: "host1"}}})
	f.ok("acme/developer", "PUT", "/v1/apps/idle", apitypes.AppSpec{Name: "idle", Image: "idle:1", Instances: new(int)}, nil)
	watch := func(app string) memdb.WatchSet {
		ws := memdb.NewWatchSet()
		if _, _, err := appInstancesAt(ws, f.api.cfg.Store.Snapshot(), "acme", app); err != nil {
			t.Fatal(err)
		}
		return ws
	}
	web, idle := watch("web"), watch("idle")
	f.applyState(state.AppScaleType, &state.AppScaleRequest{Tenant: "acme", Name: "web", Instances: 3, Time: time.Now()})
	if !web.Watch(time.After(50 * time.Millisecond)) {
		t.Fatal("a new count, nothing placed yet, woke the watchers of the app's instances")
	}
	f.ok("acme/developer", "DELETE", "/v1/apps/idle", nil, nil)
	if idle.Watch(time.After(5 * time.Second)) {
		t.Fatal("the deletion of an app without instances did not wake its watchers")
	}
}
