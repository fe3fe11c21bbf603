// Package drivertest is the conformance suite for agent drivers: every
// implementation of driver.Driver, fake or real, runs Run against itself with
// the test app of this package (testapp/) as the instance.
//
// A driver's test supplies a constructor and says how it runs the test app:
//
//	drivertest.Run(t, func(t *testing.T, hostID string) driver.Driver { ... },
//		drivertest.AppUnderTest{Image: drivertest.BuildTestAppImage(t, cli), ContainerPort: 8080, ...})
//
// The constructor is called more than once for one host id: a second call
// stands for a restarted agent on the same host (same data dir, same
// daemon), which must see and adopt what the first one started.
package drivertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
)

// PortEnv says what a driver puts into an instance's PORT variable.
type PortEnv int

const (
	// PortEnvHostPort: PORT is the host port the driver picked (exec: the
	// process listens on the host directly).
	PortEnvHostPort PortEnv = iota
	// PortEnvContainerPort: PORT is the first port's ContainerPort (docker:
	// the app listens inside its network namespace; the host port maps to it).
	PortEnvContainerPort
)

// AppUnderTest says how the driver under test runs testapp and what it
// promises about the instance.
type AppUnderTest struct {
	Image         string   // Spec.Image (docker)
	Command       []string // Spec.Command (exec: the testapp binary)
	ContainerPort int      // Spec.Ports[0].ContainerPort
	PortEnv       PortEnv
	// Hostname is true when the instance's own hostname (uname) is its
	// instance id: docker always, exec only with namespaces.
	Hostname bool
	// RuntimeRestarts is true when the runtime itself restarts an
	// instance that exits (Kubernetes, restartPolicy Always): the suite
	// expects it back, running a new process, with Status.Restarts
	// counting, instead of an exited instance that Start runs again.
	RuntimeRestarts bool
	// MergedStreams is true when the runtime serves stdout and stderr as
	// one stream (the Pod log API): the suite then does not ask which
	// stream a line came on.
	MergedStreams bool
	// Setup, when set, runs once before the suite's tests: what the
	// runtime needs before it can run Image (Kubernetes: the image
	// imported into the cluster's nodes, which pull from no registry).
	Setup func(t *testing.T)
}

// NewDriver returns a driver for hostID. Two calls with the same host id
// stand for one agent before and after a restart.
type NewDriver func(t *testing.T, hostID string) driver.Driver

// Timeouts of the suite: generous for a loaded CI machine, never waited out
// when things work.
const (
	waitTimeout = 20 * time.Second
	pollEvery   = 20 * time.Millisecond
	stopGrace   = 5 * time.Second
)

// Run runs the conformance suite against the driver that newDriver builds.
func Run(t *testing.T, newDriver NewDriver, app AppUnderTest) {
	s := &suite{newDriver: newDriver, app: app}
	if app.Setup != nil {
		app.Setup(t)
	}
	t.Run("ServesHTTP", s.testServesHTTP)
	t.Run("StartIsIdempotent", s.testStartIsIdempotent)
	t.Run("ConcurrentStart", s.testConcurrentStart)
	t.Run("ExitAndRestart", s.testExitAndRestart)
	t.Run("StopRemoves", s.testStopRemoves)
	t.Run("HostsAreIsolated", s.testHostsAreIsolated)
	t.Run("RestartedAgentAdopts", s.testRestartedAgentAdopts)
	t.Run("Logs", s.testLogs)
	t.Run("FollowEndsOnStop", s.testFollowEndsOnStop)
}

type suite struct {
	newDriver NewDriver
	app       AppUnderTest
}

