// Package docker is the agent's driver for the Docker Engine API: an instance
// is a container named wharf-<instance id>, labelled with its instance, app,
// tenant, version and the host id of the agent that runs it.
//
// Images present locally are never pulled; a missing image is pulled once,
// when an instance needs it. Every port is published on an ephemeral host
// port (or the fixed one a spec asks for) on Config.PublishIP. PORT in the
// container's environment is the first port's container port.
package docker

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/agent/driver"
)

// Name is the driver's name as --driver spells it.
const Name = "docker"

// Config configures a Driver.
type Config struct {
	// HostID is the agent's host id, put on every container as wharf.host.
	// Required.
	HostID string
	// Host is the daemon's address (unix:///var/run/docker.sock,
	// tcp://...). Empty: DOCKER_HOST and the other DOCKER_* variables, else
	// the default socket.
	Host string
	// PublishIP is the host address ports are published on. Empty: 0.0.0.0,
	// reachable from other hosts; 127.0.0.1 keeps instances loopback-only
	// (the local router still reaches them).
	PublishIP string
	// Labels are put on every container besides the wharf.* ones (which
	// win on a clash), so that a tool can find the containers of one
	// setup, such as those of one `wharf dev` data dir. Nil: none.
	Labels map[string]string
	// Logger receives the driver's diagnostics. Nil: slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every optional field at its default.
func DefaultConfig(hostID string) Config {
	return Config{HostID: hostID, PublishIP: "0.0.0.0"}
}

// Validate reports a Config that New would refuse.
func (c Config) Validate() error {
	if c.HostID == "" {
		return errors.New("docker driver: host id required")
	}
	if c.PublishIP != "" {
		if _, err := netip.ParseAddr(c.PublishIP); err != nil {
			return fmt.Errorf("docker driver: publish ip: %w", err)
		}
	}
	return nil
}

// Driver runs instances as Docker containers.
type Driver struct {
	cfg       Config
	cli       *client.Client
	publishIP netip.Addr
	log       *slog.Logger
	locks     [64]sync.Mutex // striped by instance id: one instance's Start/Stop never overlap
	seed      maphash.Seed
}

var _ driver.Driver = (*Driver)(nil)

// New returns a driver talking to the daemon cfg names. It does not contact
// the daemon; call Ping to find out whether one answers.
func New(cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PublishIP == "" {
		cfg.PublishIP = "0.0.0.0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// The client negotiates the API version on its first request (the
	// daemons we meet speak 1.41; the client's default is newer).
	opts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Driver{
		cfg:       cfg,
		cli:       cli,
		publishIP: netip.MustParseAddr(cfg.PublishIP),
		log:       cfg.Logger.With("component", "driver/docker"),
		seed:      maphash.MakeSeed(),
	}, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Ping reports whether the daemon answers.
func (d *Driver) Ping(ctx context.Context) error {
	if _, err := d.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("ping docker: %w", err)
	}
	return nil
}

// Client is the driver's Docker client, for tests and tools that need the
// same daemon.
func (d *Driver) Client() *client.Client { return d.cli }

// Close releases the client's connections.
func (d *Driver) Close() error { return d.cli.Close() }

func (d *Driver) lock(instanceID string) func() {
	mu := &d.locks[maphash.String(d.seed, instanceID)%uint64(len(d.locks))]
	mu.Lock()
	return mu.Unlock
}

var errNameTaken = errors.New("container name taken")

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// inspect returns this host's container of an instance, or
// driver.ErrNotFound (also for another host's container of that name).
func (d *Driver) inspect(ctx context.Context, instanceID string) (container.InspectResponse, error) {
	res, err := d.cli.ContainerInspect(ctx, containerName(instanceID), client.ContainerInspectOptions{})
	if isNotFound(err) {
		return container.InspectResponse{}, driver.ErrNotFound
	}
	if err != nil {
		return container.InspectResponse{}, fmt.Errorf("inspect %s: %w", instanceID, err)
	}
	c := res.Container
	if c.Config == nil || c.Config.Labels[LabelHost] != d.cfg.HostID || c.Config.Labels[LabelInstance] != instanceID {
		return container.InspectResponse{}, driver.ErrNotFound
	}
	return c, nil
}

// Start implements driver.Driver.
func (d *Driver) Start(ctx context.Context, spec driver.Spec) (driver.Status, error) {
	if spec.InstanceID == "" || spec.Image == "" {
		return driver.Status{}, driver.StartFailedError(errors.New("docker: instance id and image required (an app with only a command needs an exec host)"))
	}
	defer d.lock(spec.InstanceID)()

	// A new instance is created first and asked about only once started:
	// its container's name is free, and each call to the daemon is a
	// round trip a deploy waits for. A name taken is an instance already
	// there (adopted, or restarted after its exit) or another host's
	// container of that name (which inspect does not find).
	id, err := d.create(ctx, spec)
	var c container.InspectResponse
	if errors.Is(err, errNameTaken) {
		var ierr error
		if c, ierr = d.inspect(ctx, spec.InstanceID); ierr == nil {
			err = nil
			id = c.ID
		}
		if err == nil && status(c).State == driver.StateRunning {
			return status(c), nil // running already: leave it alone (adoption)
		}
		if err == nil && c.HostConfig != nil && c.HostConfig.NanoCPUs != bootNanoCPUs(spec.CPU) {
			// Settled after an earlier boot: boot again with the boost.
			err = d.setCPU(ctx, id, bootNanoCPUs(spec.CPU))
		}
	}
	if err != nil {
		return driver.Status{}, err
	}
	if _, err := d.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		err = fmt.Errorf("start %s: %w", spec.InstanceID, err)
		if !cerrdefs.IsUnavailable(err) && ctx.Err() == nil {
			err = driver.StartFailedError(err) // the daemon refused it: a bad command, say
		}
		if c.ID == "" {
			c, _ = d.inspect(ctx, spec.InstanceID)
		}
		return status(c), err
	}
	c, err = d.inspect(ctx, spec.InstanceID)
	if err != nil {
		return driver.Status{}, err
	}
	return status(c), nil
}

// Settle gives a booted instance its own CPU limit (driver.Booster).
func (d *Driver) Settle(ctx context.Context, instanceID string, cpuMillis int) error {
	defer d.lock(instanceID)()
	return d.setCPU(ctx, containerName(instanceID), nanoCPUs(cpuMillis))
}

func (d *Driver) setCPU(ctx context.Context, name string, nano int64) error {
	if nano == 0 {
		return nil // no limit, none boosted
	}
	if _, err := d.cli.ContainerUpdate(ctx, name, client.ContainerUpdateOptions{Resources: &container.Resources{NanoCPUs: nano}}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return driver.ErrNotFound
		}
		return fmt.Errorf("set the CPU limit of %s: %w", name, err)
	}
	return nil
}

