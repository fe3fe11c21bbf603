package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// The supervisor converges the host to its assignments through the driver,
// restarts what exits (with backoff), checks health, and queues status
// changes for the hub. Assignments are kept on disk, so after a reboot
// without the hub the host runs its instances again (offline autonomy).

// fileAssignments keeps the last assignment set applied.
const fileAssignments = "assignments.pb"

// Restarts back off exponentially on the same instance id: an instance
// that exits (or cannot start) waits restartBackoffMin, then twice as
// long after each further failure, up to restartBackoffMax; one that ran
// for backoffReset before it exited starts again from the minimum. The
// hub keeps a backing-off instance where it is and hears why it does not
// run (wire.Reason).
const (
	restartBackoffMin = time.Second
	restartBackoffMax = 5 * time.Minute
	backoffReset      = time.Minute
	// crashLoopAfter exits in a row, each before backoffReset, make a
	// crash loop.
	crashLoopAfter = 3
	stopGrace      = 10 * time.Second
	// unhealthyGrace: a new instance failing its health check is only
	// booting (not ready, no reason) for this long.
	unhealthyGrace = 30 * time.Second
)

type supervisor struct {
	drv       driver.Driver
	log       *slog.Logger
	dir       string
	advertise string // host part of reported addresses
	// drainDelay is how long an unassigned ready instance keeps running
	// before it is stopped (deregistration delay).
	drainDelay time.Duration
	// lease fences instances of failover.mode fenced; nil: none are.
	lease *lease
	// now is the supervisor's clock (time.Now; tests step their own).
	now func() time.Time

	mu      sync.Mutex
	desired *wire.Assignments
	inst    map[string]*tracked
	changed map[string]bool // instance ids whose status the hub has not heard
	kick    chan struct{}
	notify  chan struct{} // status changed
}

// istatus is an instance's status as reported to the hub.
type istatus struct {
	State    wire.InstanceState
	Ready    bool
	Address  string
	Restarts uint32
	Message  string
	Reason   wire.Reason // why it does not run or is not ready
}

// tracked is what the supervisor knows of one instance.
type tracked struct {
	status   istatus
	started  time.Time // when it was last started (or found running)
	up       bool      // it was started (or found running) and has not been seen exited since
	next     time.Time // earliest next start
	backoff  time.Duration
	failures int // exits and failed starts in a row, each before backoffReset
	healthOK int
	healthNo int
	lastHC   time.Time
	// drainUntil, once an unwanted instance that was ready is to stop, is
	// when it may: routers are dropping it meanwhile.
	drainUntil time.Time
}

func newSupervisor(drv driver.Driver, dir, advertise string, log *slog.Logger) *supervisor {
	s := &supervisor{drv: drv, dir: dir, advertise: advertise, log: log, now: time.Now, inst: map[string]*tracked{}, changed: map[string]bool{},
		kick: make(chan struct{}, 1), notify: make(chan struct{}, 1)}
	if b, err := os.ReadFile(filepath.Join(dir, fileAssignments)); err == nil {
		var a wire.Assignments
		if proto.Unmarshal(b, &a) == nil {
			wire.UpgradeLegacy(&a) // kept by an older build
			s.desired = &a
		}
	}
	return s
}

// applied returns the version of the assignments on disk.
func (s *supervisor) applied() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.desired == nil {
		return 0
	}
	return s.desired.Version
}

// assign replaces the desired set (kept on disk first) and wakes the loop.
func (s *supervisor) assign(a *wire.Assignments) error {
	b, err := proto.Marshal(a)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.dir, fileAssignments), b, 0o600); err != nil {
		return err
	}
	s.mu.Lock()
	s.desired = a
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// report returns the status changes not yet sent (all when full).
func (s *supervisor) report(full bool) *wire.StatusReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &wire.StatusReport{}
	for id, t := range s.inst {
		if full || s.changed[id] {
			st := t.status
			r.Instances = append(r.Instances, &wire.InstanceStatus{Id: id, StateCode: st.State, Ready: st.Ready, Address: st.Address, Restarts: st.Restarts,
				Message: st.Message, Reason: st.Reason})
		}
	}
	for id := range s.changed {
		if _, ok := s.inst[id]; !ok { // stopped and forgotten
			r.Instances = append(r.Instances, &wire.InstanceStatus{Id: id, StateCode: wire.InstanceStopped})
		}
	}
	s.changed = map[string]bool{}
	return r
}

