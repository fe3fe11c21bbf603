package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// snap is what the fake hub holds at one index: the app and its instances.
type snap struct {
	app apitypes.App
	is  []apitypes.Instance
}

// rolloutHub serves one app whose state moves through snaps: each blocking
// query (?index=N at the current index) moves it one step, as an agent's
// report would. At the last step a blocking query waits a little and
// answers the same index, like the hub's ?wait running out.
type rolloutHub struct {
	mu       sync.Mutex
	snaps    []snap
	k        int // current step, from 0; the index is k+1
	blocking int // blocking queries seen
	gets     int // requests of any kind to the app's endpoints
	write    apitypes.App
	noLeader int // answer this many reads of the instances with 503
}

func newRolloutHub(t *testing.T, write apitypes.App, snaps ...snap) (*rolloutHub, string) {
	h := &rolloutHub{snaps: snaps, write: write}
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, idx int, v any) {
		w.Header().Set("X-Wharf-Index", strconv.Itoa(idx))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	writeApp := func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		a := h.write
		h.mu.Unlock()
		code := http.StatusOK
		if r.Method == http.MethodPut {
			code = http.StatusCreated
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(a)
	}
	mux.HandleFunc("PUT /v1/apps/{name}", writeApp)
	mux.HandleFunc("POST /v1/apps/{name}/scale", writeApp)
	mux.HandleFunc("POST /v1/apps/{name}/rollback", writeApp)
	mux.HandleFunc("POST /v1/apps/{name}/promote", writeApp)
	mux.HandleFunc("GET /v1/apps/{name}/instances", func(w http.ResponseWriter, r *http.Request) {
		idx, _ := strconv.Atoi(r.URL.Query().Get("index"))
		h.mu.Lock()
		h.gets++
		if h.noLeader > 0 {
			h.noLeader--
			h.mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(apitypes.Error{Message: "no leader"})
			return
		}
		if idx > 0 {
			h.blocking++
			if r.URL.Query().Get("wait") == "" {
				t.Errorf("blocking query without wait: %s", r.URL.RawQuery)
			}
			if idx >= h.k+1 {
				if h.k+1 < len(h.snaps) {
					h.k++
				} else {
					h.mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					h.mu.Lock()
				}
			}
		}
		k := h.k
		is := h.snaps[k].is
		h.mu.Unlock()
		if is == nil {
			is = []apitypes.Instance{}
		}
		answer(w, k+1, is)
	})
	mux.HandleFunc("GET /v1/apps/{name}", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.gets++
		k := h.k
		a := h.snaps[k].app
		h.mu.Unlock()
		answer(w, k+1, a)
	})
	mux.HandleFunc("GET /v1/apps/{name}/history", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 1, []apitypes.Deployment{{Kind: "revert", Version: 1, From: 2, Message: "version 2 did not become healthy within 1m0s"}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return h, srv.URL
}

func app(version, instances int) apitypes.App {
	return apitypes.App{AppSpec: apitypes.AppSpec{Name: "hello", Instances: &instances}, Tenant: "acme", Version: version}
}

func inst(id string, version int, state string, ready bool) apitypes.Instance {
	return apitypes.Instance{ID: id, HostName: "a1", Version: version, State: state, Ready: ready, Desired: "run"}
}

func failing(id string, version int, reason, msg string, restarts int) apitypes.Instance {
	i := inst(id, version, "starting", false)
	i.Reason, i.Message, i.Restarts = reason, msg, restarts
	return i
}

func stopping(i apitypes.Instance) apitypes.Instance {
	i.Desired = "stop"
	return i
}

func TestDeployWaitsUntilReady(t *testing.T) {
	h, addr := newRolloutHub(t, app(1, 2),
		snap{app(1, 2), nil},
		snap{app(1, 2), []apitypes.Instance{inst("hello-1", 1, "pending", false), inst("hello-2", 1, "pending", false)}},
		snap{app(1, 2), []apitypes.Instance{inst("hello-1", 1, "running", false), inst("hello-2", 1, "starting", false)}},
		snap{app(1, 2), []apitypes.Instance{inst("hello-1", 1, "running", true), inst("hello-2", 1, "running", true)}},
	)
	out, stderr, code := run(t, "", "--addr", addr, "app", "deploy", "hello", "--image", "hello:1", "--instances", "2", "--tenant", "acme")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	want := []string{
		"created app hello version 1",
		"version 1: 0/2 placed, 0/2 started, 0/2 ready",
		"version 1: 2/2 placed, 0/2 started, 0/2 ready",
		"version 1: 2/2 placed, 1/2 started, 0/2 ready",
		"version 1: 2/2 placed, 2/2 started, 2/2 ready",
		"app hello version 1: 2 instances ready",
	}
	at := 0
	for _, w := range want {
		i := strings.Index(out[at:], w)
		if i < 0 {
			t.Fatalf("stdout lacks %q (in order):\n%s", w, out)
		}
		at += i + len(w)
	}
	if h.blocking < 3 {
		t.Fatalf("%d blocking queries: the deploy should watch with ?index", h.blocking)
	}
}

func TestDeployFailsWithTheReason(t *testing.T) {
	pull := "pull access denied for hello, repository does not exist"
	tests := []struct {
		name    string
		snaps   []snap
		code    int
		errLike []string
	}{
		{"image_pull", []snap{
			{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "pending", false)}},
			{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonImagePull, pull, 0)}},
		}, 1, []string{"cannot run", "hello-1", "image_pull: " + pull}},
		{"start_failed", []snap{
			{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonStartFailed, "exec: /nope: no such file or directory", 0)}},
		}, 1, []string{"start_failed: exec: /nope: no such file or directory"}},
		{"no_driver", []snap{
			{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonNoDriver, "no host in pools [default] runs exec", 0)}},
		}, 1, []string{"no_driver"}},
		{"crash_loop after a few restarts", []snap{
			{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonCrashLoop, "exited with code 1", 1)}},
			{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonCrashLoop, "exited with code 1", 2)}},
			{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonCrashLoop, "exited with code 1", 3)}},
		}, 1, []string{"crash_loop: exited with code 1 (3 restarts)"}},
		{"a crash that recovers", []snap{
			{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonCrashLoop, "exited with code 1", 1)}},
			{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "running", true)}},
		}, 0, nil},
		{"unhealthy waits", []snap{
			{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonUnhealthy, "GET /healthz: 500", 0)}},
			{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "running", true)}},
		}, 0, nil},
		{"a failed instance of a hub without reasons", []snap{
			{app(1, 1), []apitypes.Instance{failing("hello-1", 1, "", "exec: /nope: no such file or directory", 1)}},
			{app(1, 1), []apitypes.Instance{func() apitypes.Instance {
				i := inst("hello-1", 1, "failed", false)
				i.Message = "exited 6 times in a row within 10s"
				return i
			}()}},
		}, 1, []string{"failed: exited 6 times", "before that: exec: /nope: no such file or directory"}},
		{"reverted", []snap{
			{app(2, 1), []apitypes.Instance{inst("hello-1", 1, "running", true), inst("hello-2", 2, "starting", false)}},
			{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "running", true)}},
		}, 1, []string{"no longer at version 2 but at version 1", "did not become healthy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := newRolloutHub(t, tt.snaps[0].app, tt.snaps...)
			out, stderr, code := run(t, "", "--addr", addr, "app", "deploy", "hello", "--image", "hello:1", "--tenant", "acme", "--timeout", "20s")
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, stderr)
			}
			for _, w := range tt.errLike {
				if !strings.Contains(stderr, w) {
					t.Fatalf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestDeployTimeoutAndDetach(t *testing.T) {
	_, addr := newRolloutHub(t, app(1, 1), snap{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonUnhealthy, "GET /healthz: 500", 0)}})
	start := time.Now()
	_, stderr, code := run(t, "", "--addr", addr, "app", "deploy", "hello", "--image", "hello:1", "--tenant", "acme", "--timeout", "300ms")
	if code != 1 || !strings.Contains(stderr, "timed out after 300ms") || !strings.Contains(stderr, "unhealthy: GET /healthz: 500") || !strings.Contains(stderr, "wharf app status hello --tenant acme") {
		t.Fatalf("timeout: exit %d\n%s", code, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a 300ms timeout took %s", d)
	}
	// A fresh hub: the timed-out watcher's last request may still arrive.
	h, addr2 := newRolloutHub(t, app(1, 1), snap{app(1, 1), []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonUnhealthy, "GET /healthz: 500", 0)}})
	out, stderr, code := run(t, "", "--addr", addr2, "app", "deploy", "hello", "--image", "hello:1", "--tenant", "acme", "--detach")
	if code != 0 || strings.TrimSpace(out) != "created app hello version 1" || h.gets != 0 {
		t.Fatalf("--detach: exit %d, %d reads\n%s%s", code, h.gets, out, stderr)
	}
}

