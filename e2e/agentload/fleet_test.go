package main

import (
	"bufio"
	"errors"
	"io"
	"runtime"
	"slices"
	"testing"
)

// fakeFleet is a fleet whose answers the test sets.
type fakeFleet struct {
	connected, back int
	rtts            []int64
	measuring       bool
	marked, stopped bool
}

func (f *fakeFleet) status() (int, int, error) { return f.connected, f.back, nil }
func (f *fakeFleet) measure() error            { f.measuring = true; return nil }
func (f *fakeFleet) samples() ([]int64, error) {
	if !f.measuring {
		return nil, errors.New("not measuring")
	}
	f.measuring = false
	return f.rtts, nil
}
func (f *fakeFleet) mark() error { f.marked = true; return nil }
func (f *fakeFleet) stop() error { f.stopped = true; return nil }
func (f *fakeFleet) pid() int    { return 0 }

// pipeChild serves f as a child would, over pipes, and returns the
// parent's end.
func pipeChild(t *testing.T, f fleet) *childFleet {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serveChild(f, inR, outW); outW.Close() }()
	t.Cleanup(func() {
		inW.Close()
		if err := <-done; err != nil {
			t.Errorf("serveChild: %v", err)
		}
	})
	return &childFleet{name: "test child", in: inW, out: bufio.NewReader(outR)}
}

// TestChildProtocol drives fleets in "children" through the protocol the
// parent uses, and merges their samples as the parent does.
func TestChildProtocol(t *testing.T) {
	a := &fakeFleet{connected: 3, back: 1, rtts: []int64{500, 100, 300}}
	b := &fakeFleet{connected: 2, back: 2, rtts: []int64{200, 400}}
	fs := []fleet{pipeChild(t, a), pipeChild(t, b)}

	c, bk, err := totals(fs)
	if err != nil || c != 5 || bk != 3 {
		t.Fatalf("totals = %d, %d, %v; want 5, 3, nil", c, bk, err)
	}
	if _, err := fs[0].samples(); err == nil {
		t.Fatal("samples before measure: no error from the child")
	}
	if err := fleets(fs, fleet.measure); err != nil {
		t.Fatal(err)
	}
	var all []int64
	for _, f := range fs {
		s, err := f.samples()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s...)
	}
	slices.Sort(all)
	if want := []int64{100, 200, 300, 400, 500}; !slices.Equal(all, want) {
		t.Fatalf("merged samples %v, want %v", all, want)
	}
	if err := fleets(fs, fleet.mark); err != nil || !a.marked || !b.marked {
		t.Fatalf("mark: %v (marked %v, %v)", err, a.marked, b.marked)
	}
	if err := fleets(fs, fleet.stop); err != nil || !a.stopped || !b.stopped {
		t.Fatalf("stop: %v (stopped %v, %v)", err, a.stopped, b.stopped)
	}
}

func TestChildUnknownCommand(t *testing.T) {
	c := pipeChild(t, &fakeFleet{})
	if _, err := c.call("launch"); err == nil {
		t.Fatal("an unknown command got no error")
	}
	if n, _, err := c.status(); err != nil || n != 0 {
		t.Fatalf("status after a bad command: %d, %v", n, err)
	}
}

func TestEnvFlag(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"GOMEMLIMIT=400MiB", true},
		{"GODEBUG=a=0,b=1", true},
		{"EMPTY=", true},
		{"GOGC", false},
		{"=1", false},
	}
	for _, tt := range tests {
		var e envFlag
		if err := e.Set(tt.in); (err == nil) != tt.ok {
			t.Errorf("Set(%q): %v, want ok %v", tt.in, err, tt.ok)
		} else if tt.ok && (len(e) != 1 || e[0] != tt.in) {
			t.Errorf("Set(%q) kept %v", tt.in, e)
		}
	}
}

func TestCPUCount(t *testing.T) {
	all := runtime.NumCPU()
	for list, want := range map[string]int{"1": 1, "0-3": 4, "1,3-5": 4, "0,2": 2, "": all, "x": all, "3-1": all} {
		if got := cpuCount(list); got != want {
			t.Errorf("cpuCount(%q) = %d, want %d", list, got, want)
		}
	}
}
