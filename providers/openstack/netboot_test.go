package openstack

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/e2e/cloudsim/netboot"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/providers"
)

// TestCreatedMachineRunsItsUserData: the whole way down. A server
// created through gophercloud boots as a host of its own, runs its
// cloud-config there, and Delete takes the host away.
func TestCreatedMachineRunsItsUserData(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("openstack")
	booter, err := netboot.New(dc, netboot.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(t, cloudsim.OpenStackOptions{Boot: booter.Boot, BootDelay: 50 * time.Millisecond})
	p := openFast(t, account(s))
	ctx := context.Background()
	req := request("m-boot")
	req.UserData = []byte("#cloud-config\nruncmd:\n  - mkdir -p /var/lib/wharf-agent\n  - [sh, -c, \"echo $0 > /var/lib/wharf-agent/machine\", m-boot]\n")
	m, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, p, m.ProviderID, providers.StateRunning)
	var mach *netboot.Machine
	deadline := time.Now().Add(20 * time.Second)
	for mach == nil {
		if time.Now().After(deadline) {
			t.Fatal("the server never booted")
		}
		mach, _ = booter.Machine(m.ProviderID)
		time.Sleep(10 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := mach.Wait(wctx); err != nil {
		t.Fatalf("runcmd: %v\n%s", err, mach.Console())
	}
	if b, err := os.ReadFile(mach.Path("/var/lib/wharf-agent/machine")); err != nil || strings.TrimSpace(string(b)) != "m-boot" {
		t.Fatalf("the machine wrote %q (%v)", b, err)
	}
	host := netboot.HostName(m.ProviderID)
	if lab.Host(host) == nil {
		t.Fatalf("no host %s for the server", host)
	}
	if err := p.Delete(ctx, m.ProviderID); err != nil {
		t.Fatal(err)
	}
	waitGone(t, p, m.ProviderID)
	for lab.Host(host) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the deleted server's host stays")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
