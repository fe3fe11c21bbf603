package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// appStatus is an app's rollout: how many instances of its current version
// are placed, started and ready against how many are wanted, and why the
// others are not. `app status` prints it and deploys wait on it.
type appStatus struct {
	Name    string `json:"name"`
	Tenant  string `json:"tenant"`
	Version int    `json:"version"`
	// CanaryFrom is the version a canary runs beside (0: no canary).
	CanaryFrom int `json:"canary_from,omitempty"`
	// Instances is the app's desired instance count.
	Instances int `json:"instances"`
	// Wanted is how many instances of Version are wanted now: Instances,
	// or the canary count while a canary runs.
	Wanted int `json:"wanted"`
	// Placed, Started and Ready count the instances of Version that are
	// desired to run: all of them, those running, those ready.
	Placed  int `json:"placed"`
	Started int `json:"started"`
	Ready   int `json:"ready"`
	// Others counts instances of other versions still desired to run.
	Others int `json:"other_versions"`
	// Stopping counts instances told to stop that have not stopped yet.
	Stopping int `json:"stopping"`
	// Pending explains why some instances cannot be placed.
	Pending string `json:"pending,omitempty"`
	// Done: the rollout is complete (see rolledOut).
	Done bool `json:"done"`
	// Problems lists the instances desired to run that are not running or
	// not ready, or that report a reason, with the driver's explanation.
	Problems []instanceProblem `json:"problems"`
}

// instanceProblem is one instance that is not (yet) what it should be.
type instanceProblem struct {
	ID       string `json:"id"`
	Host     string `json:"host,omitempty"`
	Version  int    `json:"version"`
	State    string `json:"state"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
}

// crashLoopRestarts is how many restarts of a crashing instance a deploy
// waits through before it gives up: a process may fail once or twice while
// what it depends on comes up.
const crashLoopRestarts = 3

// gone reports whether an instance has stopped for good.
func gone(i apitypes.Instance) bool {
	switch i.State {
	case "stopped", "failed", "lost":
		return true
	}
	return false
}

func summarize(a *apitypes.App, is []apitypes.Instance) appStatus {
	st := appStatus{Name: a.Name, Tenant: a.Tenant, Version: a.Version, CanaryFrom: a.CanaryFrom, Instances: deref(a.Instances), Pending: a.Pending, Problems: []instanceProblem{}}
	st.Wanted = st.Instances
	if a.CanaryFrom != 0 {
		n := 1
		if s := a.Strategy; s != nil && s.Canary > 0 {
			n = s.Canary
		}
		st.Wanted = min(st.Wanted, n)
	}
	for _, i := range is {
		if i.Desired != "run" {
			if !gone(i) {
				st.Stopping++
			}
			continue
		}
		if i.Version != a.Version {
			st.Others++
		} else {
			st.Placed++
			if i.State == "running" {
				st.Started++
				if i.Ready {
					st.Ready++
				}
			}
		}
		if i.State != "running" || !i.Ready || i.Reason != "" {
			st.Problems = append(st.Problems, instanceProblem{ID: i.ID, Host: i.HostName, Version: i.Version, State: i.State, Ready: i.Ready,
				Restarts: i.Restarts, Reason: i.Reason, Message: i.Message})
		}
	}
	sort.SliceStable(st.Problems, func(x, y int) bool {
		p, q := st.Problems[x], st.Problems[y]
		if p.Version != q.Version {
			return p.Version > q.Version
		}
		return p.ID < q.ID
	})
	st.Done = st.rolledOut()
	return st
}

// rolledOut: the current version has the wanted instances running and
// ready and no more desired to run, and no instance of another version is
// still desired to run (during a canary: the canary instances are ready).
// Scaled to zero: every instance has stopped.
func (s *appStatus) rolledOut() bool {
	switch {
	case s.Wanted == 0:
		return s.Placed == 0 && s.Others == 0 && s.Stopping == 0
	case s.CanaryFrom != 0:
		return s.Ready >= s.Wanted
	}
	return s.Ready >= s.Wanted && s.Placed <= s.Wanted && s.Others == 0
}

// hopeless returns the instance of the current version that shows the
// rollout cannot succeed: it cannot be pulled, started or placed on any
// host, or it keeps crashing.
func (s *appStatus) hopeless() (instanceProblem, bool) {
	if s.Wanted == 0 {
		return instanceProblem{}, false // stopping: what failed to start goes too
	}
	for _, p := range s.Problems {
		if p.Version != s.Version || p.Ready {
			continue
		}
		switch {
		case p.Reason == apitypes.ReasonImagePull, p.Reason == apitypes.ReasonStartFailed, p.Reason == apitypes.ReasonNoDriver:
			return p, true
		case p.Reason == apitypes.ReasonCrashLoop && p.Restarts >= crashLoopRestarts:
			return p, true
		case p.Reason == "" && p.State == "failed":
			return p, true
		case p.Reason == "" && p.Message != "" && p.Restarts >= crashLoopRestarts:
			// A hub that does not classify failures yet: the same signs.
			return p, true
		}
	}
	return instanceProblem{}, false
}

// explained returns the first problem that comes with an explanation.
func (s *appStatus) explained() (instanceProblem, bool) {
	for _, p := range s.Problems {
		if p.why() != "" {
			return p, true
		}
	}
	return instanceProblem{}, false
}

// counts is the one-line progress of a rollout.
func (s *appStatus) counts() string {
	var b strings.Builder
	what := fmt.Sprintf("version %d", s.Version)
	if s.CanaryFrom != 0 {
		what = fmt.Sprintf("canary version %d (beside %d)", s.Version, s.CanaryFrom)
	}
	if s.Wanted == 0 {
		fmt.Fprintf(&b, "%s: scaling to 0, %s left", what, plural(s.Placed+s.Others+s.Stopping, "instance"))
		return b.String()
	}
	fmt.Fprintf(&b, "%s: %d/%d placed, %d/%d started, %d/%d ready", what, s.Placed, s.Wanted, s.Started, s.Wanted, s.Ready, s.Wanted)
	if s.Others > 0 && s.CanaryFrom == 0 {
		fmt.Fprintf(&b, "; %s of other versions still running", plural(s.Others, "instance"))
	}
	if s.Stopping > 0 {
		fmt.Fprintf(&b, "; %s stopping", plural(s.Stopping, "instance"))
	}
	if s.Pending != "" {
		fmt.Fprintf(&b, "; pending: %s", s.Pending)
	}
	return b.String()
}

// line describes one problem: "hello-1a2b (version 2 on a1): starting,
// start_failed: exec: ... (3 restarts)".
func (p instanceProblem) line() string {
	where := fmt.Sprintf("version %d", p.Version)
	if p.Host != "" {
		where += " on " + p.Host
	}
	st := p.State
	if p.State == "running" && !p.Ready {
		st = "running, not ready"
	}
	s := fmt.Sprintf("%s (%s): %s", p.ID, where, st)
	if why := p.why(); why != "" {
		s += ": " + why
	}
	if p.Restarts > 0 {
		s += fmt.Sprintf(" (%s)", plural(p.Restarts, "restart"))
	}
	return s
}

// why is the reason code and the driver's message, whichever are known.
func (p instanceProblem) why() string {
	switch {
	case p.Reason != "" && p.Message != "":
		return p.Reason + ": " + p.Message
	case p.Reason != "":
		return p.Reason
	}
	return p.Message
}

// plural writes a count and a noun: "1 instance", "2 instances".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
