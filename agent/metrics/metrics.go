package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/cadvisor/container/docker"
	"github.com/google/cadvisor/lib/cache/memory"
	"github.com/google/cadvisor/lib/container"
	"github.com/google/cadvisor/lib/manager"
	info "github.com/google/cadvisor/lib/model"
	"github.com/google/cadvisor/lib/utils/sysfs"
	"github.com/google/cadvisor/lib/watcher"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	// The Docker container factory: importing it registers cAdvisor's
	// "docker" plugin in cAdvisor's process-wide plugin table. No other
	// container plugin (containerd, cri-o, podman, systemd) is imported,
	// and no cloud provider.
	_ "github.com/google/cadvisor/container/docker/install"
)

// DefaultInterval is the sampling interval when Config.Interval is zero.
const DefaultInterval = 10 * time.Second

// Docker labels that mark a container as a wharf instance. They are the
// labels the docker driver puts on its containers (agent/driver/docker).
const (
	LabelInstance = "wharf.instance"
	LabelApp      = "wharf.app"
	LabelTenant   = "wharf.tenant"
	LabelHost     = "wharf.host"
)

// Config configures a Collector.
type Config struct {
	// HostID: only containers with label wharf.host == HostID are instances
	// of this agent.
	HostID string
	// Interval is the sampling interval. The first Run in a process also
	// makes it (or FastInterval, when Fast is set and that is shorter)
	// cAdvisor's per-container housekeeping interval (see doc.go).
	// Zero: DefaultInterval.
	Interval time.Duration
	// Logger receives the collector's and cAdvisor's log lines (cAdvisor
	// logs through klog, which Run points at this logger). Nil: slog.Default.
	Logger *slog.Logger
	// ExecCgroups, when set, returns the exec driver's instances: instance
	// id -> cgroup path relative to the cgroup mount, e.g.
	// "/wharf/<host>/<id>". It is called once per sample (and per scrape of
	// the Gatherer), so it should be cheap.
	ExecCgroups func() map[string]string
	// ExecLabels, when set, names the app and tenant of an exec instance
	// (exec instances have no Docker labels). Optional.
	ExecLabels func(instanceID string) (app, tenant string)
	// ExecCgroupPrefixes are the cgroup path prefixes below which cAdvisor
	// tracks raw cgroups at all (its raw_cgroup_prefix_whitelist, fixed
	// when Run starts). Empty, and ExecCgroups set: "/wharf/<HostID>/" (the
	// exec driver's default layout) plus every path ExecCgroups returns
	// when Run starts. A cgroup outside them is never sampled, even when
	// ExecCgroups names it. Ignored without ExecCgroups.
	ExecCgroupPrefixes []string
	// Fast, when set, names the instances whose stats are wanted every
	// FastInterval (the hub scales their app on CPU or memory): between
	// full samples, those alone are read afresh (cAdvisor housekeeps them
	// on demand) and the sample is marked Partial. Zero FastInterval: 1 s.
	Fast         func(instanceID string) bool
	FastInterval time.Duration
}

// Sample is what one sampling round saw.
type Sample struct {
	Time      time.Time
	Host      HostStats
	Instances []InstanceStats // sorted by Instance
	// Partial: only the Fast instances were read afresh (Host and the
	// others are the last full sample's).
	Partial bool
}

// InstanceStats are one instance's cumulative counters and gauges, as
// cAdvisor read them at Timestamp.
type InstanceStats struct {
	Instance, App, Tenant string
	// Timestamp is when cAdvisor read these stats (its last housekeeping of
	// the container, at most about 2 Intervals before Sample.Time).
	Timestamp time.Time
	// CPUSeconds is cumulative CPU time (container_cpu_usage_seconds_total).
	CPUSeconds float64
	// MemoryWorkingSet and MemoryUsage are container_memory_working_set_bytes
	// and container_memory_usage_bytes.
	MemoryWorkingSet, MemoryUsage uint64
	// NetRxBytes and NetTxBytes are summed over the container's interfaces
	// (container_network_{receive,transmit}_bytes_total); zero for exec
	// instances, which share the host's network.
	NetRxBytes, NetTxBytes uint64
	// FsUsageBytes is summed over the container's filesystems
	// (container_fs_usage_bytes): a Docker container's writable layer.
	FsUsageBytes uint64
}