// NewID returns a random DNS label with the given prefix, unique enough for
// host and instance ids of one test run.
func NewID(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func (s *suite) spec(id string, env map[string]string) driver.Spec {
	e := map[string]string{"VERSION": "7"}
	for k, v := range env {
		e[k] = v
	}
	return driver.Spec{
		InstanceID: id,
		Tenant:     "acme",
		App:        "web",
		Version:    7,
		Image:      s.app.Image,
		Command:    slices.Clone(s.app.Command),
		Env:        e,
		CPU:        500,
		Memory:     128,
		Ports:      []driver.Port{{Name: "http", ContainerPort: s.app.ContainerPort}},
	}
}

// newHost returns a driver for a fresh host id.
func (s *suite) newHost(t *testing.T) (driver.Driver, string) {
	host := NewID("host-")
	return s.newDriver(t, host), host
}

// start starts spec on d and registers its Stop as cleanup.
func start(t *testing.T, d driver.Driver, spec driver.Spec) driver.Status {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.Stop(ctx, spec.InstanceID, stopGrace); err != nil {
			t.Errorf("cleanup: stop %s: %v", spec.InstanceID, err)
		}
	})
	st, err := d.Start(ctx(t), spec)
	if err != nil {
		t.Fatalf("start %s: %v", spec.InstanceID, err)
	}
	if st.State != driver.StateRunning {
		t.Fatalf("start %s: state %q, want running", spec.InstanceID, st.State)
	}
	return st
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

// WaitFor polls cond until it returns true or the deadline passes, then fails
// with the last explanation cond gave.
func WaitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v: %s", timeout, why)
		}
		time.Sleep(pollEvery)
	}
}

var httpClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

func get(addr, path string) (int, string, error) {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// serve waits until the instance answers 200 on path and returns the body.
func serve(t *testing.T, addr, path string) string {
	t.Helper()
	var body string
	WaitFor(t, waitTimeout, func() (bool, string) {
		code, b, err := get(addr, path)
		if err != nil {
			return false, fmt.Sprintf("GET %s%s: %v", addr, path, err)
		}
		if code != http.StatusOK {
			return false, fmt.Sprintf("GET %s%s: %d %s", addr, path, code, b)
		}
		body = b
		return true, ""
	})
	return body
}

// field returns the value of key=value in the test app's answer to /.
func field(body, key string) string {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 {
		t.Fatalf("address %q: bad port", addr)
	}
	return n
}

func (s *suite) testServesHTTP(t *testing.T) {
	t.Parallel()
	d, _ := s.newHost(t)
	id := NewID("i-")
	greeting := "hello, wharf = 1 & 2"
	before := time.Now().Add(-time.Second)
	st := start(t, d, s.spec(id, map[string]string{"GREETING": greeting}))

	if st.InstanceID != id || st.Tenant != "acme" || st.App != "web" || st.Version != 7 {
		t.Errorf("status names %q/%q/%q/%d, want %s/acme/web/7", st.InstanceID, st.Tenant, st.App, st.Version, id)
	}
	if st.StartedAt.Before(before) || st.StartedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("StartedAt %v is not about now", st.StartedAt)
	}
	port := addrPort(t, st.Address)
	if s.app.ContainerPort != 0 && st.Ports[s.app.ContainerPort] != port {
		t.Errorf("Ports %v: container port %d is not on address port %d", st.Ports, s.app.ContainerPort, port)
	}
	if !slices.Contains(mapValues(st.Ports), port) {
		t.Errorf("Ports %v do not hold the address port %d", st.Ports, port)
	}

	body := serve(t, st.Address, "/")
	if got := field(body, "version"); got != "7" {
		t.Errorf("version=%q in %q, want 7", got, body)
	}
	if got := field(body, "instance"); got != id {
		t.Errorf("instance=%q in %q, want %s", got, body, id)
	}
	if s.app.Hostname {
		if got := field(body, "hostname"); got != id {
			t.Errorf("hostname=%q in %q, want the instance id %s", got, body, id)
		}
	}
	if got := serve(t, st.Address, "/env?k=GREETING"); got != greeting {
		t.Errorf("GREETING=%q, want %q", got, greeting)
	}
	wantPort := port
	if s.app.PortEnv == PortEnvContainerPort {
		wantPort = s.app.ContainerPort
	}
	if got := serve(t, st.Address, "/env?k=PORT"); got != strconv.Itoa(wantPort) {
		t.Errorf("PORT=%q, want %d", got, wantPort)
	}
	serve(t, st.Address, "/healthz")

	in, err := d.Inspect(ctx(t), id)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	if in.State != driver.StateRunning || !in.StartedAt.Equal(st.StartedAt) || in.Address != st.Address {
		t.Errorf("inspect %+v differs from start %+v", in, st)
	}
	ls := list(t, d)
	if got, ok := ls[id]; !ok || got.State != driver.StateRunning {
		t.Errorf("list %v: %s missing or not running", ls, id)
	}
}

