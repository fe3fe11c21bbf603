package liveness

import (
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

func TestNext(t *testing.T) {
	s, d := 4*time.Second, 10*time.Second
	tests := []struct {
		from  string
		since time.Duration
		want  string
	}{
		{state.HostReady, time.Second, state.HostReady},
		{state.HostReady, 5 * time.Second, state.HostSuspect},
		{state.HostReady, 11 * time.Second, state.HostDown},
		{state.HostSuspect, time.Second, state.HostReady},
		{state.HostSuspect, 10 * time.Second, state.HostDown},
		{state.HostDown, 5 * time.Second, state.HostDown},
		{state.HostDown, time.Second, state.HostReady},
		{state.HostDraining, time.Hour, state.HostDraining},
		{state.HostDrained, 0, state.HostDrained},
	}
	for _, tt := range tests {
		if got := Next(tt.from, tt.since, s, d); got != tt.want {
			t.Errorf("Next(%s, %s) = %s, want %s", tt.from, tt.since, got, tt.want)
		}
	}
}

func TestObserveKeepsTheNewest(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(Config{Now: func() time.Time { return now }})
	tr.Observe(Report{AgesMs: map[string]int64{"h1": 500}})
	tr.Observe(Report{AgesMs: map[string]int64{"h1": 3000}}) // an older view from another node
	if got := tr.seen["h1"]; !got.Equal(now.Add(-500 * time.Millisecond)) {
		t.Fatalf("seen %v", got)
	}
}
