// Package inventory describes the agent's host to the hub: what the hub
// shows and schedules by. Provider, region and zone come from flags; no
// metadata service is asked.
package inventory

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/internal/version"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Config is what the inventory reports as given.
type Config struct {
	// DataDir is where the agent keeps its data: the disk reported is
	// the file system holding it.
	DataDir string
	// Drivers lists the drivers this host runs instances with.
	Drivers []string
	// Provider, Region, Zone and Labels are reported as given.
	Provider, Region, Zone string
	Labels                 map[string]string
	// Advertise is the address other hosts use to reach this host's
	// instances ("": the host's first address).
	Advertise string
	// Kind is what the agent enrolls: KindHost ("" means host) or
	// KindCluster (the kubernetes driver: a whole cluster).
	Kind string
}

// Kinds of what an agent enrolls.
const (
	KindHost    = "host"
	KindCluster = "cluster"
)

// Of describes this host; gossipAddr is where its pool gossip listens
// ("" when it does not).
func Of(cfg Config, gossipAddr string) *wire.Inventory {
	hostname, _ := os.Hostname()
	return &wire.Inventory{
		Hostname:     hostname,
		Os:           runtime.GOOS,
		Arch:         runtime.GOARCH,
		Cpus:         uint32(runtime.NumCPU()),
		MemoryBytes:  memTotal(),
		DiskBytes:    diskSize(cfg.DataDir),
		Addresses:    Addresses(),
		Drivers:      cfg.Drivers,
		Provider:     cfg.Provider,
		Region:       cfg.Region,
		Zone:         cfg.Zone,
		Labels:       cfg.Labels,
		AgentVersion: version.Get().Version,
		Advertise:    cfg.Advertise,
		GossipAddr:   gossipAddr,
		Kind:         kind(cfg.Kind),
	}
}

func kind(k string) string {
	if k == "" {
		return KindHost
	}
	return k
}

// WithCapacity puts a cluster's capacity in place of the machine's: CPU
// in millicores (and whole cores, rounded down, for hubs that read only
// those), memory in bytes.
func WithCapacity(inv *wire.Inventory, c driver.Capacity) *wire.Inventory {
	inv.CpuMillis = uint32(min(max(c.CPUMillis, 0), 1<<32-1))
	inv.Cpus = inv.CpuMillis / 1000
	inv.MemoryBytes = c.MemoryBytes
	return inv
}

// Gossip is where the pool gossip listens, "" while it does not.
type Gossip interface {
	Addr() string
}

// Register sends the inventory first in each session, with where the
// gossip listens then, and again after a heartbeat when that changed (a
// gossip that started late). With capacity (a cluster's driver), the
// inventory reports the cluster's capacity and is sent again whenever it
// changes.
func Register(c *control.Control, cfg Config, g Gossip, capacity driver.CapacityReporter) {
	c.Send(func() control.Feed {
		// A session's feed runs on the session's goroutine.
		var gossipSent string
		send := func() *wire.Envelope {
			gossipSent = g.Addr()
			inv := Of(cfg, gossipSent)
			if capacity != nil {
				inv = WithCapacity(inv, capacity.Capacity())
			}
			return &wire.Envelope{Msg: &wire.Envelope_Inventory{Inventory: inv}}
		}
		f := control.Feed{First: send, Tick: func(time.Time) *wire.Envelope {
			if g.Addr() != gossipSent {
				return send()
			}
			return nil
		}}
		if capacity != nil {
			f.Changed, f.OnChange = capacity.CapacityChanged(), send
		}
		return f
	})
}

// memTotal reads MemTotal from /proc/meminfo (0 when unknown).
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// diskSize is the size of the file system holding dir.
func diskSize(dir string) uint64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0
	}
	return st.Blocks * uint64(st.Bsize)
}

// Addresses lists the host's unicast addresses that are not loopback or
// link-local, IPv4 first.
func Addresses() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var v4, v6 []string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() || n.IP.IsMulticast() {
			continue
		}
		if n.IP.To4() != nil {
			v4 = append(v4, n.IP.String())
		} else {
			v6 = append(v6, n.IP.String())
		}
	}
	return append(v4, v6...)
}
