package kubeenv

import (
	"errors"
	"fmt"
	"os"
	"runtime"
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
// anything starts, with an error that Check skips on.
func TestRealNodesOff(t *testing.T) {
	t.Setenv("WHARF_KUBE_REAL_NODE", "0")
	c, stop, err := StartShared(Options{Nodes: 1})
	defer stop()
	if c != nil || !errors.Is(err, ErrUnavailable) || !errors.Is(err, errRealNodesOff) {
		t.Fatalf("StartShared(Nodes: 1) with WHARF_KUBE_REAL_NODE=0 = %v, %v; want ErrUnavailable for real nodes turned off", c, err)
	}
}

// TestNodePrerequisitesMissing: a machine without containerd, runc and the
// rest cannot run real nodes, and says what is missing.
func TestNodePrerequisitesMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := nodePrerequisites()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("nodePrerequisites with an empty PATH: %v, want ErrUnavailable", err)
	}
	if os.Geteuid() == 0 && !strings.Contains(err.Error(), "containerd") {
		t.Fatalf("nodePrerequisites with an empty PATH: %v, want containerd named", err)
	}
}

// TestCheck: what Check makes of an error from Start, by the environment.
func TestCheck(t *testing.T) {
	unavailable := fmt.Errorf("%w: real nodes need root", ErrUnavailable)
	off := fmt.Errorf("%w: %w", ErrUnavailable, errRealNodesOff)
	for _, tc := range []struct {
		name     string
		err      error
		required string // WHARF_REQUIRE_KUBE
		want     string // how Check ends the test: "", "skip" or "fatal"
	}{
		{"no error", nil, "1", ""},
		{"unavailable", unavailable, "", "skip"},
		{"unavailable, required", unavailable, "1", "fatal"},
		{"real nodes off", off, "", "skip"},
		{"real nodes off, required", off, "1", "skip"},
		{"other error", errors.New("etcd exited"), "", "fatal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WHARF_REQUIRE_KUBE", tc.required)
			r := &endRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Check(r, tc.err)
			}()
			<-done
			if r.ended != tc.want {
				t.Fatalf("Check(%v) with WHARF_REQUIRE_KUBE=%q ended the test with %q, want %q", tc.err, tc.required, r.ended, tc.want)
			}
		})
	}
}

// endRecorder records how Check ends a test (a skip or a failure) and
// stops there, as testing.T does.
type endRecorder struct {
	testing.TB
	ended string
}

func (r *endRecorder) Helper() {}

func (r *endRecorder) Skipf(string, ...any) { r.ended = "skip"; runtime.Goexit() }

func (r *endRecorder) Fatal(...any) { r.ended = "fatal"; runtime.Goexit() }