func mapValues(m map[int]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func list(t *testing.T, d driver.Driver) map[string]driver.Status {
	t.Helper()
	ls, err := d.List(ctx(t))
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	m := make(map[string]driver.Status, len(ls))
	for _, st := range ls {
		if _, dup := m[st.InstanceID]; dup {
			t.Errorf("list reports %s twice", st.InstanceID)
		}
		m[st.InstanceID] = st
	}
	return m
}

func (s *suite) testStartIsIdempotent(t *testing.T) {
	t.Parallel()
	d, _ := s.newHost(t)
	spec := s.spec(NewID("i-"), nil)
	st1 := start(t, d, spec)
	boot1 := field(serve(t, st1.Address, "/"), "boot")

	st2, err := d.Start(ctx(t), spec)
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	if !st2.StartedAt.Equal(st1.StartedAt) || st2.Address != st1.Address || st2.State != driver.StateRunning {
		t.Errorf("second start restarted it: %+v, then %+v", st1, st2)
	}
	if boot2 := field(serve(t, st2.Address, "/"), "boot"); boot2 != boot1 {
		t.Errorf("boot token changed from %s to %s: the process was restarted", boot1, boot2)
	}
}

func (s *suite) testConcurrentStart(t *testing.T) {
	t.Parallel()
	d, _ := s.newHost(t)
	spec := s.spec(NewID("i-"), nil)
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, stopGrace) })
	const n = 4
	var wg sync.WaitGroup
	sts := make([]driver.Status, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { sts[i], errs[i] = d.Start(ctx(t), spec) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if !sts[i].StartedAt.Equal(sts[0].StartedAt) || sts[i].State != driver.StateRunning {
			t.Errorf("start %d: %+v, start 0: %+v: one instance, one start expected", i, sts[i], sts[0])
		}
	}
	serve(t, sts[0].Address, "/")
	if got := len(list(t, d)); got != 1 {
		t.Errorf("list has %d instances, want 1", got)
	}
}

func (s *suite) testExitAndRestart(t *testing.T) {
	t.Parallel()
	d, _ := s.newHost(t)
	spec := s.spec(NewID("i-"), nil)
	st := start(t, d, spec)
	boot1 := field(serve(t, st.Address, "/"), "boot")
	if _, _, err := get(st.Address, "/exit?code=3"); err != nil {
		t.Logf("GET /exit: %v (the process may have gone first)", err)
	}
	if s.app.RuntimeRestarts {
		s.runtimeRestarts(t, d, spec, boot1)
		return
	}

	var ex driver.Status
	WaitFor(t, waitTimeout, func() (bool, string) {
		var err error
		ex, err = d.Inspect(ctx(t), spec.InstanceID)
		return err == nil && ex.State == driver.StateExited, fmt.Sprintf("inspect: %+v, %v", ex, err)
	})
	if ex.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", ex.ExitCode)
	}
	if ex.FinishedAt.IsZero() || ex.FinishedAt.Before(ex.StartedAt) {
		t.Errorf("FinishedAt %v, StartedAt %v", ex.FinishedAt, ex.StartedAt)
	}
	if got := list(t, d)[spec.InstanceID]; got.State != driver.StateExited || got.ExitCode != 3 {
		t.Errorf("list reports %+v, want exited with 3", got)
	}

	again, err := d.Start(ctx(t), spec)
	if err != nil {
		t.Fatalf("start after exit: %v", err)
	}
	if again.State != driver.StateRunning || !again.StartedAt.After(st.StartedAt) {
		t.Errorf("start after exit: %+v, first start at %v", again, st.StartedAt)
	}
	if boot2 := field(serve(t, again.Address, "/"), "boot"); boot2 == boot1 {
		t.Errorf("boot token %s unchanged after restart", boot2)
	}

	// An exited instance is removed by Stop like a running one.
	if _, _, err := get(again.Address, "/exit?code=0"); err != nil {
		t.Logf("GET /exit: %v", err)
	}
	WaitFor(t, waitTimeout, func() (bool, string) {
		st, err := d.Inspect(ctx(t), spec.InstanceID)
		return err == nil && st.State == driver.StateExited && st.ExitCode == 0, fmt.Sprintf("inspect: %+v, %v", st, err)
	})
	if err := d.Stop(ctx(t), spec.InstanceID, stopGrace); err != nil {
		t.Fatalf("stop exited: %v", err)
	}
	if _, err := d.Inspect(ctx(t), spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("inspect after stop: %v, want ErrNotFound", err)
	}
}

