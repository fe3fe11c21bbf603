package aliyun

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

// TestCreatedMachineRunsItsUserData: the whole way down. A machine
// created through the SDK boots as a host of its own, runs its
// cloud-config there (the user data arrived base64-encoded and intact),
// and Delete takes the host away.
func TestCreatedMachineRunsItsUserData(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("aliyun")
	booter, err := netboot.New(dc, netboot.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(t, cloudsim.ECSOptions{Boot: booter.Boot, BootDelay: 50 * time.Millisecond})
	p := openT(t, account(s))
	ctx := context.Background()
	req := request("m-boot")
	req.UserData = []byte("#cloud-config\nruncmd:\n  - mkdir -p /var/lib/wharf-agent\n  - [sh, -c, \"echo $0 > /var/lib/wharf-agent/machine; cat /proc/sys/kernel/hostname > /var/lib/wharf-agent/hostname\", m-boot]\n")
	m, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, p, m.ProviderID, providers.StateRunning)
	var mach *netboot.Machine
	deadline := time.Now().Add(20 * time.Second)
	for mach == nil {
		if time.Now().After(deadline) {
			t.Fatal("the instance never booted")
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
	if b, err := os.ReadFile(mach.Path("/var/lib/wharf-agent/hostname")); err != nil || strings.TrimSpace(string(b)) != m.ProviderID {
		t.Fatalf("the machine's hostname is %q (%v), want its instance id %s", b, err, m.ProviderID)
	}
	if lab.Host(m.ProviderID) == nil {
		t.Fatal("no host for the instance")
	}
	if err := p.Delete(ctx, m.ProviderID); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := p.Describe(ctx, m.ProviderID)
		if providers.KindOf(err) == providers.KindNotFound && lab.Host(m.ProviderID) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted machine (%v) or its host stays", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
