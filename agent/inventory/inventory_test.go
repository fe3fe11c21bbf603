package inventory

import (
	"net"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/driver"
)

type gossipAt string

func (g gossipAt) Addr() string { return string(g) }

// TestRegisterSendsInventoryFirst: each session starts with the
// inventory: what the flags gave, what the host has, and where the
// gossip listens at that time.
func TestRegisterSendsInventoryFirst(t *testing.T) {
	cfg := Config{DataDir: t.TempDir(), Drivers: []string{"exec"}, Provider: "aws", Region: "cn-north-1", Zone: "b",
		Labels: map[string]string{"ssd": "yes"}, Advertise: "10.0.0.9"}
	c := control.New()
	Register(c, cfg, gossipAt("10.0.0.9:7484"), nil)
	feeds := c.Feeds()
	if len(feeds) != 1 || feeds[0].First == nil {
		t.Fatalf("registered %d feeds, want one sent first", len(feeds))
	}
	inv := feeds[0].First().GetInventory()
	if inv == nil {
		t.Fatal("first message is not an inventory")
	}
	if inv.Provider != "aws" || inv.Region != "cn-north-1" || inv.Zone != "b" || inv.Labels["ssd"] != "yes" ||
		!slices.Equal(inv.Drivers, []string{"exec"}) || inv.Advertise != "10.0.0.9" || inv.GossipAddr != "10.0.0.9:7484" {
		t.Fatalf("given fields not reported as given: %+v", inv)
	}
	if inv.Os != runtime.GOOS || inv.Cpus == 0 || inv.DiskBytes == 0 || inv.AgentVersion == "" {
		t.Fatalf("host facts missing: %+v", inv)
	}
	if runtime.GOOS == "linux" && inv.MemoryBytes == 0 {
		t.Fatal("memory unknown on Linux")
	}
	if inv.Kind != KindHost || inv.CpuMillis != 0 {
		t.Fatalf("a host's inventory says kind %q, cpu_millis %d", inv.Kind, inv.CpuMillis)
	}
	if feeds[0].Changed != nil {
		t.Fatal("a host's inventory is sent again on changes of nothing")
	}
}

// clusterCapacity is a driver.CapacityReporter whose capacity the test
// sets.
type clusterCapacity struct {
	c       driver.Capacity
	changed chan struct{}
}

func (k *clusterCapacity) Capacity() driver.Capacity        { return k.c }
func (k *clusterCapacity) CapacityChanged() <-chan struct{} { return k.changed }

// TestRegisterResendsALateGossipAddress: a gossip that starts after the
// session's first inventory (its start was retried) is announced after
// the next heartbeat, once.
func TestRegisterResendsALateGossipAddress(t *testing.T) {
	g := &lateGossip{}
	c := control.New()
	Register(c, Config{DataDir: t.TempDir()}, g, nil)
	f := c.Feeds()[0]
	if inv := f.First().GetInventory(); inv.GossipAddr != "" {
		t.Fatalf("first inventory names gossip %q before it runs", inv.GossipAddr)
	}
	if m := f.Tick(time.Now()); m != nil {
		t.Fatalf("sent %v though nothing changed", m)
	}
	g.addr = "10.0.0.9:7484"
	if inv := f.Tick(time.Now()).GetInventory(); inv == nil || inv.GossipAddr != g.addr {
		t.Fatalf("after the gossip started: %v, want an inventory naming %s", inv, g.addr)
	}
	if m := f.Tick(time.Now()); m != nil {
		t.Fatalf("sent again: %v", m)
	}
}

type lateGossip struct{ addr string }

func (g *lateGossip) Addr() string { return g.addr }

// TestRegisterResendsClusterCapacity: a cluster's inventory reports the
// driver's capacity (millicores exact, whole cores rounded down), kind
// cluster, and is sent again each time the capacity changes.
func TestRegisterResendsClusterCapacity(t *testing.T) {
	k := &clusterCapacity{c: driver.Capacity{CPUMillis: 7500, MemoryBytes: 12 << 30, Nodes: 3}, changed: make(chan struct{}, 1)}
	c := control.New()
	Register(c, Config{DataDir: t.TempDir(), Drivers: []string{"kubernetes"}, Kind: KindCluster}, gossipAt(""), k)
	f := c.Feeds()[0]
	inv := f.First().GetInventory()
	if inv.Kind != KindCluster || inv.CpuMillis != 7500 || inv.Cpus != 7 || inv.MemoryBytes != 12<<30 {
		t.Fatalf("first inventory %+v, want kind cluster, 7500 millis, 7 cpus, 12 GiB", inv)
	}
	if f.Changed == nil || f.OnChange == nil {
		t.Fatal("a cluster's inventory is not sent again on capacity changes")
	}
	k.c = driver.Capacity{CPUMillis: 3250, MemoryBytes: 4 << 30, Nodes: 1}
	k.changed <- struct{}{}
	select {
	case <-f.Changed:
	default:
		t.Fatal("the feed's Changed is not the driver's")
	}
	inv = f.OnChange().GetInventory()
	if inv.CpuMillis != 3250 || inv.Cpus != 3 || inv.MemoryBytes != 4<<30 || inv.Kind != KindCluster {
		t.Fatalf("inventory after the change %+v, want 3250 millis, 4 GiB", inv)
	}
}

// TestAddressesSkipLoopbackAndLinkLocal: what other hosts could not use
// is never reported, and IPv4 comes first.
func TestAddressesSkipLoopbackAndLinkLocal(t *testing.T) {
	addrs := Addresses()
	seenV6 := false
	for _, a := range addrs {
		ip := net.ParseIP(a)
		if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() {
			t.Fatalf("reported %q", a)
		}
		if ip.To4() == nil {
			seenV6 = true
		} else if seenV6 {
			t.Fatalf("IPv4 %s after an IPv6 address in %v", a, addrs)
		}
	}
}
