package inventory

import (
	"net"
	"runtime"
	"slices"
	"testing"

	"github.com/wharf-platform/wharf/agent/control"
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
	Register(c, cfg, gossipAt("10.0.0.9:7484"))
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