// With -o json, stdout is the app's JSON alone; the progress goes to stderr.
func TestDeployJSONOutputStaysMachineReadable(t *testing.T) {
	_, addr := newRolloutHub(t, app(1, 1),
		snap{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "pending", false)}},
		snap{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "running", true)}},
	)
	out, stderr, code := run(t, "", "--addr", addr, "-o", "json", "app", "deploy", "hello", "--image", "hello:1", "--tenant", "acme")
	var got apitypes.App
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Name != "hello" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	if !strings.Contains(stderr, "1/1 ready") {
		t.Fatalf("progress not on stderr: %q", stderr)
	}
}

func TestScaleWaits(t *testing.T) {
	t.Run("to zero: until every instance stopped", func(t *testing.T) {
		_, addr := newRolloutHub(t, app(1, 0),
			snap{app(1, 0), []apitypes.Instance{stopping(inst("hello-1", 1, "running", true)), stopping(inst("hello-2", 1, "running", true))}},
			snap{app(1, 0), []apitypes.Instance{stopping(inst("hello-1", 1, "stopping", false)), stopping(inst("hello-2", 1, "stopped", false))}},
			snap{app(1, 0), nil},
		)
		out, stderr, code := run(t, "", "--addr", addr, "app", "scale", "hello", "0", "--tenant", "acme")
		if code != 0 || !strings.Contains(out, "version 1: scaling to 0, 2 instances left\n") || !strings.Contains(out, "version 1: scaling to 0, 1 instance left\n") || !strings.Contains(out, "scaling to 0, 0 instances left\n") || !strings.HasSuffix(out, "app hello: every instance stopped\n") {
			t.Fatalf("exit %d\n%s%s", code, out, stderr)
		}
	})
	t.Run("to one", func(t *testing.T) {
		_, addr := newRolloutHub(t, app(1, 1),
			snap{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "running", true), inst("hello-2", 1, "running", true)}},
			snap{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "running", true), stopping(inst("hello-2", 1, "running", true))}},
		)
		out, stderr, code := run(t, "", "--addr", addr, "app", "scale", "hello", "1", "--tenant", "acme")
		if code != 0 || !strings.HasPrefix(out, "scaled app hello to 1 instance\n") || !strings.Contains(out, "version 1: 2/1 placed") || !strings.Contains(out, "app hello version 1: 1 instance ready") {
			t.Fatalf("exit %d\n%s%s", code, out, stderr)
		}
	})
}