// HostStats describe the whole host (cAdvisor's root container "/").
type HostStats struct {
	CPUSeconds             float64 // cumulative, all cores
	MemoryTotal            uint64  // machine memory capacity
	MemoryUsed             uint64  // root cgroup working set
	DiskTotal, DiskUsed    uint64  // the file system holding "/"
	NetRxBytes, NetTxBytes uint64  // summed over the host's interfaces
}

// Collector samples the host and this agent's instances through an embedded
// cAdvisor manager. Only one Collector may Run at a time in a process:
// cAdvisor keeps its container factories, flags and logger process-wide.
type Collector struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	prom     prometheus.Collector

	mu     sync.Mutex
	mgr    manager.Manager // nil when not running
	latest Sample
	names  map[string]string // instance id -> cAdvisor container name, from the last full sample

	// Docker may come up after the agent: cAdvisor registers its Docker
	// factory only when the daemon answers at start, so while it is
	// missing Run asks the daemon every dockerRetry and restarts cAdvisor
	// once it answers. Fields for tests.
	dockerRetry      time.Duration
	dockerRegistered func() bool
	dockerUp         func(context.Context) bool
}

// running guards cAdvisor's process-wide factory table: one Collector runs
// at a time.
var running sync.Mutex

// processOnce sets what cAdvisor keeps process-wide (klog's logger, the
// housekeeping flag) for the first Collector that runs.
var processOnce sync.Once

