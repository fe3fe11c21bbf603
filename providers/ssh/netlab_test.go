package ssh

import (
	"context"
	"net"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/providers"
)

// TestOverANetworkNamespace drives a host that is a network namespace of
// its own (e2e/netlab): sshd listens on the host's address, the install
// fetches from a hub on the datacenter's gateway, and a pulled cable makes
// the host unavailable until it is back.
func TestOverANetworkNamespace(t *testing.T) {
	netlab.Require(t)
	requireSSHD(t)
	ctx := context.Background()
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("bm")
	host := dc.AddHost("metal1")
	client, key := newKey(t)
	s := launchSSHD(t, host.IP().String(), 2222, host.Start, func(name string, args ...string) *exec.Cmd {
		return host.Command(context.Background(), name, args...)
	}, client.PublicKey())
	stopAgentsOnCleanup(t, s)

	// The hub answers on the gateway, where the host's default route goes.
	loHub := startHub(t, true)
	l, err := net.Listen("tcp", net.JoinHostPort(dc.Gateway().String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	gwHub := &hub{Server: httptest.NewUnstartedServer(loHub.Config.Handler)}
	gwHub.Listener.Close()
	gwHub.Listener = l
	gwHub.Start()
	t.Cleanup(gwHub.Close)

	p, err := New(account(key, map[string]string{s.Addr: s.Fingerprint}), Options{DialTimeout: 2 * time.Second, CommandTimeout: 30 * time.Second, InstallTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Create(ctx, request(gwHub, t, "m-1", s.Addr))
	if err != nil || m.ProviderID != s.Addr || m.State != providers.StateRunning {
		t.Fatalf("create over the lab network: %+v %v", m, err)
	}
	if n := loHub.installs.Load(); n != 1 {
		t.Fatalf("install.sh fetched %d times from the gateway hub, want 1", n)
	}

	lab.CutHost(host)
	_, err = p.Describe(ctx, s.Addr)
	wantKind(t, "describe of a cut host", err, providers.KindUnavailable)
	wantKind(t, "delete of a cut host", p.Delete(ctx, s.Addr), providers.KindUnavailable)
	lab.HealHost(host)

	// The neighbour entry the cut left failed takes a moment to recover.
	var derr error
	waitFor(t, "a delete after the cable is back", func() bool {
		derr = p.Delete(ctx, s.Addr)
		if derr != nil && providers.KindOf(derr) != providers.KindUnavailable {
			t.Fatalf("delete after the cable is back: %v", derr)
		}
		return derr == nil
	})
	if s.exists("var/lib/wharf-agent") {
		t.Fatal("the data dir survived the delete")
	}
}