func (s *suite) testStopRemoves(t *testing.T) {
	t.Parallel()
	d, _ := s.newHost(t)
	spec := s.spec(NewID("i-"), nil)
	st := start(t, d, spec)
	serve(t, st.Address, "/")

	t0 := time.Now()
	if err := d.Stop(ctx(t), spec.InstanceID, stopGrace); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// testapp exits on SIGTERM: a driver that waits out the grace period did
	// not send it.
	if el := time.Since(t0); el >= stopGrace {
		t.Errorf("stop took %v: SIGTERM not sent or not waited for properly", el)
	}
	if _, err := d.Inspect(ctx(t), spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("inspect after stop: %v, want ErrNotFound", err)
	}
	if _, ok := list(t, d)[spec.InstanceID]; ok {
		t.Errorf("list still shows %s", spec.InstanceID)
	}
	err := d.Logs(ctx(t), spec.InstanceID, driver.LogOptions{}, func(driver.LogLine) error { return nil })
	if !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("logs after stop: %v, want ErrNotFound", err)
	}
	WaitFor(t, waitTimeout, func() (bool, string) {
		_, body, err := get(st.Address, "/")
		return err != nil, "still answering: " + body
	})
	if err := d.Stop(ctx(t), spec.InstanceID, stopGrace); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if err := d.Stop(ctx(t), NewID("never-"), stopGrace); err != nil {
		t.Errorf("stop of a missing instance: %v", err)
	}
}

func (s *suite) testHostsAreIsolated(t *testing.T) {
	t.Parallel()
	a, _ := s.newHost(t)
	b, _ := s.newHost(t)
	spec := s.spec(NewID("i-"), nil)
	st := start(t, a, spec)
	serve(t, st.Address, "/")

	if ls := list(t, b); len(ls) != 0 {
		t.Errorf("host b lists %v, want nothing", ls)
	}
	if _, err := b.Inspect(ctx(t), spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("host b inspects host a's instance: %v, want ErrNotFound", err)
	}
	err := b.Logs(ctx(t), spec.InstanceID, driver.LogOptions{}, func(driver.LogLine) error { return nil })
	if !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("host b reads host a's logs: %v, want ErrNotFound", err)
	}
	if err := b.Stop(ctx(t), spec.InstanceID, stopGrace); err != nil {
		t.Errorf("host b stops an instance it does not have: %v", err)
	}
	in, err := a.Inspect(ctx(t), spec.InstanceID)
	if err != nil || in.State != driver.StateRunning || !in.StartedAt.Equal(st.StartedAt) {
		t.Errorf("host b's stop touched host a's instance: %+v, %v", in, err)
	}
	if _, ok := list(t, a)[spec.InstanceID]; !ok {
		t.Errorf("host a no longer lists %s", spec.InstanceID)
	}
	serve(t, st.Address, "/")
}

