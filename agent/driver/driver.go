// Package driver is the contract between the agent and the runtimes that run
// instances (Docker, a supervised process, later Kubernetes). It is modelled
// on database/sql/driver: a small interface, several implementations in
// sub-packages, and one conformance suite (drivertest) that every
// implementation, fake or real, must pass.
//
// A driver only runs and reports. Restart policy, health checks and the
// assignment loop live in the agent; they call Start again when an instance
// has exited and Stop when it is no longer assigned.
package driver

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Inspect and Logs for an instance the driver does
// not know on this host.
var ErrNotFound = errors.New("instance not found")

// Start failures, matched with errors.Is on what Start returns, so that
// the agent can tell its hub why an instance does not run. The error's
// text is the runtime's own (for a pull, the registry's).
var (
	// ErrImagePull: the instance's image could not be pulled.
	ErrImagePull = errors.New("image pull failed")
	// ErrStartFailed: the runtime refused to start the instance (a bad
	// command or spec).
	ErrStartFailed = errors.New("start failed")
)

// StartError is what Start returns when it could not start an instance:
// Kind (ErrImagePull or ErrStartFailed) says why, Err is the cause.
type StartError struct {
	Kind error
	Err  error
}

// Error returns the cause's text: the runtime's own words.
func (e *StartError) Error() string { return e.Err.Error() }

// Unwrap makes errors.Is match both the kind and the cause.
func (e *StartError) Unwrap() []error { return []error{e.Kind, e.Err} }

// ImagePullError wraps err, the failure to pull an instance's image.
func ImagePullError(err error) error { return &StartError{Kind: ErrImagePull, Err: err} }

// StartFailedError wraps err, the runtime's refusal to start an instance.
func StartFailedError(err error) error { return &StartError{Kind: ErrStartFailed, Err: err} }

// Spec is one instance of one app version, as the agent asks a driver to run
// it. A Spec never changes for a given InstanceID: a new version is a new
// instance.
type Spec struct {
	InstanceID string // unique in the cluster; a DNS label (the container's hostname)
	Tenant     string
	App        string
	Version    int
	Image      string            // docker: required; exec: ignored
	Command    []string          // docker: overrides the image's command when set; exec: required (argv)
	Env        map[string]string // PORT is set by the driver: docker the first port's ContainerPort, exec its host port
	CPU        int               // millicores; 0: no limit
	Memory     int               // MB; 0: no limit
	Ports      []Port
	// Health is the app's health check, for drivers whose runtime checks
	// readiness itself (Readiness: a Kubernetes readiness probe). Nil: no
	// check, ready once running. Other drivers ignore it: the agent runs
	// their checks.
	Health *Health
	// Secrets are the app's secrets, added to the instance's environment
	// over Env. A driver never writes them to its own files in plain
	// (hence no JSON); the agent holds them in memory only.
	Secrets map[string]string `json:"-"`
	// RegistryAuth, when set, is the tenant's credentials for the private
	// registry Image is pulled from (docker; others ignore it). Kept in
	// memory only.
	RegistryAuth *RegistryAuth
	// AlwaysPull: pull Image for every new container even when the host
	// has it (docker): its registry is private, and must check this
	// tenant's access. Otherwise an image is pulled only when missing.
	AlwaysPull bool
}

// RegistryAuth is what a pull from a private registry needs.
type RegistryAuth struct {
	Server   string // host[:port], as the image names it
	Username string
	Password string
}

// Health describes a health check: exactly one of HTTP, TCP and Command.
type Health struct {
	HTTP     string   // path of a GET on Port; 2xx and 3xx pass
	TCP      int      // a port that must accept a connection
	Command  []string // argv run in the instance; exit 0 passes
	Port     int      // the container port of HTTP; 0: the first port
	Interval time.Duration
	Timeout  time.Duration
}

// Port is a port the instance listens on.
type Port struct {
	Name          string
	ContainerPort int    // docker: the port inside the container; exec: only the key in Status.Ports (0: the host port)
	Protocol      string // "tcp" or "udp"; "" means tcp
	HostPort      int    // 0: the driver picks a free port on the host
}

// State is what a driver sees of an instance.
type State string