func TestCanaryDoneWhenCanariesReady(t *testing.T) {
	canary := app(2, 3)
	canary.CanaryFrom = 1
	canary.Strategy = &apitypes.Strategy{Type: "canary", Canary: 1}
	old := []apitypes.Instance{inst("hello-a", 1, "running", true), inst("hello-b", 1, "running", true), inst("hello-c", 1, "running", true)}
	_, addr := newRolloutHub(t, canary,
		snap{canary, old},
		snap{canary, append(old[:3:3], inst("hello-d", 2, "running", true))},
	)
	out, stderr, code := run(t, "", "--addr", addr, "app", "deploy", "hello", "--image", "hello:2", "--tenant", "acme")
	if code != 0 || !strings.Contains(out, "canary version 2 (beside 1): 1/1 placed, 1/1 started, 1/1 ready") || !strings.Contains(out, "app promote hello") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}

func TestStatusSaysWhy(t *testing.T) {
	pending := "1 of 3 instances cannot be placed: no capacity in pool \"p1\""
	a := app(2, 3)
	a.Pending = pending
	is := []apitypes.Instance{
		inst("hello-a", 2, "running", true),
		failing("hello-b", 2, apitypes.ReasonImagePull, "manifest unknown", 0),
		inst("hello-c", 1, "running", true),
		stopping(inst("hello-d", 1, "stopping", false)),
	}
	_, addr := newRolloutHub(t, a, snap{a, is})
	out, stderr, code := run(t, "", "--addr", addr, "-o", "json", "app", "status", "hello", "--tenant", "acme")
	var st appStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("exit %d %q %q", code, out, stderr)
	}
	if st.Version != 2 || st.Wanted != 3 || st.Placed != 2 || st.Started != 1 || st.Ready != 1 || st.Others != 1 || st.Stopping != 1 || st.Pending != pending || st.Done ||
		len(st.Problems) != 1 || st.Problems[0].ID != "hello-b" || st.Problems[0].Reason != apitypes.ReasonImagePull || st.Problems[0].Message != "manifest unknown" {
		t.Fatalf("status %+v", st)
	}
	if strings.Contains(out, `"image"`) {
		t.Fatalf("status JSON carries the spec:\n%s", out)
	}
	out, _, code = run(t, "", "--addr", addr, "app", "status", "hello", "--tenant", "acme")
	for _, w := range []string{"Ready:", "Pending:", pending, "hello-b (version 2 on a1): starting: image_pull: manifest unknown", "1 instance still running"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Fatalf("status table lacks %q:\n%s", w, out)
		}
	}
}