func (s *suite) testRestartedAgentAdopts(t *testing.T) {
	t.Parallel()
	d1, host := s.newHost(t)
	spec := s.spec(NewID("i-"), nil)
	st := start(t, d1, spec)
	boot1 := field(serve(t, st.Address, "/"), "boot")
	if boot1 == "" {
		t.Fatal("no boot token")
	}

	d2 := s.newDriver(t, host)
	got, ok := list(t, d2)[spec.InstanceID]
	if !ok {
		t.Fatalf("restarted agent does not list %s", spec.InstanceID)
	}
	if got.State != driver.StateRunning || !got.StartedAt.Equal(st.StartedAt) || got.Address != st.Address {
		t.Errorf("restarted agent lists %+v, first saw %+v", got, st)
	}
	if got.Tenant != spec.Tenant || got.App != spec.App || got.Version != spec.Version {
		t.Errorf("restarted agent lists %+v: names lost", got)
	}
	again, err := d2.Start(ctx(t), spec)
	if err != nil {
		t.Fatalf("start on the restarted agent: %v", err)
	}
	if !again.StartedAt.Equal(st.StartedAt) || again.Address != st.Address {
		t.Errorf("restarted agent restarted the instance: %+v, first %+v", again, st)
	}
	if boot2 := field(serve(t, again.Address, "/"), "boot"); boot2 != boot1 {
		t.Errorf("boot token %s, was %s: the process was replaced, not adopted", boot2, boot1)
	}
	if _, err := collect(t, d2, spec.InstanceID, driver.LogOptions{}); err != nil {
		t.Errorf("logs on the restarted agent: %v", err)
	}
	if err := d2.Stop(ctx(t), spec.InstanceID, stopGrace); err != nil {
		t.Fatalf("stop on the restarted agent: %v", err)
	}
	// The old driver's view may trail the new one's by a moment (a
	// runtime's watch), but not for long.
	WaitFor(t, waitTimeout, func() (bool, string) {
		_, err := d1.Inspect(ctx(t), spec.InstanceID)
		return errors.Is(err, driver.ErrNotFound), fmt.Sprintf("old driver still sees the instance: %v", err)
	})
	WaitFor(t, waitTimeout, func() (bool, string) {
		_, body, err := get(st.Address, "/")
		return err != nil, "still answering: " + body
	})
}

func collect(t *testing.T, d driver.Driver, id string, opts driver.LogOptions) ([]driver.LogLine, error) {
	var out []driver.LogLine
	err := d.Logs(ctx(t), id, opts, func(l driver.LogLine) error {
		out = append(out, l)
		return nil
	})
	return out, err
}

func find(lines []driver.LogLine, line string) (driver.LogLine, bool) {
	for _, l := range lines {
		if l.Line == line {
			return l, true
		}
	}
	return driver.LogLine{}, false
}

func logLine(t *testing.T, addr, line, stream string) {
	t.Helper()
	q := "/log?line=" + url.QueryEscape(line)
	if stream != "" {
		q += "&stream=" + stream
	}
	serve(t, addr, q)
}

func (s *suite) testLogs(t *testing.T) {
	t.Parallel()
	d, _ := s.newHost(t)
	spec := s.spec(NewID("i-"), nil)
	st := start(t, d, spec)
	serve(t, st.Address, "/")
	out, errLine := NewID("out-"), NewID("err-")
	logLine(t, st.Address, out, "")
	logLine(t, st.Address, errLine, "stderr")

	var lines []driver.LogLine
	WaitFor(t, waitTimeout, func() (bool, string) {
		var err error
		lines, err = collect(t, d, spec.InstanceID, driver.LogOptions{})
		_, ok1 := find(lines, out)
		_, ok2 := find(lines, errLine)
		return err == nil && ok1 && ok2, fmt.Sprintf("lines %v, err %v", lines, err)
	})
	if l, _ := find(lines, out); l.Stream != "stdout" {
		t.Errorf("%q on stream %q, want stdout", l.Line, l.Stream)
	}
	if l, _ := find(lines, errLine); l.Stream != "stderr" && !s.app.MergedStreams {
		t.Errorf("%q on stream %q, want stderr", l.Line, l.Stream)
	}
	for i, l := range lines {
		if l.Time.Before(st.StartedAt.Add(-time.Second)) || l.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("line %q at %v: not between start %v and now", l.Line, l.Time, st.StartedAt)
		}
		if i > 0 && l.Time.Before(lines[i-1].Time) {
			t.Errorf("line %q at %v comes after a later line at %v", l.Line, l.Time, lines[i-1].Time)
		}
		if strings.ContainsAny(l.Line, "\r\n") {
			t.Errorf("line %q holds a line break", l.Line)
		}
	}

	// Since leaves out what came before.
	since := time.Now()
	after := NewID("after-")
	logLine(t, st.Address, after, "")
	WaitFor(t, waitTimeout, func() (bool, string) {
		lines, err := collect(t, d, spec.InstanceID, driver.LogOptions{Since: since})
		if _, ok := find(lines, out); ok {
			t.Fatalf("since %v returned the earlier line %q", since, out)
		}
		_, ok := find(lines, after)
		return err == nil && ok, fmt.Sprintf("lines %v, err %v", lines, err)
	})

	// Follow delivers what is there, then what comes later.
	fctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan driver.LogLine, 100)
	done := make(chan error, 1)
	go func() {
		done <- d.Logs(fctx, spec.InstanceID, driver.LogOptions{Follow: true}, func(l driver.LogLine) error {
			got <- l
			return nil
		})
	}()
	waitLine(t, got, done, out)
	later := NewID("later-")
	logLine(t, st.Address, later, "stderr")
	if l := waitLine(t, got, done, later); l.Stream != "stderr" && !s.app.MergedStreams {
		t.Errorf("followed %q on %q, want stderr", l.Line, l.Stream)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("follow ended with %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("follow did not end when its context did")
	}

	// An error from fn stops Logs and comes back.
	stop := errors.New("enough")
	if err := d.Logs(ctx(t), spec.InstanceID, driver.LogOptions{}, func(driver.LogLine) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("logs returned %v, want fn's error", err)
	}
}

