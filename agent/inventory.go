package agent

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/internal/version"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// inventory describes this host: what the hub shows and schedules by.
// Provider, region and zone come from flags; no metadata service is asked.
func (a *Agent) inventory() *wire.Inventory {
	hostname, _ := os.Hostname()
	inv := &wire.Inventory{
		Hostname:     hostname,
		Os:           runtime.GOOS,
		Arch:         runtime.GOARCH,
		Cpus:         uint32(runtime.NumCPU()),
		MemoryBytes:  memTotal(),
		DiskBytes:    diskSize(a.cfg.DataDir),
		Addresses:    hostAddresses(),
		Drivers:      a.cfg.Drivers,
		Provider:     a.cfg.Provider,
		Region:       a.cfg.Region,
		Zone:         a.cfg.Zone,
		Labels:       a.cfg.Labels,
		AgentVersion: version.Get().Version,
		Advertise:    a.cfg.Advertise,
	}
	if g := a.gossip.Load(); g != nil {
		inv.GossipAddr = g.Addr()
	}
	return inv
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

// hostAddresses lists the host's unicast addresses that are not loopback
// or link-local, IPv4 first.
func hostAddresses() []string {
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

// registerInventory sends the inventory first in each session.
func (a *Agent) registerInventory(c *control.Control) {
	c.Send(func() control.Feed {
		return control.Feed{First: func() *wire.Envelope { return &wire.Envelope{Msg: &wire.Envelope_Inventory{Inventory: a.inventory()}} }}
	})
}
