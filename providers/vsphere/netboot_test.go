package vsphere

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/e2e/cloudsim/netboot"
	"github.com/wharf-platform/wharf/e2e/netlab"
)

// TestCreatedVMRunsItsUserData: the whole way down. A VM cloned through
// govmomi powers on, the booter finds it in the simulator, decodes its
// guestinfo.userdata and boots it as a host of its own that runs the
// cloud-config; Delete takes the host away.
func TestCreatedVMRunsItsUserData(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("vsphere")
	booter, err := netboot.New(dc, netboot.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	v := newVCenter(t)
	watch, err := cloudsim.NewVSphereBooter(cloudsim.VSphereBootOptions{List: v.vms, Boot: booter.Boot, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.Close)
	p := openFast(t, v.account())
	ctx := context.Background()
	req := request("m-boot")
	req.UserData = []byte("#cloud-config\nruncmd:\n  - mkdir -p /var/lib/wharf-agent\n  - [sh, -c, \"echo $0 > /var/lib/wharf-agent/machine\", m-boot]\n")
	m, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var mach *netboot.Machine
	deadline := time.Now().Add(20 * time.Second)
	for mach == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the VM never booted (%s)", watch.Error(m.ProviderID))
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
		t.Fatalf("no host %s for the VM", host)
	}
	if err := p.Delete(ctx, m.ProviderID); err != nil {
		t.Fatal(err)
	}
	for lab.Host(host) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the deleted VM's host stays")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
