package gateway

import (
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
)

// TestSignalRps: the rate at which a router signals a burst is where the
// autoscaler panics (twice what the count serves), the first request for
// an app at zero, and none for an app that is not autoscaled or has no
// QPS target to measure against.
func TestSignalRps(t *testing.T) {
	n := func(i int) *int { return &i }
	for _, tc := range []struct {
		name string
		spec state.AppSpec
		want uint32
	}{
		{"not autoscaled", state.AppSpec{Instances: n(3)}, 0},
		{"qps 20 at 1", state.AppSpec{Instances: n(1), Autoscale: &state.Autoscale{QPS: 20}}, 40},
		{"qps 20 at 5", state.AppSpec{Instances: n(5), Autoscale: &state.Autoscale{QPS: 20}}, 200},
		{"cpu only", state.AppSpec{Instances: n(2), Autoscale: &state.Autoscale{CPU: 50}}, 0},
		{"at zero", state.AppSpec{Instances: n(0), Autoscale: &state.Autoscale{CPU: 50}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := signalRps(&state.App{Spec: tc.spec}); got != tc.want {
				t.Fatalf("signalRps = %d, want %d", got, tc.want)
			}
		})
	}
}
