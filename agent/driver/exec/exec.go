// Package exec is the agent's driver for instances that are processes on
// the host: Spec.Command, supervised, sharing the agent's network namespace.
//
// As root on Linux (Isolation "namespaces", the default there) an instance
// gets its own mount, PID, UTS and IPC namespaces, its instance id as
// hostname, a /proc of its own, and a cgroup with its CPU and memory limits
// under <cgroup root>/<controller>/wharf/<host id>/<instance id> (v1) or
// <cgroup root>/wharf/<host id>/<instance id> (v2). Otherwise it is a plain
// process in its own process group.
//
// PORT (and PORT_<NAME> for named ports) is a free host port the driver
// picked; the instance listens on it directly and is reported at
// 127.0.0.1:PORT. The instance's environment is its spec's plus PATH, HOME,
// HOSTNAME and the ports: nothing of the agent's leaks in.
//
// Each instance runs under a supervisor, a re-executed copy of the agent's
// binary (see Reexec) in its own session, which outlives the agent: a
// restarted agent finds the instance in <DataDir>/exec/<instance id>/
// (state.json, stdout.log, stderr.log) and adopts it without a restart. The
// instance dies with its supervisor (Pdeathsig); whatever it leaves in its
// process group or cgroup dies when it exits and on Stop.
package exec

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
)

// Name is the driver's name as --driver spells it.
const Name = "exec"

const defaultCgroupRoot = "/sys/fs/cgroup"

// Isolation says how an instance is separated from the host.
type Isolation string

// Isolation levels.
const (
	// IsolationAuto is IsolationNamespaces as root on Linux, else IsolationNone.
	IsolationAuto Isolation = ""
	// IsolationNone runs a plain process in its own process group.
	IsolationNone Isolation = "none"
	// IsolationNamespaces adds mount, PID, UTS and IPC namespaces and a
	// cgroup with the spec's limits. It needs root on Linux.
	IsolationNamespaces Isolation = "namespaces"
)

// Config configures a Driver.
type Config struct {
	// HostID is the agent's host id; List reports only its instances.
	// Required.
	HostID string
	// DataDir is the agent's data directory; instances live under
	// <DataDir>/exec. Required.
	DataDir string
	// Isolation; zero: IsolationAuto.
	Isolation Isolation
	// CgroupRoot is where the cgroup file systems are mounted. Empty:
	// /sys/fs/cgroup.
	CgroupRoot string
	// CgroupParent is the cgroup under which each host keeps its instances.
	// Empty: "wharf".
	CgroupParent string
	// Shim is the command that starts a supervisor: a binary whose main
	// calls Reexec first. Empty: the running binary (/proc/self/exe).
	Shim []string
	// ShimEnv is extra environment for the supervisor (not the instance),
	// such as GORACE=atexit_sleep_ms=0 for a race-enabled test binary.
	// Nil: none; the agent's own environment is never passed on.
	ShimEnv []string
	// Logger receives the driver's diagnostics. Nil: slog.Default().
	Logger *slog.Logger
}

// Validate reports a Config that New would refuse.
func (c Config) Validate() error {
	switch {
	case c.HostID == "":
		return errors.New("exec driver: host id required")
	case c.DataDir == "":
		return errors.New("exec driver: data dir required")
	}
	switch c.Isolation {
	case IsolationAuto, IsolationNone, IsolationNamespaces:
	default:
		return fmt.Errorf("exec driver: unknown isolation %q", c.Isolation)
	}
	return nil
}

// Driver runs instances as supervised processes.
type Driver struct {
	cfg      Config
	isolated bool
	log      *slog.Logger
	locks    [64]sync.Mutex // striped by instance id: one instance's Start/Stop never overlap
	seed     maphash.Seed
}

var _ driver.Driver = (*Driver)(nil)