// Run converges until ctx ends: at once on new assignments, every 50 ms
// while an instance waits for its first passing health check (readiness
// is what a deployment waits for), else every second.
func (s *supervisor) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		s.converge(ctx)
		next := time.Second
		if s.awaitingReady() {
			next = 50 * time.Millisecond
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
	}
}

// awaitingReady reports whether an instance started in the last 30 s has
// not passed its health check yet (after that, one that never gets ready
// is checked at the normal pace).
func (s *supervisor) awaitingReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.inst {
		if t.status.State == wire.InstanceRunning && !t.status.Ready && s.now().Sub(t.started) < 30*time.Second {
			return true
		}
		if !t.drainUntil.IsZero() { // its stop is due soon
			return true
		}
	}
	return false
}

// gone forgets an instance that no longer runs; the hub hears "stopped".
// Callers hold s.mu.
func (s *supervisor) gone(id string) {
	delete(s.inst, id)
	s.changed[id] = true
	s.wake()
}

func (s *supervisor) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *supervisor) set(id string, t *tracked, st istatus) {
	if t.status == st {
		return
	}
	t.status = st
	s.changed[id] = true
	s.wake()
}

func (s *supervisor) converge(ctx context.Context) {
	s.mu.Lock()
	var want []*wire.Instance
	if s.desired != nil {
		want = s.desired.Instances
	}
	s.mu.Unlock()
	wanted := map[string]bool{}
	for _, in := range want {
		wanted[in.Id] = true
		s.keep(ctx, in)
	}
	// Whatever runs here and is not wanted stops: instances the hub moved
	// elsewhere while this host was away, or that an app no longer has.
	running, err := s.drv.List(ctx)
	if err != nil {
		s.log.Warn("list instances", "err", err)
		return
	}
	draining := map[string]bool{}
	for _, st := range running {
		if wanted[st.InstanceID] {
			continue
		}
		s.mu.Lock()
		t := s.inst[st.InstanceID]
		if t == nil {
			t = &tracked{}
			s.inst[st.InstanceID] = t
		}
		// A ready instance keeps serving for the drain delay: the routers,
		// whose tables dropped it in the same Raft write that unassigned
		// it, stop sending new requests, and those in flight finish.
		if t.status.Ready && t.drainUntil.IsZero() && s.drainDelay > 0 {
			t.drainUntil = time.Now().Add(s.drainDelay)
		}
		stillServing := time.Now().Before(t.drainUntil)
		s.set(st.InstanceID, t, istatus{State: wire.InstanceStopping, Address: t.status.Address, Restarts: t.status.Restarts})
		s.mu.Unlock()
		if stillServing {
			draining[st.InstanceID] = true
			continue
		}
		if err := s.drv.Stop(ctx, st.InstanceID, stopGrace); err != nil {
			s.log.Warn("stop", "instance", st.InstanceID, "err", err)
			continue
		}
		s.log.Info("instance stopped", "instance", st.InstanceID)
		s.mu.Lock()
		s.gone(st.InstanceID)
		s.mu.Unlock()
	}
	s.mu.Lock()
	for id := range s.inst { // tracked but neither wanted nor running
		if !wanted[id] && !draining[id] {
			s.gone(id)
		}
	}
	s.mu.Unlock()
}

