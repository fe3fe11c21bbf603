package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// convergeParallel is how many instances are converged at once.
const convergeParallel = 8

// StopGrace is how long an instance may take to stop before the driver
// kills it.
const StopGrace = 10 * time.Second

// Config configures a Supervisor.
type Config struct {
	// Driver runs the host's instances. Required.
	Driver driver.Driver
	// Dir keeps the assignments (FileAssignments). Required.
	Dir string
	// Advertise is the host part of reported addresses. "": the driver's,
	// or 127.0.0.1 when it is unspecified.
	Advertise string
	// DrainDelay is how long an unassigned ready instance keeps running
	// before it is stopped (deregistration delay). Zero: none.
	DrainDelay time.Duration
	// Lease fences instances of failover.mode fenced. Nil: none are.
	Lease Lease
	// Logger: nil discards.
	Logger *slog.Logger
}

// Supervisor converges the host to its assignments; see the package doc.
type Supervisor struct {
	drv       driver.Driver
	log       *slog.Logger
	dir       string
	advertise string // host part of reported addresses
	// drainDelay is how long an unassigned ready instance keeps running
	// before it is stopped (deregistration delay).
	drainDelay time.Duration
	// lease fences instances of failover.mode fenced; nil: none are.
	lease Lease
	// now is the supervisor's clock (time.Now; tests step their own).
	now func() time.Time

	// assignMu orders Assign's calls: the check against the held set and
	// the write to disk go together.
	assignMu sync.Mutex

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
	// boosted: the driver started it above its CPU limit (driver.Booster)
	// and it has not been settled yet.
	boosted bool
}

// New makes a supervisor and loads the assignments kept in cfg.Dir.
func New(cfg Config) *Supervisor {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{drv: cfg.Driver, dir: cfg.Dir, advertise: cfg.Advertise, drainDelay: cfg.DrainDelay, lease: cfg.Lease, log: log,
		now: time.Now, desired: loadAssignments(cfg.Dir), inst: map[string]*tracked{}, changed: map[string]bool{},
		kick: make(chan struct{}, 1), notify: make(chan struct{}, 1)}
}

// Applied returns the version of the assignments kept on disk (0: none).
func (s *Supervisor) Applied() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.desired == nil {
		return 0
	}
	return s.desired.Version
}

// ErrOlderAssignments refuses a set older than the one held: a hub node
// behind the cluster must not undo what a newer set started.
var ErrOlderAssignments = errors.New("assignments older than those held")

