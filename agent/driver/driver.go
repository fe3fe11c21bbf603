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
	// set-ups; the agent replaces the host part with its advertise address).
	Address string
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
