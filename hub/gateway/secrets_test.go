package gateway

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/wharf-platform/wharf/hub/registryauth"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/internal/seal"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/wire"
)

type failingOpener struct{}

func (failingOpener) Open([]byte, []byte) ([]byte, error) { return nil, errors.New("no such key") }

// TestAssignmentsCarryOpenedSecrets: an instance's assignment carries its
// app's current secrets, opened; when they do not open it is withheld
// (the agent starts nothing without them), never sent without them. An
// agent of a protocol before secrets is given none.
func TestAssignmentsCarryOpenedSecrets(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Host("h1", "p", 2, 1024, nil)
	st.App(apitypes.AppSpec{Name: "web", Image: "web:1", Env: map[string]string{"MODE": "prod"}})
	keys, err := seal.NewKeyring(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keys.Seal([]byte("pw"), state.SecretAD("acme", "web", "DB_PASSWORD"))
	if err != nil {
		t.Fatal(err)
	}
	st.Must(state.SecretsSetType, &state.SecretsSetRequest{Tenant: "acme", App: "web", Sealed: map[string][]byte{"DB_PASSWORD": sealed}, Time: statetest.T0})
	st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 2, Host: "h1", CPU: 100, Memory: 64}}, Time: statetest.T0})
	snap := st.Store().Snapshot()
	h, _ := snap.Host(nil, "h1")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	for _, tc := range []struct {
		name     string
		opener   SecretOpener
		protocol uint32
		env      string
		withheld bool
	}{
		{"opened", keys, wire.ProtocolMax, "pw", false},
		{"no keys", nil, wire.ProtocolMax, "", true},
		{"wrong key", failingOpener{}, wire.ProtocolMax, "", true},
		// An agent that would save them with the rest gets none.
		{"older agent", keys, wire.ProtocolSecrets - 1, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{cfg: Config{Secrets: tc.opener}, log: log}
			a, err := g.assignments(snap, h, tc.protocol)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Instances) != 1 {
				t.Fatalf("%d instances", len(a.Instances))
			}
			in := a.Instances[0]
			if in.SecretEnv["DB_PASSWORD"] != tc.env || in.SecretsWithheld != tc.withheld || in.Env["MODE"] != "prod" || in.Env["DB_PASSWORD"] != "" {
				t.Fatalf("instance: env %v, secrets %v, withheld %v", in.Env, in.SecretEnv, in.SecretsWithheld)
			}
		})
	}
}

type fixedCredentials struct{}

func (fixedCredentials) ForImage(_ *state.Snapshot, tenant, image string) (*registryauth.Credentials, bool, error) {
	return &registryauth.Credentials{Server: "registry.acme.test", Username: "ci", Password: "pw"}, true, nil
}

// TestAssignmentsCarryRegistryCredentials: an instance whose image is in
// a private registry carries the tenant's credentials for it, unless its
// agent speaks a protocol before them (it would save them to disk); the
// image is pulled anew either way.
func TestAssignmentsCarryRegistryCredentials(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Host("h1", "p", 2, 1024, nil)
	st.App(apitypes.AppSpec{Name: "web", Image: "registry.acme.test/web:1"})
	st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 1, Host: "h1", CPU: 100, Memory: 64}}, Time: statetest.T0})
	snap := st.Store().Snapshot()
	h, _ := snap.Host(nil, "h1")
	g := &Gateway{cfg: Config{Registries: fixedCredentials{}}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range []struct {
		protocol uint32
		auth     bool
	}{{wire.ProtocolMax, true}, {wire.ProtocolSecrets - 1, false}} {
		a, err := g.assignments(snap, h, tc.protocol)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Instances) != 1 {
			t.Fatalf("protocol %d: %d instances", tc.protocol, len(a.Instances))
		}
		in := a.Instances[0]
		if (in.RegistryAuth != nil) != tc.auth || !in.AlwaysPull {
			t.Fatalf("protocol %d: credentials %v, always pull %v; want credentials: %v", tc.protocol, in.RegistryAuth, in.AlwaysPull, tc.auth)
		}
		if tc.auth && in.RegistryAuth.Password != "pw" {
			t.Fatalf("protocol %d: credentials %v", tc.protocol, in.RegistryAuth)
		}
	}
}