// create makes an instance's container and returns its id. The image is
// looked for only when the daemon lacks it (the create says so) or the
// spec asks for a pull every time.
func (d *Driver) create(ctx context.Context, spec driver.Spec) (string, error) {
	if spec.AlwaysPull {
		if err := d.ensureImage(ctx, spec.Image, spec.RegistryAuth, true); err != nil {
			return "", err
		}
	}
	exposed, bindings, err := ports(spec, d.publishIP)
	if err != nil {
		return "", err
	}
	cfg := &container.Config{
		Hostname:     spec.InstanceID,
		Image:        spec.Image,
		Env:          env(spec),
		Labels:       labels(d.cfg.HostID, d.cfg.Labels, spec),
		ExposedPorts: exposed,
	}
	if len(spec.Command) > 0 {
		cfg.Cmd = spec.Command
	}
	hc := &container.HostConfig{
		PortBindings: bindings,
		// Restarts are the agent's: it sees the exit and calls Start again.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{
			"max-size": "10m", "max-file": "3",
		}},
	}
	hc.NanoCPUs = bootNanoCPUs(spec.CPU) // Settle sets spec.CPU once it is ready
	if spec.CPU > 0 {
		hc.CPUShares = driver.CPUShares(spec.CPU)
	}
	hc.Memory = memoryBytes(spec.Memory)
	opts := client.ContainerCreateOptions{Name: containerName(spec.InstanceID), Config: cfg, HostConfig: hc}
	res, err := d.cli.ContainerCreate(ctx, opts)
	if isNotFound(err) && !spec.AlwaysPull {
		// The daemon lacks the image: pull it, then create.
		if err := d.ensureImage(ctx, spec.Image, spec.RegistryAuth, false); err != nil {
			return "", err
		}
		res, err = d.cli.ContainerCreate(ctx, opts)
	}
	if cerrdefs.IsConflict(err) {
		return "", fmt.Errorf("create %s: %w: %v", spec.InstanceID, errNameTaken, err)
	}
	if err != nil {
		return "", fmt.Errorf("create %s: %w", spec.InstanceID, err)
	}
	d.log.Debug("created container", "instance", spec.InstanceID, "image", spec.Image)
	return res.ID, nil
}