// New returns a driver for cfg. A new driver over the data dir of an
// earlier one (an agent restart) sees and adopts its instances.
func New(cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The supervisors run in the instances' directories: a data dir
	// relative to the agent's working directory would not be found there.
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("exec driver: data dir: %w", err)
	}
	cfg.DataDir = abs
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = defaultCgroupRoot
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "wharf"
	}
	if len(cfg.Shim) == 0 {
		cfg.Shim = []string{"/proc/self/exe"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	isolated := false
	switch cfg.Isolation {
	case IsolationAuto:
		isolated = isolationAvailable() && cgroupsUsable(cfg.CgroupRoot)
		if isolationAvailable() && !isolated {
			cfg.Logger.Warn("exec driver: no usable cgroup hierarchies under " + cfg.CgroupRoot + "; instances run as plain supervised processes")
		}
	case IsolationNamespaces:
		if !isolationAvailable() {
			return nil, errors.New("exec driver: namespaces and cgroups need root on Linux")
		}
		if !cgroupsUsable(cfg.CgroupRoot) {
			return nil, fmt.Errorf("exec driver: no usable cgroup hierarchies under %s", cfg.CgroupRoot)
		}
		isolated = true
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "exec"), 0o700); err != nil {
		return nil, fmt.Errorf("exec driver: %w", err)
	}
	return &Driver{
		cfg:      cfg,
		isolated: isolated,
		log:      cfg.Logger.With("component", "driver/exec"),
		seed:     maphash.MakeSeed(),
	}, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Isolated reports whether instances get namespaces and cgroups.
func (d *Driver) Isolated() bool { return d.isolated }

func (d *Driver) lock(instanceID string) func() {
	mu := &d.locks[maphash.String(d.seed, instanceID)%uint64(len(d.locks))]
	mu.Lock()
	return mu.Unlock
}

func (d *Driver) dir(instanceID string) string {
	return filepath.Join(d.cfg.DataDir, "exec", instanceID)
}

// own reads the state of one of this host's instances, or ErrNotFound.
func (d *Driver) own(instanceID string) (string, *state, error) {
	if validID(instanceID) != nil {
		return "", nil, driver.ErrNotFound
	}
	dir := d.dir(instanceID)
	st, err := readState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, driver.ErrNotFound
	}
	if err != nil {
		return "", nil, err
	}
	if st.HostID != d.cfg.HostID {
		return "", nil, driver.ErrNotFound
	}
	return dir, st, nil
}

func (d *Driver) ownDir(instanceID string) (string, error) {
	dir, _, err := d.own(instanceID)
	return dir, err
}

// statusAt is status(st), except that an instance whose processes are all
// gone is judged again from a fresh read of its state file: its supervisor
// may have recorded the exit, and ended, between the first read and the
// liveness check.
func statusAt(dir string, st *state) driver.Status {
	s := status(st)
	if s.State == driver.StateExited && !st.Exited {
		if again, err := readState(dir); err == nil && again.Exited {
			return status(again)
		}
	}
	return s
}

// status is what an instance's state and its live processes say.
func status(st *state) driver.Status {
	s := driver.Status{
		InstanceID: st.Spec.InstanceID,
		Tenant:     st.Spec.Tenant,
		App:        st.Spec.App,
		Version:    st.Spec.Version,
		StartedAt:  st.StartedAt,
	}
	switch {
	case st.Exited:
		s.State, s.ExitCode, s.FinishedAt = driver.StateExited, st.ExitCode, st.FinishedAt
	case st.PID == 0:
		s.State = driver.StateCreated // launching, or the launch failed
	case alive(st.PID, st.PIDStart), alive(st.ShimPID, st.ShimStart):
		// With the instance gone but its supervisor alive, the exit is
		// about to be recorded.
		s.State = driver.StateRunning
	default:
		// Its supervisor died without a word (killed, or the host rebooted).
		s.State, s.ExitCode = driver.StateExited, -1
	}
	if s.State == driver.StateRunning {
		s.Ports = ports(st.Spec, st.HostPorts)
		if len(st.HostPorts) > 0 {
			s.Address = net.JoinHostPort("127.0.0.1", strconv.Itoa(st.HostPorts[0]))
		}
	}
	return s
}

// ports maps each spec port (its ContainerPort, or the host port itself
// when that is 0) to its host port.
func ports(spec driver.Spec, hostPorts []int) map[int]int {
	m := make(map[int]int, len(hostPorts))
	for i, hp := range hostPorts {
		key := hp
		if i < len(spec.Ports) && spec.Ports[i].ContainerPort != 0 {
			key = spec.Ports[i].ContainerPort
		}
		m[key] = hp
	}
	return m
}