func waitLine(t *testing.T, got <-chan driver.LogLine, done <-chan error, line string) driver.LogLine {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case l := <-got:
			if l.Line == line {
				return l
			}
		case err := <-done:
			t.Fatalf("follow ended (%v) before %q", err, line)
		case <-timeout:
			t.Fatalf("follow did not deliver %q", line)
		}
	}
}

func (s *suite) testFollowEndsOnStop(t *testing.T) {
	t.Parallel()
	d, _ := s.newHost(t)
	spec := s.spec(NewID("i-"), nil)
	st := start(t, d, spec)
	serve(t, st.Address, "/")
	first := NewID("first-")
	logLine(t, st.Address, first, "")

	got := make(chan driver.LogLine, 100)
	done := make(chan error, 1)
	go func() {
		done <- d.Logs(context.Background(), spec.InstanceID, driver.LogOptions{Follow: true}, func(l driver.LogLine) error {
			got <- l
			return nil
		})
	}()
	waitLine(t, got, done, first)
	if err := d.Stop(ctx(t), spec.InstanceID, stopGrace); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("follow ended with %v, want nil once the instance is removed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("follow did not end when the instance was removed")
	}
}

// runtimeRestarts checks an instance that exited (code 3) and that the
// runtime restarts itself: it comes back running a new process at its
// address, Restarts counts the restart, Start leaves it alone, and Stop
// removes it.
func (s *suite) runtimeRestarts(t *testing.T, d driver.Driver, spec driver.Spec, boot1 string) {
	var back driver.Status
	WaitFor(t, 2*waitTimeout, func() (bool, string) {
		var err error
		back, err = d.Inspect(ctx(t), spec.InstanceID)
		return err == nil && back.State == driver.StateRunning && back.Restarts >= 1, fmt.Sprintf("inspect: %+v, %v", back, err)
	})
	var boot2 string
	WaitFor(t, waitTimeout, func() (bool, string) {
		_, body, err := get(back.Address, "/")
		boot2 = field(body, "boot")
		return err == nil && boot2 != "" && boot2 != boot1, fmt.Sprintf("boot token %q (first %s), %v", boot2, boot1, err)
	})
	if got := list(t, d)[spec.InstanceID]; got.State != driver.StateRunning || got.Restarts < 1 {
		t.Errorf("list reports %+v, want running with a restart", got)
	}
	again, err := d.Start(ctx(t), spec)
	if err != nil {
		t.Fatalf("start after the runtime's restart: %v", err)
	}
	if again.State != driver.StateRunning || again.Address != back.Address {
		t.Errorf("start after the runtime's restart: %+v, before %+v", again, back)
	}
	if boot3 := field(serve(t, again.Address, "/"), "boot"); boot3 != boot2 {
		t.Errorf("boot token %s, was %s: Start replaced an instance the runtime had restarted", boot3, boot2)
	}
	if err := d.Stop(ctx(t), spec.InstanceID, stopGrace); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := d.Inspect(ctx(t), spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("inspect after stop: %v, want ErrNotFound", err)
	}
}