// Instance states as drivers report them.
const (
	StateRunning State = "running" // the process or container runs
	StateExited  State = "exited"  // it ran and stopped; ExitCode says how
	StateCreated State = "created" // it exists but never ran (or start failed)
	// StatePending: the runtime accepted it and will start it (a Pod
	// waiting for a node or its image). Not a failure: the agent waits.
	StatePending State = "pending"
)

// Status is the observed state of one instance.
type Status struct {
	InstanceID string
	Tenant     string
	App        string
	Version    int
	State      State
	ExitCode   int
	// StartedAt and FinishedAt are zero when unknown.
	StartedAt  time.Time
	FinishedAt time.Time
	// Ports maps each container port to the host port it is reachable on.
	Ports map[int]int
	// Address is HOST_IP:PORT of the first port (127.0.0.1 for loopback-only
	// set-ups; the agent replaces the host part with its advertise address,
	// unless Routable).
	Address string
	// Routable says Address is reachable from other hosts as it is (a Pod
	// IP): the agent keeps it.
	Routable bool
	// Ready is the runtime's own readiness, for drivers that implement
	// Readiness (a Pod's Ready condition); false otherwise.
	Ready bool
	// Restarts counts the runtime's own restarts of the instance (a Pod's
	// restartCount); 0 where the agent restarts instances itself.
	Restarts int
	// Waiting, for a pending instance, says why it will not start by
	// itself (a StartError: its image cannot be pulled, or the runtime
	// cannot make it); nil while it just waits its turn.
	Waiting error
}

// LogLine is one line an instance wrote.
type LogLine struct {
	Time   time.Time
	Stream string // "stdout" or "stderr"
	Line   string // without the trailing newline
}

// LogOptions selects lines for Logs.
type LogOptions struct {
	Since  time.Time // zero: from the first retained line
	Follow bool      // keep reading until ctx ends or the instance is removed
}

// Driver runs instances on one host. Implementations are safe for concurrent
// use; operations on different instances never block each other for long.
type Driver interface {
	// Name is the driver's name as --driver and the inventory spell it.
	Name() string

	// Start makes the instance run. It is idempotent: an instance that runs
	// already is left alone (that is how a restarted agent adopts it); an
	// instance that exited is started again; a missing one is created.
	// It returns once the runtime reports the instance running. An image
	// that cannot be pulled is an error matching ErrImagePull; a command
	// or spec the runtime refuses, one matching ErrStartFailed.
	Start(ctx context.Context, spec Spec) (Status, error)

	// Stop stops the instance (SIGTERM, then SIGKILL after grace) and removes
	// it with everything the driver kept for it. Stopping a missing instance
	// is not an error.
	Stop(ctx context.Context, instanceID string, grace time.Duration) error

	// Inspect reports one instance, or ErrNotFound.
	Inspect(ctx context.Context, instanceID string) (Status, error)

	// List reports every instance this driver runs for this host (and only
	// for this host: two agents sharing one Docker daemon never see each
	// other's containers). A restarted agent calls it to adopt what runs.
	List(ctx context.Context) ([]Status, error)

	// Logs calls fn for each line of the instance's output in order, until
	// the lines run out (or, with Follow, until ctx ends or the instance is
	// removed). An error from fn stops it and is returned.
	Logs(ctx context.Context, instanceID string, opts LogOptions, fn func(LogLine) error) error
}

// Execer is implemented by drivers that can run a command inside an
// instance (its container), for command health checks. The agent runs the
// command on the host, with PORT set, for drivers without it (an exec
// instance shares the host's network).
type Execer interface {
	// Exec runs argv in the instance and returns its exit code.
	Exec(ctx context.Context, instanceID string, argv []string) (int, error)
}

// Readiness is implemented by drivers whose runtime checks readiness
// itself (Kubernetes: the readiness probe made from Spec.Health). The
// agent takes their word instead of running the health check: it could
// not reach their instances anyway.
type Readiness interface {
	// Ready reports whether the runtime says the instance st describes
	// is ready to serve.
	Ready(st Status) bool
}