// pickPorts chooses a host port per spec port (one when the spec has
// none): the fixed one a spec asks for, else the one the instance had
// before if it is still free, else a free one.
func pickPorts(spec driver.Spec, before []int) ([]int, error) {
	n := max(len(spec.Ports), 1)
	out := make([]int, n)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := range n {
		if i < len(spec.Ports) && spec.Ports[i].HostPort != 0 {
			out[i] = spec.Ports[i].HostPort
			continue
		}
		addr := ":0"
		if i < len(before) && before[i] != 0 {
			addr = ":" + strconv.Itoa(before[i])
		}
		l, err := net.Listen("tcp", addr)
		if err != nil && addr != ":0" {
			l, err = net.Listen("tcp", ":0")
		}
		if err != nil {
			return nil, fmt.Errorf("pick a port: %w", err)
		}
		held = append(held, l) // held until all are picked: no port twice
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

// Start implements driver.Driver.
func (d *Driver) Start(ctx context.Context, spec driver.Spec) (driver.Status, error) {
	if err := validID(spec.InstanceID); err != nil {
		return driver.Status{}, fmt.Errorf("exec: %w", err)
	}
	if len(spec.Command) == 0 {
		return driver.Status{}, driver.StartFailedError(errors.New("exec: command required (an app with an image needs a docker or kubernetes host)"))
	}
	defer d.lock(spec.InstanceID)()
	dir := d.dir(spec.InstanceID)

	prev, err := readState(dir)
	switch {
	case err == nil:
		if prev.HostID != d.cfg.HostID {
			return driver.Status{}, fmt.Errorf("exec: instance %s belongs to host %s", spec.InstanceID, prev.HostID)
		}
		if s := status(prev); s.State == driver.StateRunning {
			if !alive(prev.PID, prev.PIDStart) {
				// Exited; its supervisor is recording it. Wait for that.
				if !waitGone(ctx, prev.ShimPID, prev.ShimStart, 5*time.Second) {
					return s, fmt.Errorf("exec: supervisor of %s does not finish", spec.InstanceID)
				}
			} else {
				return s, nil // running: leave it alone (adoption)
			}
		}
	case errors.Is(err, fs.ErrNotExist):
		prev = &state{}
	default:
		return driver.Status{}, err
	}

	hostPorts, err := pickPorts(spec, prev.HostPorts)
	if err != nil {
		return driver.Status{}, err
	}
	st := &state{
		HostID:    d.cfg.HostID,
		Spec:      spec,
		HostPorts: hostPorts,
		Env:       environ(spec, hostPorts),
		Isolated:  d.isolated,
		Launch:    prev.Launch + 1,
	}
	if d.isolated {
		st.CgroupRoot = d.cfg.CgroupRoot
		st.Cgroups = cgroupPaths(d.cfg.CgroupRoot, d.cfg.CgroupParent, d.cfg.HostID, spec.InstanceID, cgroupV2(d.cfg.CgroupRoot))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return driver.Status{}, fmt.Errorf("exec: %w", err)
	}
	if err := writeState(dir, st); err != nil {
		return driver.Status{}, fmt.Errorf("exec: %w", err)
	}
	if err := d.launch(ctx, dir, spec.Secrets); err != nil {
		err = fmt.Errorf("exec: start %s: %w", spec.InstanceID, err)
		if ctx.Err() == nil {
			err = driver.StartFailedError(err) // the command does not start
		}
		return status(st), err
	}
	if st, err = readState(dir); err != nil {
		return driver.Status{}, err
	}
	d.log.Debug("started", "instance", spec.InstanceID, "pid", st.PID, "port", hostPorts[0])
	return status(st), nil
}

// Settle gives a booted instance its own CPU limit (driver.Booster). An
// instance without cgroups (not isolated) has no limit to set.
func (d *Driver) Settle(ctx context.Context, instanceID string, cpuMillis int) error {
	if err := validID(instanceID); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	defer d.lock(instanceID)()
	st, err := readState(d.dir(instanceID))
	if errors.Is(err, fs.ErrNotExist) {
		return driver.ErrNotFound
	}
	if err != nil {
		return err
	}
	if st.HostID != d.cfg.HostID {
		return driver.ErrNotFound
	}
	if !st.Isolated {
		return nil
	}
	return setCgroupCPU(st.CgroupRoot, st.Cgroups, cpuMillis)
}

// launch starts a supervisor for the instance in dir and waits for its word
// that the instance runs. The app's secrets reach the supervisor in its
// environment (memory), never in state.json.
func (d *Driver) launch(ctx context.Context, dir string, secrets map[string]string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := osexec.Command(d.cfg.Shim[0], d.cfg.Shim[1:]...)
	cmd.Args[0] = "wharf-exec-shim"
	cmd.Env = append([]string{envShim + "=" + dir}, d.cfg.ShimEnv...)
	for k, v := range secrets {
		cmd.Env = append(cmd.Env, envSecret+k+"="+v)
	}
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = shimAttr()
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("start supervisor: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reap it whenever it ends
	word := make(chan string, 1)
	go func() {
		defer r.Close()
		// "ok", or an error message, then EOF. Take "ok" at once: nothing
		// should hold the pipe open any longer, but nothing may hang on it.
		var b []byte
		buf := make([]byte, 512)
		for {
			n, err := r.Read(buf)
			b = append(b, buf[:n]...)
			if string(b) == "ok" || err != nil {
				word <- string(b)
				return
			}
		}
	}()
	select {
	case msg := <-word:
		switch msg {
		case "ok":
			return nil
		case "":
			return errors.New("supervisor exited")
		default:
			return errors.New(msg)
		}
	case <-ctx.Done():
		return ctx.Err() // the supervisor goes on; the next Start adopts it
	}
}

// waitGone waits until pid (started at start) is gone, for at most timeout.
func waitGone(ctx context.Context, pid int, start uint64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid, start) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// Stop implements driver.Driver: SIGTERM to the instance's process group,
// SIGKILL after grace; then the supervisor, the group's and the cgroup's
// leftovers, and the instance's directory go.
func (d *Driver) Stop(ctx context.Context, instanceID string, grace time.Duration) error {
	if validID(instanceID) != nil {
		return nil
	}
	defer d.lock(instanceID)()
	dir := d.dir(instanceID)
	st, err := readState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.RemoveAll(dir) // nothing, or a launch that never wrote its state
	}
	if err != nil {
		return err
	}
	if st.HostID != d.cfg.HostID {
		return nil // another host's: not ours to stop
	}
	if alive(st.PID, st.PIDStart) {
		signalGroup(st.PID, syscall.SIGTERM)
		if !waitGone(ctx, st.PID, st.PIDStart, grace) {
			signalGroup(st.PID, syscall.SIGKILL)
			waitGone(ctx, st.PID, st.PIDStart, 5*time.Second)
		}
	}
	// The supervisor records the exit and leaves; one that hangs is killed
	// (and the instance with it, by Pdeathsig).
	if !waitGone(ctx, st.ShimPID, st.ShimStart, 2*time.Second) {
		_ = syscall.Kill(st.ShimPID, syscall.SIGKILL)
		waitGone(ctx, st.ShimPID, st.ShimStart, 2*time.Second)
	}
	if st.PID > 0 && ownGroup(st.PID, st.PIDStart) {
		signalGroup(st.PID, syscall.SIGKILL)
		// Stopped means gone: a restart must not meet the old one's
		// processes (its port, its files).
		for deadline := time.Now().Add(5 * time.Second); groupAlive(st.PID) && time.Now().Before(deadline) && ctx.Err() == nil; {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if len(st.Cgroups) > 0 {
		if err := removeCgroup(st.Cgroups, 5*time.Second); err != nil {
			return fmt.Errorf("exec: stop %s: %w", instanceID, err)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// A supervisor killed on a loaded machine may still write its exit
	// record while the directory goes ("directory not empty"): try again
	// for a moment before calling the stop failed.
	err = os.RemoveAll(dir)
	for deadline := time.Now().Add(2 * time.Second); err != nil && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(50 * time.Millisecond)
		err = os.RemoveAll(dir)
	}
	if err != nil {
		return fmt.Errorf("exec: stop %s: %w", instanceID, err)
	}
	return nil
}

// ownGroup reports whether the process group led by the instance's first
// process (pid, started at start) may still hold its leftovers: its leader
// is that process, or gone (a pid stays unused while a group bears its
// number). A pid reused by another process means the group is not ours.
func ownGroup(pid int, start uint64) bool {
	_, s, err := procStat(pid)
	return errors.Is(err, fs.ErrNotExist) || (err == nil && s == start)
}

// Inspect implements driver.Driver.
func (d *Driver) Inspect(ctx context.Context, instanceID string) (driver.Status, error) {
	dir, st, err := d.own(instanceID)
	if err != nil {
		return driver.Status{}, err
	}
	return statusAt(dir, st), nil
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context) ([]driver.Status, error) {
	entries, err := os.ReadDir(filepath.Join(d.cfg.DataDir, "exec"))
	if err != nil {
		return nil, fmt.Errorf("exec: list: %w", err)
	}
	var out []driver.Status
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir, st, err := d.own(e.Name())
		if err != nil {
			continue // another host's, or half-created
		}
		out = append(out, statusAt(dir, st))
	}
	return out, nil
}