// keep makes one wanted instance run, restarting it with backoff, and
// checks its health.
func (s *supervisor) keep(ctx context.Context, in *wire.Instance) {
	s.mu.Lock()
	t := s.inst[in.Id]
	if t == nil {
		t = &tracked{backoff: restartBackoffMin, status: istatus{State: wire.InstancePending}}
		s.inst[in.Id] = t
	}
	s.mu.Unlock()
	st, err := s.drv.Inspect(ctx, in.Id)
	if in.Failover == wire.FailoverFenced && s.lease != nil && s.lease.expired(time.Duration(in.MaxDisconnectMs)*time.Millisecond) {
		s.fence(ctx, in, t, err == nil && st.State == driver.StateRunning)
		return
	}
	if err == nil && st.State == driver.StateRunning {
		s.mu.Lock()
		if !t.up { // found running: adopted after an agent restart
			t.up = true
			if t.started.IsZero() {
				t.started = s.now()
			}
		}
		s.mu.Unlock()
		s.health(ctx, in, t, st)
		return
	}
	gone := errors.Is(err, driver.ErrNotFound)
	if err != nil && !gone {
		s.log.Warn("inspect", "instance", in.Id, "err", err)
		return
	}
	now := s.now()
	s.mu.Lock()
	if t.up {
		s.exited(in.Id, t, st, gone, now)
	}
	if now.Before(t.next) {
		s.mu.Unlock()
		return
	}
	cur := t.status
	if !t.started.IsZero() {
		cur.Restarts++
	}
	// Starting again keeps the reason and message of the last failure
	// until the start's outcome replaces them.
	cur.State, cur.Ready, cur.Address = wire.InstanceStarting, false, ""
	s.set(in.Id, t, cur)
	s.mu.Unlock()
	got, err := s.drv.Start(ctx, specOf(in))
	s.mu.Lock()
	defer s.mu.Unlock()
	t.started = s.now()
	t.healthOK, t.healthNo = 0, 0
	if err != nil {
		reason := wire.Reason_REASON_START_FAILED
		if errors.Is(err, driver.ErrImagePull) {
			reason = wire.Reason_REASON_IMAGE_PULL
		}
		t.failures++
		wait := s.backOff(t, t.started)
		s.set(in.Id, t, istatus{State: wire.InstanceStarting, Restarts: cur.Restarts, Reason: reason, Message: err.Error()})
		s.log.Warn("start", "instance", in.Id, "err", err, "retry_in", wait)
		return
	}
	t.up = true
	s.log.Info("instance started", "instance", in.Id, "app", in.App, "version", in.Version, "address", got.Address)
	s.set(in.Id, t, istatus{State: wire.InstanceRunning, Ready: in.Health == nil, Address: s.address(got.Address), Restarts: cur.Restarts})
}

// exited records that an instance it started (or found running) no longer
// runs and schedules its restart: a crash loop once it has exited
// crashLoopAfter times in a row, each soon after its start. Callers hold
// s.mu.
func (s *supervisor) exited(id string, t *tracked, st driver.Status, gone bool, now time.Time) {
	t.up = false
	if now.Sub(t.started) >= backoffReset { // it ran well: start over
		t.failures, t.backoff = 0, restartBackoffMin
	}
	t.failures++
	wait := s.backOff(t, now)
	how := fmt.Sprintf("exited with code %d", st.ExitCode)
	if gone {
		how = "vanished from the runtime"
	}
	cur := istatus{State: wire.InstanceStarting, Restarts: t.status.Restarts, Message: fmt.Sprintf("%s; restarting in %s", how, wait)}
	if t.failures >= crashLoopAfter {
		cur.Reason = wire.Reason_REASON_CRASH_LOOP
		cur.Message = fmt.Sprintf("%s, %d times in a row; restarts back off (next in %s)", how, t.failures, wait)
	}
	s.set(id, t, cur)
	s.log.Warn("instance exited", "instance", id, "code", st.ExitCode, "failures", t.failures, "restart_in", wait)
}

// backOff schedules t's next start from now and doubles its backoff, up
// to restartBackoffMax; it returns the wait.
func (s *supervisor) backOff(t *tracked, now time.Time) time.Duration {
	wait := t.backoff
	t.next = now.Add(wait)
	t.backoff = min(t.backoff*2, restartBackoffMax)
	return wait
}