func TestInstancesAndVersionsTables(t *testing.T) {
	long := strings.Repeat("x", 200)
	a := app(2, 1)
	is := []apitypes.Instance{
		stopping(inst("hello-a", 1, "stopping", false)),
		stopping(inst("hello-b", 1, "running", true)),
		failing("hello-c", 2, apitypes.ReasonStartFailed, long, 1),
	}
	_, addr := newRolloutHub(t, a, snap{a, is})
	t.Setenv("COLUMNS", "")
	out, _, code := run(t, "", "--addr", addr, "app", "instances", "hello", "--tenant", "acme")
	if code != 0 || !strings.Contains(out, "MESSAGE") || strings.Contains(out, "stopping (stopping)") || !strings.Contains(out, "running (stopping)") ||
		!strings.Contains(out, "start_failed: xxx") || strings.Contains(out, long[:messageWidth]) || !strings.Contains(out, "…") {
		t.Fatalf("instances:\n%s", out)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps/hello/versions", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]apitypes.AppVersion{{Version: 1, Spec: apitypes.VersionSpec{Image: "hello:1"}}, {Version: 2, Spec: apitypes.VersionSpec{Image: "hello:2"}}, {Version: 3, Spec: apitypes.VersionSpec{Command: []string{"/bin/hello", "-v"}}}})
	})
	mux.HandleFunc("GET /v1/apps/hello", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(app(2, 1)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	out, stderr, code := run(t, "", "--addr", srv.URL, "app", "versions", "hello")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "CURRENT") || strings.HasPrefix(lines[1], "*") || !strings.HasPrefix(lines[2], "*") || !strings.Contains(lines[2], "hello:2") || !strings.Contains(lines[3], "/bin/hello -v") {
		t.Fatalf("versions: %d %q\n%s", code, stderr, out)
	}
}

// TestProgressOneLinePerChange: a watcher that sees the same state twice
// prints it once, and each problem once per change.
func TestProgressOneLinePerChange(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b)
	a := app(1, 1)
	s1 := summarize(&a, []apitypes.Instance{failing("hello-1", 1, apitypes.ReasonUnhealthy, "GET /healthz: 500", 0)})
	p.update(s1)
	p.update(s1)
	s2 := summarize(&a, []apitypes.Instance{inst("hello-1", 1, "running", true)})
	p.update(s2)
	want := fmt.Sprintf("  hello-1 (version 1 on a1): starting: unhealthy: GET /healthz: 500\n%s\n%s\n", s1.counts(), s2.counts())
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// A hub without a leader for a moment does not end the watch.
func TestDeployRidesOutNoLeader(t *testing.T) {
	h, addr := newRolloutHub(t, app(1, 1),
		snap{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "pending", false)}},
		snap{app(1, 1), []apitypes.Instance{inst("hello-1", 1, "running", true)}},
	)
	h.mu.Lock()
	h.noLeader = 1
	h.mu.Unlock()
	out, stderr, code := run(t, "", "--addr", addr, "app", "deploy", "hello", "--image", "hello:1", "--tenant", "acme")
	if code != 0 || !strings.Contains(out, "(retrying: no leader)") || !strings.Contains(out, "1 instance ready") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}

// A health check that fails while the app starts (no reason yet: the
// agent's grace is not over) is progress, not a problem line.
func TestProgressQuietWhileStarting(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b)
	a := app(1, 1)
	starting := inst("hello-1", 1, "running", false)
	starting.Message = `health check: Get "http://127.0.0.1:1/healthz": EOF`
	s := summarize(&a, []apitypes.Instance{starting})
	p.update(s)
	if want := s.counts() + "\n"; b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// Scaling to 0 stops what could not start: its failures do not fail the
// scale.
func TestScaleToZeroIgnoresFailures(t *testing.T) {
	st := appStatus{Version: 1, Wanted: 0, Problems: []instanceProblem{{ID: "hello-1", Version: 1, State: "starting", Reason: apitypes.ReasonStartFailed, Message: "exec: no such file"}}}
	if p, bad := st.hopeless(); bad {
		t.Fatalf("scale to 0 judged hopeless by %+v", p)
	}
	st.Wanted = 1
	if _, bad := st.hopeless(); !bad {
		t.Fatal("a start failure of a wanted instance is not hopeless")
	}
}
