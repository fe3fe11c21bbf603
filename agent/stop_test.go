package agent

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/agent/identity"
	"github.com/wharf-platform/wharf/pkg/pki"
)

// TestStopInstances: an enrolled data dir gets its host's driver and every
// instance stopped; one that never enrolled stops nothing and makes no driver.
func TestStopInstances(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name     string
		enrolled bool
	}{{"enrolled", true}, {"never enrolled", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.enrolled {
				enrol(t, dir, "h-7")
			}
			host := fake.NewHost()
			ctx := context.Background()
			for _, id := range []string{"a-1", "b-1"} {
				if _, err := fake.New(host).Start(ctx, driver.Spec{InstanceID: id, App: "a", Tenant: "t", Image: "x"}); err != nil {
					t.Fatal(err)
				}
			}
			var gotHost string
			newDriver := func(hostID string) (driver.Driver, error) { gotHost = hostID; return fake.New(host), nil }
			if err := stopInstances(ctx, dir, newDriver, log); err != nil {
				t.Fatal(err)
			}
			wantRunning, wantHost := 2, ""
			if tt.enrolled {
				wantRunning, wantHost = 0, "h-7"
			}
			if n := len(host.Running()); n != wantRunning || gotHost != wantHost {
				t.Fatalf("running %d, driver for host %q; want %d, %q", n, gotHost, wantRunning, wantHost)
			}
		})
	}
}

// enrol keeps in dir an identity for hostID, as enrolment would.
func enrol(t testing.TB, dir, hostID string) {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, keyPEM, err := pki.NewAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.CreateCSR(key, hostID)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignAgentCSR(csr, pki.AgentIdentity{HostID: hostID, Pool: "p"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.Save(dir, hostID, keyPEM, certPEM, ca.CertPEM()); err != nil {
		t.Fatal(err)
	}
}