// fence stops a fenced instance whose lease ran out (or that has not been
// renewed since boot) and keeps it stopped until the lease is renewed:
// by then the hub may have replaced it elsewhere, and two copies must
// never run at once.
func (s *supervisor) fence(ctx context.Context, in *wire.Instance, t *tracked, running bool) {
	if running {
		s.log.Warn("lease expired: stopping fenced instance", "instance", in.Id, "app", in.App)
		if err := s.drv.Stop(ctx, in.Id, stopGrace); err != nil {
			s.log.Warn("stop", "instance", in.Id, "err", err)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.started, t.up, t.failures, t.next, t.backoff = time.Time{}, false, 0, time.Time{}, restartBackoffMin
	s.set(in.Id, t, istatus{State: wire.InstanceStopped, Restarts: t.status.Restarts, Message: "fenced: the host's lease is not renewed"})
}

// address puts the host's advertised address in front of a driver's port.
func (s *supervisor) address(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if s.advertise != "" {
		host = s.advertise
	} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// health runs an instance's health check when due and updates readiness:
// ready after one success, not ready after three failures in a row.
func (s *supervisor) health(ctx context.Context, in *wire.Instance, t *tracked, st driver.Status) {
	addr := s.address(st.Address)
	s.mu.Lock()
	cur := t.status
	if cur.State != wire.InstanceRunning || cur.Address != addr {
		cur.State, cur.Address = wire.InstanceRunning, addr
		if in.Health == nil {
			cur.Ready = true
		}
		s.set(in.Id, t, cur)
	}
	hc := in.Health
	interval := 2 * time.Second
	if hc != nil && hc.IntervalMs > 0 {
		interval = time.Duration(hc.IntervalMs) * time.Millisecond
	}
	due := hc != nil && s.now().Sub(t.lastHC) >= interval
	if due {
		t.lastHC = s.now()
	}
	s.mu.Unlock()
	if !due {
		return
	}
	ok, why := s.check(ctx, in, st)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur = t.status
	if ok {
		t.healthOK, t.healthNo = t.healthOK+1, 0
		cur.Ready, cur.Message, cur.Reason = true, "", wire.Reason_REASON_NONE
	} else {
		t.healthOK, t.healthNo = 0, t.healthNo+1
		wasReady := cur.Ready
		if t.healthNo >= 3 || !cur.Ready {
			cur.Ready, cur.Message = false, "health check: "+why
		}
		// A new instance that is still booting is not unhealthy yet.
		if t.healthNo >= 3 && (wasReady || s.now().Sub(t.started) >= unhealthyGrace) {
			cur.Reason = wire.Reason_REASON_UNHEALTHY
		}
	}
	s.set(in.Id, t, cur)
}

// check runs one HTTP or TCP health check against the instance's port.
func (s *supervisor) check(ctx context.Context, in *wire.Instance, st driver.Status) (bool, string) {
	hc := in.Health
	timeout := 2 * time.Second
	if hc.TimeoutMs > 0 {
		timeout = time.Duration(hc.TimeoutMs) * time.Millisecond
	}
	if len(hc.Command) > 0 {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		code, err := s.runCheck(ctx, in, st, hc.Command)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			return false, fmt.Sprintf("%s exited %d", hc.Command[0], code)
		}
		return true, ""
	}
	port := int(hc.Port)
	if hc.Tcp > 0 {
		port = int(hc.Tcp)
	}
	hostPort := st.Ports[port]
	if hostPort == 0 {
		// exec instances listen on PORT; the driver reports it as the
		// address.
		_, p, _ := net.SplitHostPort(st.Address)
		hostPort, _ = strconv.Atoi(p)
	}
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if hc.Http != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+hc.Http, nil)
		if err != nil {
			return false, err.Error()
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return false, fmt.Sprintf("GET %s: %s", hc.Http, resp.Status)
		}
		return true, ""
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return false, err.Error()
	}
	c.Close()
	return true, ""
}

// specOf turns an assignment into what a driver runs.
func specOf(in *wire.Instance) driver.Spec {
	s := driver.Spec{InstanceID: in.Id, Tenant: in.Tenant, App: in.App, Version: int(in.Version), Image: in.Image,
		Command: in.Command, CPU: int(in.Cpu), Memory: int(in.Memory), Env: map[string]string{}}
	for k, v := range in.Env {
		s.Env[k] = v
	}
	s.Env["WHARF_INSTANCE"], s.Env["WHARF_APP"], s.Env["WHARF_VERSION"] = in.Id, in.App, strconv.Itoa(int(in.Version))
	for _, p := range in.Ports {
		s.Ports = append(s.Ports, driver.Port{Name: p.Name, ContainerPort: int(p.ContainerPort), Protocol: p.Protocol, HostPort: int(p.HostPort)})
	}
	return s
}

// runCheck runs a command health check in the instance when the driver can
// (driver.Execer), else on the host with PORT set to the instance's port.
func (s *supervisor) runCheck(ctx context.Context, in *wire.Instance, st driver.Status, argv []string) (int, error) {
	if ex, ok := s.drv.(driver.Execer); ok {
		return ex.Exec(ctx, in.Id, argv)
	}
	cmd := osexec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if _, port, err := net.SplitHostPort(st.Address); err == nil {
		cmd.Env = append(cmd.Env, "PORT="+port)
	}
	for k, v := range in.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	err := cmd.Run()
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// execCgroups maps the instances this agent tracks to the cgroup the exec
// driver gives them (relative to the cgroup mount), for metrics.
func (s *supervisor) execCgroups(host string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for id := range s.inst {
		out[id] = "/wharf/" + host + "/" + id
	}
	return out
}

// wanted returns the assigned instances.
func (s *supervisor) wanted() []*wire.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.desired == nil {
		return nil
	}
	return s.desired.Instances
}

// execLabels names an instance's app and tenant from the assignments.
func (s *supervisor) execLabels(id string) (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.desired != nil {
		for _, in := range s.desired.Instances {
			if in.Id == id {
				return in.App, in.Tenant
			}
		}
	}
	return "", ""
}