// ensureImage pulls image, with the registry's credentials when auth is
// set; a failed pull names the registry. With always (a private
// registry's image) it pulls even when the daemon has the image: the
// registry checks this tenant's access, so a private image another
// tenant's pull left on the host does not run without it (an unchanged
// image costs one manifest request). Otherwise it pulls only when the
// daemon lacks the image, so images loaded onto a host run offline.
func (d *Driver) ensureImage(ctx context.Context, image string, auth *driver.RegistryAuth, always bool) error {
	if !always {
		_, err := d.cli.ImageInspect(ctx, image)
		if err == nil {
			return nil
		}
		if !isNotFound(err) {
			return fmt.Errorf("inspect image %s: %w", image, err)
		}
	}
	opts, from, err := pullOptions(image, auth)
	if err != nil {
		return driver.ImagePullError(err)
	}
	d.log.Info("pulling image", "image", image, "registry", from)
	resp, err := d.cli.ImagePull(ctx, image, opts)
	if err != nil {
		return driver.ImagePullError(fmt.Errorf("pull %s from %s: %w", image, from, err))
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return driver.ImagePullError(fmt.Errorf("pull %s from %s: %w", image, from, err))
	}
	return nil
}

// Stop implements driver.Driver. The daemon sends the image's stop signal
// (SIGTERM by default) and SIGKILL after grace, rounded up to a second.
func (d *Driver) Stop(ctx context.Context, instanceID string, grace time.Duration) error {
	defer d.lock(instanceID)()
	c, err := d.inspect(ctx, instanceID)
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.State != nil && c.State.Running {
		secs := int(math.Ceil(grace.Seconds()))
		if _, err := d.cli.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &secs}); err != nil && !isNotFound(err) {
			return fmt.Errorf("stop %s: %w", instanceID, err)
		}
	}
	if _, err := d.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove %s: %w", instanceID, err)
	}
	return nil
}

// Inspect implements driver.Driver.
func (d *Driver) Inspect(ctx context.Context, instanceID string) (driver.Status, error) {
	c, err := d.inspect(ctx, instanceID)
	if err != nil {
		return driver.Status{}, err
	}
	return status(c), nil
}

// List implements driver.Driver: the containers labelled with this host id.
func (d *Driver) List(ctx context.Context) ([]driver.Status, error) {
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: hostFilter(d.cfg.HostID)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]driver.Status, 0, len(res.Items))
	for _, s := range res.Items {
		id := s.Labels[LabelInstance]
		if id == "" {
			continue
		}
		// The summary lacks start and exit times: inspect each one.
		c, err := d.inspect(ctx, id)
		if errors.Is(err, driver.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, status(c))
	}
	return out, nil
}

var _ driver.Execer = (*Driver)(nil)

// Exec implements driver.Execer: argv runs in the instance's container
// (which must belong to this host) until it exits or ctx ends.
func (d *Driver) Exec(ctx context.Context, instanceID string, argv []string) (int, error) {
	if _, err := d.inspect(ctx, instanceID); err != nil {
		return -1, err
	}
	ex, err := d.cli.ExecCreate(ctx, containerName(instanceID), client.ExecCreateOptions{Cmd: argv})
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", instanceID, err)
	}
	if _, err := d.cli.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", instanceID, err)
	}
	for {
		res, err := d.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", instanceID, err)
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
