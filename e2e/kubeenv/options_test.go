package kubeenv

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		err  string // a part of the error; empty: valid
	}{
		{"zero", Options{}, ""},
		{"nodes and fakes", Options{Nodes: 2, FakeNodes: []FakeNode{{Name: "a"}, {Name: "b"}}}, ""},
		{"negative nodes", Options{Nodes: -1}, "Nodes -1"},
		{"negative grace", Options{NodeMonitorGracePeriod: -time.Second}, "NodeMonitorGracePeriod"},
		{"unnamed fake", Options{FakeNodes: []FakeNode{{CPU: "2"}}}, "no name"},
		{"duplicate fakes", Options{FakeNodes: []FakeNode{{Name: "a"}, {Name: "a"}}}, "a used twice"},
		{"fake named like a real node", Options{Nodes: 1, FakeNodes: []FakeNode{{Name: "node-0"}}}, "node-0 used twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.err == "" && err != nil {
				t.Fatalf("Validate: %v, want nil", err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Validate: %v, want an error with %q", err, tc.err)
			}
		})
	}
}

// TestStartRefusesBadOptions: bad options are an error before anything
// starts (no binaries needed, nothing created).
func TestStartRefusesBadOptions(t *testing.T) {
	c, stop, err := StartShared(Options{Nodes: -1})
	defer stop()
	if err == nil || c != nil {
		t.Fatalf("StartShared(Nodes: -1) = %v, %v; want an error", c, err)
	}
}

// TestRealNodesOff: WHARF_KUBE_REAL_NODE=0 refuses real nodes before
// anything starts, and Check skips for it even with WHARF_REQUIRE_KUBE=1.
func TestRealNodesOff(t *testing.T) {
	t.Setenv("WHARF_KUBE_REAL_NODE", "0")
	t.Setenv("WHARF_REQUIRE_KUBE", "1")
	c, stop, err := StartShared(Options{Nodes: 1})
	defer stop()
	if c != nil || !errors.Is(err, ErrUnavailable) || !errors.Is(err, errRealNodesOff) {
		t.Fatalf("StartShared(Nodes: 1) with WHARF_KUBE_REAL_NODE=0 = %v, %v; want ErrUnavailable for real nodes turned off", c, err)
	}
	var skipped bool
	t.Run("Check", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Check(t, err)
	})
	if !skipped {
		t.Fatal("Check did not skip for real nodes turned off")
	}
}
