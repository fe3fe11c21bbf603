package providertest

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

// BootCloud is a cloud whose machines boot for real: its simulator calls
// the boot hook it was given.
type BootCloud struct {
	Provider providers.Provider
	Template providers.Template
	// Stuck, when set, says why a machine never booted (a booter's
	// error), for the failure message.
	Stuck func(providerID string) string
}

// Boot is the whole way down for one cloud: a machine created through
// the provider boots as a host of its own in a netlab datacenter named
// dc (package netboot), runs its cloud-config there under its instance
// id as host name (the user data arrived intact), and Delete takes the
// host away. start makes the cloud with boot as its boot hook.
func Boot(t *testing.T, dc string, start func(t *testing.T, boot cloudsim.BootFunc) BootCloud) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	booter, err := netboot.New(lab.AddDC(dc), netboot.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := start(t, booter.Boot)
	ctx := context.Background()
	req := providers.CreateRequest{
		MachineID: "m-boot", Cluster: "c1", Pool: "pool-a", Template: c.Template,
		UserData: []byte("#cloud-config\nruncmd:\n  - mkdir -p /var/lib/wharf-agent\n" +
			"  - [sh, -c, \"echo $0 > /var/lib/wharf-agent/machine; cat /proc/sys/kernel/hostname > /var/lib/wharf-agent/hostname\", m-boot]\n"),
		Tags: map[string]string{providers.TagCluster: "c1", providers.TagPool: "pool-a", providers.TagMachine: "m-boot"},
	}
	m, err := c.Provider.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var mach *netboot.Machine
	for mach == nil {
		if time.Now().After(deadline) {
			why := ""
			if c.Stuck != nil {
				why = c.Stuck(m.ProviderID)
			}
			t.Fatalf("machine %s never booted (%s)", m.ProviderID, why)
		}
		mach, _ = booter.Machine(m.ProviderID)
		time.Sleep(10 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := mach.Wait(wctx); err != nil {
		t.Fatalf("runcmd: %v\n%s", err, mach.Console())
	}
	host := netboot.HostName(m.ProviderID)
	for file, want := range map[string]string{"machine": "m-boot", "hostname": host} {
		if b, err := os.ReadFile(mach.Path("/var/lib/wharf-agent/" + file)); err != nil || strings.TrimSpace(string(b)) != want {
			t.Fatalf("the machine wrote %s %q (%v), want %q", file, b, err, want)
		}
	}
	if lab.Host(host) == nil {
		t.Fatalf("no lab host %s for machine %s", host, m.ProviderID)
	}
	if err := c.Provider.Delete(ctx, m.ProviderID); err != nil {
		t.Fatal(err)
	}
	for lab.Host(host) != nil {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("the deleted machine's host %s stays", host)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
