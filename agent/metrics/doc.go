// Package metrics samples the resource use of the host and of this agent's
// instances through an embedded cAdvisor (github.com/google/cadvisor
// v0.60.6 with its lib module), and serves the instances' series in
// Prometheus form.
//
//	c, err := metrics.New(metrics.Config{HostID: id, Logger: log, ExecCgroups: execDriver.Cgroups})
//	go c.Run(ctx)                    // starts cAdvisor, samples every Interval
//	s := c.Latest()                  // host + per-instance counters
//	promhttp.HandlerFor(c.Gatherer(), promhttp.HandlerOpts{}) // on /metrics
//
// # What is an instance
//
// A Docker container is an instance of this host when its labels say
// wharf.host=<HostID> and carry a wharf.instance (the docker driver's
// labels; wharf.app and wharf.tenant name its app and tenant). An exec
// instance is a cgroup: Config.ExecCgroups maps instance ids to cgroup
// paths relative to the cgroup mount ("/wharf/<host>/<id>", the exec
// driver's layout), and Config.ExecLabels may name their app and tenant.
// Everything else cAdvisor sees (other hosts' containers, other cgroups)
// is left out of samples and of the Gatherer. The host is cAdvisor's root
// container "/" plus its machine info; its disk is the file system holding
// "/".
//
// # How cAdvisor is set up
//
//   - Container factories: Docker (container/docker/install) and cAdvisor's
//     raw cgroup factory, which the manager always registers. The raw
//     factory accepts "/" and only the cgroups under its whitelist
//     (Config.ExecCgroupPrefixes; by default "/wharf/<HostID>/" and the
//     paths ExecCgroups returns when Run starts), so cAdvisor does not
//     housekeep every cgroup of the machine. Without ExecCgroups it
//     tracks "/" and Docker containers only. No containerd, cri-o, podman
//     or systemd plugin is imported.
//   - File system plugins: vfs (ext*, xfs, ...), overlay and btrfs, which
//     read mountinfo and statfs; without them cAdvisor knows no file
//     system and container_fs_usage_bytes is missing. Not nfs (a remote
//     server), zfs or devicemapper (they run commands). They are
//     registered by statfs.go, each with a statfs of its own: cAdvisor's
//     shares its results with a statfs that outlasts its timeout.
//   - Metric set: cpu, memory, network, disk (usage). Left out: per-cpu
//     usage (one series per core per container), sched, cpuLoad (netlink),
//     diskIO, tcp/advtcp/udp (read per network namespace), process,
//     hugetlb, memory_numa, referenced_memory (walks page tables),
//     cpu_topology, cpuset, resctrl, perf_event, pressure, oom_event.
//   - Housekeeping: cAdvisor housekeeps each container on its own timer,
//     every second by default. The first Run in a process sets that
//     baseline (the housekeeping_interval flag) to its Interval (or to
//     FastInterval when Fast is set and that is shorter); containers
//     whose stats do not change back off to 6 Intervals (dynamic
//     housekeeping; their values are unchanged anyway). So an instance's
//     stats in a sample are at most about two Intervals old; InstanceStats
//     carries the time cAdvisor read them, for rates.
//   - Samples read cAdvisor's in-memory cache (2 minutes at most); neither
//     Latest nor the Gatherer triggers housekeeping.
//
// # Process-wide state, and what outlives Run
//
// cAdvisor keeps its factory table, its flags and its logger (klog)
// process-wide, so only one Collector runs at a time in a process (a second
// Run fails). The first Collector that runs routes klog, and so cAdvisor's
// log lines, to its Logger (component=cadvisor), for the life of the
// process: klog cannot safely change loggers while anything logs.
//
// cAdvisor v0.60.6's manager.Stop stops its watchers and global
// housekeeping but not the per-container housekeeping goroutines: after
// Run returns, those of the containers it tracked keep reading their
// cgroups (at their housekeeping interval) until the process exits. The
// agent runs one Collector for its whole life, so this costs nothing
// there; it matters for tests, and once when Docker comes up late (below).
//
// cAdvisor registers its Docker factory only if the daemon answers when
// the manager starts (without a daemon, the first start in a process also
// takes about 5 s: cAdvisor retries the daemon's root dir 5 times, 1 s
// apart; Run is cancellable meanwhile). While it is missing, Run asks the daemon every 30 s
// and, once it answers, restarts cAdvisor (leaking the old manager's few
// root and exec housekeepers, see above).
//
// # Network
//
// Nothing here probes the network. cAdvisor's cloud-info providers
// (utils/cloudinfo/{aws,gce,azure}, which query instance metadata
// services) are not imported, and neither is the core utils/cloudinfo
// package: in v0.60.6 the lib manager does not use it (go list -deps shows
// no cloudinfo package). Had it been linked, it would not probe either: its
// NewRealCloudInfo only asks registered providers, and providers register
// only from their own packages' init. The Docker client talks to the
// daemon's unix socket (cAdvisor's -docker flag, unix:///var/run/docker.sock
// by default; DOCKER_HOST is not read), and only when Docker runs with the
// containerd snapshotter does cAdvisor dial containerd's unix socket. The
// Gatherer serves; it dials nothing.
//
// # Prometheus series
//
// Gatherer serves cAdvisor's own collector (lib/metrics), so the names are
// cAdvisor's: container_cpu_usage_seconds_total (label cpu="total": per-cpu
// is off), container_memory_working_set_bytes, container_memory_usage_bytes,
// container_network_{receive,transmit}_bytes_total (per interface),
// container_fs_usage_bytes (per device), container_spec_memory_limit_bytes,
// and the rest of cAdvisor's cpu/memory/network/disk families, plus
// cadvisor_version_info and container_scrape_error. Each container series
// has exactly the labels instance, app and tenant (and cAdvisor's own
// per-series ones: cpu, interface, device, ...) — not id, name, image, or
// container_label_*. Note that Prometheus attaches its own "instance" label
// to every scraped target: a scrape config needs honor_labels: true (or a
// relabelling on the hub) to keep ours.
package metrics