// Assign replaces the desired set (kept on disk first) and wakes the loop.
// A set older than the one held is refused with ErrOlderAssignments and
// changes nothing.
func (s *Supervisor) Assign(a *wire.Assignments) error {
	s.assignMu.Lock()
	defer s.assignMu.Unlock()
	s.mu.Lock()
	held := s.desired
	s.mu.Unlock()
	if held != nil && a.GetVersion() < held.GetVersion() {
		return fmt.Errorf("%w: version %d, holding %d", ErrOlderAssignments, a.GetVersion(), held.GetVersion())
	}
	if err := saveAssignments(s.dir, a); err != nil {
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

// Changed is signalled when an instance's status changed: Report(false)
// has something to send.
func (s *Supervisor) Changed() <-chan struct{} { return s.notify }

// Report returns the status changes not yet sent (all when full).
func (s *Supervisor) Report(full bool) *wire.StatusReport {
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
func (s *Supervisor) Run(ctx context.Context) error {
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
			return nil
		case <-s.kick:
		case <-t.C:
		}
	}
}

// awaitingReady reports whether an instance started in the last 30 s has
// not passed its health check yet, or not been started by its runtime
// yet (after that, one that never gets ready is checked at the normal
// pace).
func (s *Supervisor) awaitingReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.inst {
		if t.status.State == wire.InstanceRunning && !t.status.Ready && s.now().Sub(t.started) < 30*time.Second {
			return true
		}
		// Accepted by a runtime that starts it by itself (a Pod being
		// scheduled and made): its running is seen by looking again.
		if t.status.State == wire.InstanceStarting && t.up && s.now().Sub(t.started) < 30*time.Second {
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
func (s *Supervisor) gone(id string) {
	delete(s.inst, id)
	s.changed[id] = true
	s.wake()
}

func (s *Supervisor) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Supervisor) set(id string, t *tracked, st istatus) {
	if t.status == st {
		return
	}
	t.status = st
	s.changed[id] = true
	s.wake()
}

func (s *Supervisor) converge(ctx context.Context) {
	s.mu.Lock()
	var want []*wire.Instance
	if s.desired != nil {
		want = s.desired.Instances
	}
	s.mu.Unlock()
	wanted := map[string]bool{}
	// Side by side: a scale-up's starts (each a container run of up to
	// seconds on a busy host) do not wait for each other, and neither
	// does the next probe of an instance that booted meanwhile. A driver
	// serializes only one instance's own Start and Stop.
	var wg sync.WaitGroup
	slots := make(chan struct{}, convergeParallel)
	for _, in := range want {
		wanted[in.Id] = true
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			if s.keep(ctx, in) {
				s.boot(ctx, in)
			}
			s.settle(ctx, in)
		}()
	}
	wg.Wait()
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
		if err := s.drv.Stop(ctx, st.InstanceID, StopGrace); err != nil {
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
// checks its health; it reports whether it started the instance now.
func (s *Supervisor) keep(ctx context.Context, in *wire.Instance) bool {
	s.mu.Lock()
	t := s.inst[in.Id]
	if t == nil {
		t = &tracked{backoff: restartBackoffMin, status: istatus{State: wire.InstancePending}}
		s.inst[in.Id] = t
	}
	s.mu.Unlock()
	st, err := s.drv.Inspect(ctx, in.Id)
	if s.fenced(in) {
		s.fence(ctx, in, t, err == nil && st.State == driver.StateRunning)
		return false
	}
	if err == nil && st.State == driver.StateRunning {
		s.mu.Lock()
		if !t.up { // found running: adopted after an agent restart
			t.up = true
			if t.started.IsZero() {
				t.started = s.now()
			}
			t.boosted = true // it may have been, when the agent stopped
		}
		s.mu.Unlock()
		s.health(ctx, in, t, st)
		return false
	}
	if err == nil && st.State == driver.StatePending {
		s.mu.Lock()
		s.pending(in.Id, t, st.Waiting)
		s.mu.Unlock()
		return false
	}
	gone := errors.Is(err, driver.ErrNotFound)
	if err != nil && !gone {
		s.log.Warn("inspect", "instance", in.Id, "err", err)
		return false
	}
	now := s.now()
	s.mu.Lock()
	if t.up {
		s.exited(in.Id, t, st, gone, now)
	}
	if now.Before(t.next) {
		s.mu.Unlock()
		return false
	}
	if in.SecretsWithheld {
		// Loaded from disk, where its secrets are never kept: it starts
		// once the hub sends them again (a running one is kept).
		s.set(in.Id, t, istatus{State: wire.InstanceStarting, Restarts: t.status.Restarts, Message: "waiting for the hub to send the app's secrets (kept in memory only)"})
		s.mu.Unlock()
		return false
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
		wait := backOff(t, t.started)
		s.set(in.Id, t, istatus{State: wire.InstanceStarting, Restarts: cur.Restarts, Reason: reason, Message: err.Error()})
		s.log.Warn("start", "instance", in.Id, "err", err, "retry_in", wait)
		return false
	}
	t.up, t.boosted = true, true
	if got.State == driver.StatePending {
		s.log.Info("instance accepted, waiting for the runtime to start it", "instance", in.Id, "app", in.App, "version", in.Version)
		s.pending(in.Id, t, got.Waiting)
		return false
	}
	ready := in.Health == nil
	if r, ok := s.drv.(driver.Readiness); ok {
		ready = r.Ready(got)
	}
	s.log.Info("instance started", "instance", in.Id, "app", in.App, "version", in.Version, "address", got.Address)
	s.set(in.Id, t, istatus{State: wire.InstanceRunning, Ready: ready, Address: s.address(got), Restarts: cur.Restarts})
	_, runtimeProbes := s.drv.(driver.Readiness)
	return !ready && !runtimeProbes
}

// settle gives an instance the driver booted above its CPU limit its own
// limit once it is ready, or once its boot's grace has passed without
// (driver.Booster). A failed settle is tried again on the next pass.
func (s *Supervisor) settle(ctx context.Context, in *wire.Instance) {
	b, ok := s.drv.(driver.Booster)
	if !ok {
		return
	}
	s.mu.Lock()
	t := s.inst[in.Id]
	due := t != nil && t.boosted && t.up && (t.status.Ready || s.now().Sub(t.started) >= unhealthyGrace)
	if due {
		t.boosted = false
	}
	s.mu.Unlock()
	if !due {
		return
	}
	if err := b.Settle(ctx, in.Id, int(in.Cpu)); err != nil {
		if errors.Is(err, driver.ErrNotFound) {
			return // gone: a new start boosts and settles again
		}
		s.log.Warn("settle the CPU limit", "instance", in.Id, "err", err)
		s.mu.Lock()
		t.boosted = true
		s.mu.Unlock()
	}
}

// bootWait is how long a converge pass goes on probing an instance it
// has just started: one that answers within it is ready (and reported)
// at once, not after its neighbours' starts end the pass and the next
// pass probes it.
const bootWait = time.Second

// boot probes an instance keep has just started until it passes, stops
// running, or bootWait has gone: first bootProbeFirst after the start,
// then twice as long each time up to bootProbe. Most instances listen
// within milliseconds of their start, and a probe that finds nothing
// listening costs a refused connect; a deploy waits for this answer.
// Whether it still runs is asked of the runtime at most every
// bootProbe.
func (s *Supervisor) boot(ctx context.Context, in *wire.Instance) {
	until := time.Now().Add(bootWait)
	wait := bootProbeFirst
	if in.Health != nil && len(in.Health.Command) > 0 {
		wait = bootProbe // a command in the instance is no cheap probe
	}
	var st driver.Status
	var inspected time.Time
	for {
		if time.Since(inspected) >= bootProbe {
			var err error
			st, err = s.drv.Inspect(ctx, in.Id)
			if err != nil || st.State != driver.StateRunning {
				return
			}
			inspected = time.Now()
		}
		s.mu.Lock()
		t := s.inst[in.Id]
		if t != nil {
			t.lastHC = time.Time{} // due now, whatever its interval
		}
		s.mu.Unlock()
		if t == nil {
			return
		}
		s.health(ctx, in, t, st)
		s.mu.Lock()
		ready := t.status.Ready
		s.mu.Unlock()
		if ready || !time.Now().Before(until) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, bootProbe)
	}
}

// bootProbeFirst is the wait before boot's second probe of a new
// instance (the first is at once).
const bootProbeFirst = 2 * time.Millisecond

// pending records that the runtime accepted an instance but has not
// started it yet (a Pod waiting for a node or its image): it is starting,
// and neither failed nor restarted for that alone. waiting, when set, is
// why it will not start by itself (its image cannot be pulled), which the
// hub hears as the reason. Callers hold s.mu.
func (s *Supervisor) pending(id string, t *tracked, waiting error) {
	t.up = true
	if t.started.IsZero() {
		t.started = s.now()
	}
	st := istatus{State: wire.InstanceStarting, Restarts: t.status.Restarts, Message: "waiting for the runtime to start it"}
	if waiting != nil {
		st.Message, st.Reason = waiting.Error(), wire.Reason_REASON_START_FAILED
		if errors.Is(waiting, driver.ErrImagePull) {
			st.Reason = wire.Reason_REASON_IMAGE_PULL
		}
	}
	s.set(id, t, st)
}

// address puts the host's advertised address in front of a driver's
// port, unless the driver's address is routable as it is (a Pod IP).
func (s *Supervisor) address(st driver.Status) string {
	a := st.Address
	if st.Routable {
		return a
	}
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

// Wanted returns the assigned instances.
func (s *Supervisor) Wanted() []*wire.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.desired == nil {
		return nil
	}
	return s.desired.Instances
}

// specOf turns an assignment into what a driver runs.
func specOf(in *wire.Instance) driver.Spec {
	s := driver.Spec{InstanceID: in.Id, Tenant: in.Tenant, App: in.App, Version: int(in.Version), Image: in.Image,
		Command: in.Command, CPU: int(in.Cpu), Memory: int(in.Memory), Env: map[string]string{}}
	if hc := in.Health; hc != nil {
		s.Health = &driver.Health{HTTP: hc.Http, TCP: int(hc.Tcp), Command: hc.Command, Port: int(hc.Port),
			Interval: time.Duration(hc.IntervalMs) * time.Millisecond, Timeout: time.Duration(hc.TimeoutMs) * time.Millisecond}
	}
	s.AlwaysPull = in.AlwaysPull
	if ra := in.RegistryAuth; ra != nil {
		s.RegistryAuth = &driver.RegistryAuth{Server: ra.Server, Username: ra.Username, Password: ra.Password}
	}
	for k, v := range in.Env {
		s.Env[k] = v
	}
	if len(in.SecretEnv) > 0 {
		s.Secrets = maps.Clone(in.SecretEnv)
	}
	s.Env["WHARF_INSTANCE"], s.Env["WHARF_APP"], s.Env["WHARF_VERSION"] = in.Id, in.App, strconv.Itoa(int(in.Version))
	for _, p := range in.Ports {
		s.Ports = append(s.Ports, driver.Port{Name: p.Name, ContainerPort: int(p.ContainerPort), Protocol: p.Protocol, HostPort: int(p.HostPort)})
	}
	return s
}