// New checks cfg and returns a Collector. It starts nothing.
func New(cfg Config) (*Collector, error) {
	if cfg.HostID == "" {
		return nil, errors.New("metrics: empty host id")
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("metrics: negative interval %v", cfg.Interval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.FastInterval <= 0 {
		cfg.FastInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Collector{
		cfg:              cfg,
		log:              cfg.Logger.With("component", "metrics"),
		dockerRetry:      30 * time.Second,
		dockerRegistered: dockerFactoryRegistered,
		dockerUp:         dockerAnswers,
	}
	c.prom = newPromCollector(c)
	c.registry = prometheus.NewRegistry()
	if err := c.registry.Register(c.prom); err != nil {
		return nil, fmt.Errorf("metrics: register collector: %w", err)
	}
	return c, nil
}

// Latest returns the last sample; the zero Sample before the first one.
func (c *Collector) Latest() Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.latest
	s.Instances = append([]InstanceStats(nil), s.Instances...)
	return s
}

// Gatherer serves the instances' series under cAdvisor's metric names
// (container_cpu_usage_seconds_total, container_memory_working_set_bytes,
// ...) with the labels instance, app and tenant, read from cAdvisor at
// each gather. It is empty while Run is not running.
func (c *Collector) Gatherer() prometheus.Gatherer { return c.registry }

// PrometheusCollector is the collector behind Gatherer, for a caller that
// merges it into a registry of its own (register it there only, then).
func (c *Collector) PrometheusCollector() prometheus.Collector { return c.prom }

// metricSet is what cAdvisor collects: CPU, memory, network and disk usage.
// Everything else (per-cpu, scheduler, load, disk I/O, tcp/udp, processes,
// hugetlb, referenced memory, topology, resctrl, perf, pressure, OOM) is
// left out; see doc.go.
func metricSet() container.MetricSet {
	return container.MetricSet{
		container.CpuUsageMetrics:     struct{}{},
		container.MemoryUsageMetrics:  struct{}{},
		container.NetworkUsageMetrics: struct{}{},
		container.DiskUsageMetrics:    struct{}{},
	}
}

// Run starts the cAdvisor manager, samples every Interval until ctx ends,
// then stops the manager. It returns nil when ctx ends, an error when
// cAdvisor cannot start or another Collector runs in this process.
func (c *Collector) Run(ctx context.Context) error {
	if !running.TryLock() {
		return errors.New("metrics: another collector is running in this process")
	}
	// klog's logger, and cAdvisor's baseline housekeeping interval (a
	// flag), are process-wide and read, unsynchronized, by housekeeping
	// goroutines that outlive a stopped manager (see doc.go): the first
	// Collector that runs in a process sets both, once.
	tick := c.cfg.Interval
	if c.cfg.Fast != nil {
		tick = min(tick, c.cfg.FastInterval)
	}
	processOnce.Do(func() {
		klog.SetSlogLogger(c.cfg.Logger.With("component", "cadvisor"))
		*manager.HousekeepingInterval = tick
	})
	release := running.Unlock

	m, err := c.start(ctx, release)
	if m == nil {
		return err // release is done, or left to the start in progress
	}
	defer func() {
		if m != nil {
			c.stopManager(m)
		}
		release()
	}()
	c.log.Info("metrics collector started", "interval", c.cfg.Interval, "docker", c.dockerRegistered())

	t := time.NewTicker(tick)
	defer t.Stop()
	lastDockerCheck := time.Now()
	var lastFull time.Time
	for {
		if time.Since(lastFull) >= c.cfg.Interval-tick/2 {
			c.sampleOnce(m)
			lastFull = time.Now()
		} else {
			c.sampleFast(m, tick)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if time.Since(lastDockerCheck) < c.dockerRetry || c.dockerRegistered() {
			continue
		}
		lastDockerCheck = time.Now()
		if !c.dockerUp(ctx) {
			continue
		}
		c.log.Info("docker daemon answers: restarting cadvisor to watch its containers")
		c.stopManager(m)
		if m, err = c.startManager(); err != nil {
			return err // m is nil: nothing left to stop
		}
	}
}

// start starts cAdvisor aside: manager.New waits out a Docker daemon that
// accepts but does not answer (cAdvisor retries it), so ctx may end first.
// Then start returns nil and leaves stopping and release to the start in
// progress.
func (c *Collector) start(ctx context.Context, release func()) (manager.Manager, error) {
	type started struct {
		m   manager.Manager
		err error
	}
	ch := make(chan started, 1)
	go func() {
		m, err := c.startManager()
		ch <- started{m, err}
	}()
	select {
	case s := <-ch:
		if s.err != nil {
			release()
		}
		return s.m, s.err
	case <-ctx.Done():
		go func() {
			if s := <-ch; s.m != nil {
				c.stopManager(s.m)
			}
			release()
		}()
		return nil, nil
	}
}

// dockerFactoryRegistered tells whether cAdvisor watches Docker containers.
func dockerFactoryRegistered() bool {
	for _, f := range container.GetReorderedFactoryList(watcher.Raw) {
		if f.String() == docker.DockerNamespace {
			return true
		}
	}
	return false
}

// dockerAnswers tells whether the Docker daemon cAdvisor talks to (its
// -docker flag, unix:///var/run/docker.sock by default) answers.
func dockerAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := docker.StatusWithContext(ctx)
	return err == nil
}

func (c *Collector) startManager() (manager.Manager, error) {
	// Containers whose stats did not change since the last housekeeping are
	// looked at less often, up to 6 intervals apart: their values are the
	// same anyway.
	maxHK := 6 * c.cfg.Interval
	dynamic := true
	cache := memory.New(max(2*time.Minute, 3*maxHK), nil)
	m, err := manager.New(cache, sysfs.NewRealSysFs(),
		manager.HousekeepingConfig{Interval: &maxHK, AllowDynamic: &dynamic},
		metricSet(), c.rawPrefixes(), nil, "", 0)
	if err != nil {
		return nil, fmt.Errorf("metrics: cadvisor manager: %w", err)
	}
	if err := m.Start(); err != nil {
		c.stopManager(m)
		return nil, fmt.Errorf("metrics: start cadvisor manager: %w", err)
	}
	c.mu.Lock()
	c.mgr = m
	c.mu.Unlock()
	return m, nil
}

func (c *Collector) stopManager(m manager.Manager) {
	c.mu.Lock()
	if c.mgr == m {
		c.mgr = nil
	}
	c.mu.Unlock()
	if err := m.Stop(); err != nil {
		c.log.Warn("stop cadvisor manager", "err", err)
	}
	// Start registers the raw and docker factories anew each time.
	container.ClearContainerHandlerFactories()
}

// rawPrefixes is cAdvisor's raw cgroup whitelist: nil (only "/") without
// exec instances.
func (c *Collector) rawPrefixes() []string {
	if c.cfg.ExecCgroups == nil {
		return nil
	}
	if len(c.cfg.ExecCgroupPrefixes) > 0 {
		return c.cfg.ExecCgroupPrefixes
	}
	out := []string{"/wharf/" + c.cfg.HostID + "/"}
	for _, p := range c.cfg.ExecCgroups() {
		if p = cleanCgroup(p); p != "/" {
			out = append(out, p)
		}
	}
	return out
}

// manager returns the running cAdvisor manager, or nil.
func (c *Collector) manager() manager.Manager {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mgr
}

// query asks cAdvisor for the latest stats of every container it tracks.
var query = info.RequestOptions{IdType: info.TypeName, Count: 1, Recursive: true}

func (c *Collector) sampleOnce(m manager.Manager) {
	infos, err := m.GetContainerInfoV2("/", query)
	if err != nil {
		// A partial failure (a container that went away meanwhile) still
		// returns the others.
		c.log.Debug("cadvisor container info", "err", err)
	}
	identify := c.identifier()
	s := buildSample(time.Now(), infos, identify)
	names := instanceNames(infos, identify)
	if mi, err := m.GetMachineInfo(); err == nil {
		s.Host.MemoryTotal = mi.MemoryCapacity
	} else {
		c.log.Warn("cadvisor machine info", "err", err)
	}
	s.Host.DiskTotal, s.Host.DiskUsed = diskUsage(m, "/")
	c.mu.Lock()
	c.latest, c.names = s, names
	c.mu.Unlock()
}

// sampleFast reads the Fast instances' stats afresh (cAdvisor housekeeps
// a container on demand when its stats are older than half a tick) into
// a Partial copy of the latest sample.
func (c *Collector) sampleFast(m manager.Manager, tick time.Duration) {
	c.mu.Lock()
	s, names := c.latest, c.names
	c.mu.Unlock()
	if s.Time.IsZero() {
		return
	}
	maxAge := tick / 2
	fresh := false
	for i, is := range s.Instances {
		name := names[is.Instance]
		if name == "" || !c.cfg.Fast(is.Instance) {
			continue
		}
		infos, err := m.GetContainerInfoV2(name, info.RequestOptions{IdType: info.TypeName, Count: 1, MaxAge: &maxAge})
		if err != nil {
			c.log.Debug("cadvisor container info", "container", name, "err", err)
			continue
		}
		if st := lastStats(infos[name].Stats); st != nil && st.Timestamp.After(is.Timestamp) {
			if !fresh { // the first change: to a copy, not the latest sample's slice
				s.Instances = slices.Clone(s.Instances)
			}
			s.Instances[i] = instanceStats(identity{Instance: is.Instance, App: is.App, Tenant: is.Tenant}, st)
			fresh = true
		}
	}
	if !fresh {
		return
	}
	s.Time, s.Partial = time.Now(), true
	c.mu.Lock()
	c.latest = s
	c.mu.Unlock()
}

// diskUsage is the size and use of the file system holding dir: cAdvisor's
// view when it knows the device, statfs otherwise (an overlay root).
func diskUsage(m manager.Manager, dir string) (total, used uint64) {
	if fi, err := m.GetDirFsInfo(dir); err == nil && fi.Capacity > 0 {
		return fi.Capacity, fi.Usage
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0
	}
	bs := uint64(st.Bsize)
	return st.Blocks * bs, (st.Blocks - st.Bfree) * bs
}
