package state

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/internal/seal"
)

func TestRegistryCommands(t *testing.T) {
	h := newHarness(t)
	fill(h)
	reg := func(tenant, server, user string) *RegistryPutRequest {
		return &RegistryPutRequest{Registry: Registry{Tenant: tenant, Server: server, Username: user, SealedPassword: []byte{1, 2, 3}}, Time: t0}
	}
	h.must(RegistryPutType, reg("acme", "r.acme.test:5000", "ci"))
	tests := []struct {
		name string
		mt   MessageType
		req  any
		want error
	}{
		{"no tenant", RegistryPutType, reg("", "r.acme.test", "ci"), ErrInvalid},
		{"no server", RegistryPutType, reg("acme", "", "ci"), ErrInvalid},
		{"no username", RegistryPutType, reg("acme", "r.acme.test", ""), ErrInvalid},
		{"no sealed password", RegistryPutType, &RegistryPutRequest{Registry: Registry{Tenant: "acme", Server: "r.acme.test", Username: "ci"}}, ErrInvalid},
		{"missing tenant", RegistryPutType, reg("nope", "r.acme.test", "ci"), ErrNotFound},
		{"delete missing", RegistryDeleteType, &RegistryDeleteRequest{Tenant: "acme", Server: "none.test"}, ErrNotFound},
		{"delete another tenant's", RegistryDeleteType, &RegistryDeleteRequest{Tenant: "beta", Server: "r.acme.test:5000"}, ErrNotFound},
		{"reseal missing", RegistryResealType, &RegistryResealRequest{Tenant: "acme", Server: "none.test", SealedPassword: []byte{9}, ModifyIndex: 1}, ErrNotFound},
		{"reseal stale", RegistryResealType, &RegistryResealRequest{Tenant: "acme", Server: "r.acme.test:5000", SealedPassword: []byte{9}, ModifyIndex: 1}, ErrConflict},
		{"reseal empty", RegistryResealType, &RegistryResealRequest{Tenant: "acme", Server: "r.acme.test:5000", ModifyIndex: 0}, ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dump(t, h.fsm.Store())
			if err := h.apply(tt.mt, tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(before, dump(t, h.fsm.Store())) {
				t.Fatal("a refused command changed the store")
			}
		})
	}

	// Replacing keeps the creation, moves the modify index.
	first, _ := h.snap().Registry(nil, "acme", "r.acme.test:5000")
	later := reg("acme", "r.acme.test:5000", "deploy")
	later.Time = t0.Add(time.Hour)
	h.must(RegistryPutType, later)
	got, _ := h.snap().Registry(nil, "acme", "r.acme.test:5000")
	if got.Username != "deploy" || got.CreateIndex != first.CreateIndex || got.ModifyIndex == first.ModifyIndex || !got.CreatedAt.Equal(t0) {
		t.Fatalf("after replace: %+v (first %+v)", got, first)
	}
	h.must(RegistryResealType, &RegistryResealRequest{Tenant: "acme", Server: "r.acme.test:5000", SealedPassword: []byte{7}, ModifyIndex: got.ModifyIndex})
	if resealed, _ := h.snap().Registry(nil, "acme", "r.acme.test:5000"); !bytes.Equal(resealed.SealedPassword, []byte{7}) || resealed.Username != "deploy" {
		t.Fatalf("after reseal: %+v", resealed)
	}
	for server, want := range map[string]bool{"r.acme.test:5000": true, "r.beta.test": false} {
		if kept, err := h.snap().RegistryKept(nil, server); err != nil || kept != want {
			t.Errorf("RegistryKept(%s) = %v, %v; want %v", server, kept, err, want)
		}
	}
	h.must(RegistryPutType, reg("beta", "r.acme.test:5000", "b"))
	if regs, _ := h.snap().TenantRegistries(nil, "acme"); len(regs) != 1 {
		t.Fatalf("acme has %d registries, want 1 (beta's is its own)", len(regs))
	}
	h.must(RegistryDeleteType, &RegistryDeleteRequest{Tenant: "acme", Server: "r.acme.test:5000"})
	if regs, _ := h.snap().Registries(nil); len(regs) != 1 || regs[0].Tenant != "beta" {
		t.Fatalf("after delete: %+v", regs)
	}
}

// TestRegistryPasswordSealedAtRest: what the API commits holds the
// password sealed only, so neither the Raft log entry nor a snapshot
// carries it in plain text, and the snapshot restores it sealed.
func TestRegistryPasswordSealedAtRest(t *testing.T) {
	const password = "pl41n-registry-password"
	keys, err := seal.NewKeyring(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keys.Seal([]byte(password), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	fill(h)
	req := &RegistryPutRequest{Registry: Registry{Tenant: "acme", Server: "r.acme.test:5000", Username: "ci-user", SealedPassword: sealed}, Time: t0}
	entry, err := Encode(RegistryPutType, req)
	if err != nil {
		t.Fatal(err)
	}
	h.must(RegistryPutType, req)
	var snap bytes.Buffer
	snapshotTo(t, h.fsm, &snap)
	for what, b := range map[string][]byte{"the Raft log entry": entry, "the snapshot": snap.Bytes()} {
		if bytes.Contains(b, []byte(password)) {
			t.Fatalf("%s holds the password in plain text", what)
		}
		if !bytes.Contains(b, []byte("ci-user")) {
			t.Fatalf("%s lacks the registry: the search would not find a plain password either", what)
		}
	}
	h2 := newHarness(t)
	if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(snap.Bytes())}); err != nil {
		t.Fatal(err)
	}
	got, _ := h2.snap().Registry(nil, "acme", "r.acme.test:5000")
	if got == nil {
		t.Fatal("the snapshot lost the registry")
	}
	if pw, err := keys.Open(got.SealedPassword, []byte("ad")); err != nil || string(pw) != password {
		t.Fatalf("the restored sealed password opens to %q, %v", pw, err)
	}
}

// TestTenantDeleteRemovesRegistries: a deleted tenant leaves no
// credentials behind.
func TestTenantDeleteRemovesRegistries(t *testing.T) {
	h := newHarness(t)
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "gone"}, Time: t0})
	h.must(RegistryPutType, &RegistryPutRequest{Registry: Registry{Tenant: "gone", Server: "r.test", Username: "u", SealedPassword: []byte{1}}, Time: t0})
	h.must(TenantDeleteType, &TenantDeleteRequest{Name: "gone", Time: t0})
	if regs, _ := h.snap().Registries(nil); len(regs) != 0 {
		t.Fatalf("registries left: %+v", regs)
	}
}