// BootCPU is the CPU, in millicores, an instance with a smaller limit
// gets while it boots (a Booster's Start gives it at least this much).
// An app's start-up (a runtime, a JIT, caches filled) takes far more CPU
// than its steady state: under a quota of a tenth of a core a process
// that needs 12 ms of CPU to listen waits a whole 100 ms period for its
// next slice. The boost is not the tenant's reservation: placement
// counts the app's own CPU, and a busy host shares its cores between
// booting instances by the kernel's weights.
const BootCPU = 1000

// BootLimit is the CPU limit, in millicores, of an instance that reserves
// cpuMillis while it boots: its own raised to BootCPU. No limit (0) stays
// none.
func BootLimit(cpuMillis int) int {
	if cpuMillis <= 0 {
		return 0
	}
	return max(cpuMillis, BootCPU)
}

// CPUShares is the CFS weight (cgroup v1 cpu.shares, 1024 a core) of an
// instance that reserves cpuMillis, as Kubernetes weighs a Pod's request:
// under contention each instance gets CPU in proportion to its
// reservation, so one that boosts (BootCPU) or runs without a limit
// takes only what the reserved ones leave. 0 (no reservation) is the
// kernel's default, 1024.
func CPUShares(cpuMillis int) int64 {
	if cpuMillis <= 0 {
		return 1024
	}
	return max(int64(cpuMillis)*1024/1000, 2)
}

// Booster is implemented by drivers that start an instance with its CPU
// limit raised to at least BootCPU. The agent calls Settle once the
// instance is ready (or has had its boot's grace) to give it its own
// limit; Settle on an instance already at its limit changes nothing.
type Booster interface {
	Settle(ctx context.Context, instanceID string, cpuMillis int) error
}

// Capacity is what a driver's runtime offers as a whole: a cluster's
// allocatable CPU and memory over its Ready, schedulable nodes.
type Capacity struct {
	CPUMillis   int64
	MemoryBytes uint64
	// Nodes is how many nodes count.
	Nodes int
}

// CapacityReporter is implemented by drivers whose host is a cluster:
// its capacity is the runtime's, not the agent's machine's, and it
// changes as nodes come and go. The agent reports it in its inventory
// and sends the inventory again when it changes.
type CapacityReporter interface {
	// Capacity returns the current capacity.
	Capacity() Capacity
	// CapacityChanged is signalled (never closed) after Capacity changed.
	// One reader at a time.
	CapacityChanged() <-chan struct{}
}

// Usage is one instance's resource use as its runtime measures it.
type Usage struct {
	InstanceID, App, Tenant string
	// Time is when the runtime measured it.
	Time time.Time
	// CPUSeconds is the CPU time used since the instance started (or
	// since the driver first saw it).
	CPUSeconds       float64
	MemoryWorkingSet uint64
}

// UsageReporter is implemented by drivers whose instances the agent's
// own sampler cannot see (Pods on a cluster's nodes): they measure them
// through their runtime (the metrics API). The agent samples them instead
// of its host.
type UsageReporter interface {
	// Usage reports the instances' use now; nothing (and no error) when
	// the runtime does not measure it.
	Usage(ctx context.Context) ([]Usage, error)
}

// TermSize is a terminal's size in character cells.
type TermSize struct{ Cols, Rows uint16 }

// ExecRequest is an interactive command to run in an instance (`wharf app
// exec`). Nil streams are empty (Stdin) or discarded (Stdout, Stderr).
type ExecRequest struct {
	Cmd []string // argv; Cmd[0] is looked up in the instance's PATH
	// TTY runs the command on a terminal of Size: its output (stdout and
	// stderr together) arrives on Stdout, and Resize changes its size.
	TTY    bool
	Size   TermSize
	Resize <-chan TermSize
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// ExecStreamer is implemented by drivers that run interactive commands
// in their instances. Kept apart from Execer (health checks want only an
// exit code), so that a driver may offer one without the other.
type ExecStreamer interface {
	// ExecStream runs req in the instance until the command exits (its
	// exit code) or ctx ends (the command is killed). ErrNotFound: no
	// such instance on this host; any other error: the runtime's.
	ExecStream(ctx context.Context, instanceID string, req ExecRequest) (int, error)
}
