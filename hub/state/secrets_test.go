package state

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/internal/seal"
)

// secretsHarness is a store with tenant acme and app web (version 1), and
// a keyring that seals values as the API does.
func secretsHarness(t *testing.T) (*harness, *seal.Keyring, *bytes.Buffer) {
	t.Helper()
	h := newHarness(t)
	keys, err := seal.NewKeyring(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer // every entry applied, as the Raft log holds it
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme"}, Time: t0})
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: spec("web", "web:1"), Create: true, Time: t0})
	return h, keys, &log
}

func sealAll(t *testing.T, keys *seal.Keyring, app string, plain map[string]string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for k, v := range plain {
		b, err := keys.Seal([]byte(v), SecretAD("acme", app, k))
		if err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// applyLogged applies a command and keeps its log entry.
func applyLogged(h *harness, log *bytes.Buffer, mt MessageType, req any) error {
	b, err := Encode(mt, req)
	if err != nil {
		h.t.Fatal(err)
	}
	log.Write(b)
	return h.apply(mt, req)
}

func TestSecretsSetUnsetMakeVersions(t *testing.T) {
	h, keys, log := secretsHarness(t)
	const plain = "s3cr3t-value-do-not-leak"
	set := &SecretsSetRequest{Tenant: "acme", App: "web", Sealed: sealAll(t, keys, "web", map[string]string{"DB_PASSWORD": plain, "API_KEY": "k1"}), Time: t0.Add(time.Minute)}
	if err := applyLogged(h, log, SecretsSetType, set); err != nil {
		t.Fatal(err)
	}
	a, _ := h.snap().App(nil, "acme", "web")
	if a.Version != 2 || a.LatestVersion != 2 || a.SecretsRevision != 1 || a.Spec.Secrets != 1 {
		t.Fatalf("after set: version %d latest %d revision %d spec ref %d, want 2 2 1 1", a.Version, a.LatestVersion, a.SecretsRevision, a.Spec.Secrets)
	}
	if got := a.SecretNames(); !slices.Equal(got, []string{"API_KEY", "DB_PASSWORD"}) {
		t.Fatalf("names %v", got)
	}
	got, err := keys.Open(a.Secrets["DB_PASSWORD"], SecretAD("acme", "web", "DB_PASSWORD"))
	if err != nil || string(got) != plain {
		t.Fatalf("open DB_PASSWORD: %q %v", got, err)
	}
	v2, _ := h.snap().AppVersion(nil, "acme", "web", 2)
	if v2 == nil || v2.Spec.Secrets != 1 {
		t.Fatalf("version 2 does not reference secrets revision 1: %+v", v2)
	}

	// Merge: another key keeps the others.
	if err := applyLogged(h, log, SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "web", Sealed: sealAll(t, keys, "web", map[string]string{"TOKEN": "t"}), Time: t0.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	a, _ = h.snap().App(nil, "acme", "web")
	if got := a.SecretNames(); !slices.Equal(got, []string{"API_KEY", "DB_PASSWORD", "TOKEN"}) || a.Version != 3 {
		t.Fatalf("after merge: names %v version %d", got, a.Version)
	}

	// An app spec update keeps the secrets and makes no version by itself.
	if err := h.apply(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: spec("web", "web:1"), Time: t0.Add(3 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	a, _ = h.snap().App(nil, "acme", "web")
	if a.Version != 3 || len(a.Secrets) != 3 || a.Spec.Secrets != 2 {
		t.Fatalf("after a same spec: version %d, %d secrets, ref %d", a.Version, len(a.Secrets), a.Spec.Secrets)
	}

	// Unset: one name gone, a new version; an unknown name changes nothing.
	if err := applyLogged(h, log, SecretsUnsetType, &SecretsUnsetRequest{Tenant: "acme", App: "web", Names: []string{"API_KEY"}, Time: t0.Add(4 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	err = h.apply(SecretsUnsetType, &SecretsUnsetRequest{Tenant: "acme", App: "web", Names: []string{"TOKEN", "NOPE"}, Time: t0.Add(5 * time.Minute)})
	var se *Error
	if !errors.As(err, &se) || se.Kind != KindNotFound {
		t.Fatalf("unset of an unknown name: %v, want not found", err)
	}
	a, _ = h.snap().App(nil, "acme", "web")
	if got := a.SecretNames(); !slices.Equal(got, []string{"DB_PASSWORD", "TOKEN"}) || a.Version != 4 || a.SecretsRevision != 3 {
		t.Fatalf("after unset: names %v version %d revision %d", got, a.Version, a.SecretsRevision)
	}

	// A rollback restores version 1's fields, and keeps the current secrets.
	h.must(AppRollbackType, &AppRollbackRequest{Tenant: "acme", Name: "web", Version: 1, Time: t0.Add(6 * time.Minute)})
	a, _ = h.snap().App(nil, "acme", "web")
	if a.Version != 1 || !slices.Equal(a.SecretNames(), []string{"DB_PASSWORD", "TOKEN"}) || a.SecretsRevision != 3 {
		t.Fatalf("after rollback: version %d names %v revision %d", a.Version, a.SecretNames(), a.SecretsRevision)
	}

	// Nothing plain in the log, the snapshot, or the store's rows.
	var snap bytes.Buffer
	snapshotTo(t, h.fsm, &snap)
	rows := stateJSON(t, h.fsm.Store())
	for what, b := range map[string][]byte{"raft log": log.Bytes(), "snapshot": snap.Bytes(), "store": rows} {
		if bytes.Contains(b, []byte(plain)) {
			t.Fatalf("the %s holds the plain secret", what)
		}
	}
	if !bytes.Contains(snap.Bytes(), []byte("DB_PASSWORD")) {
		t.Fatal("the snapshot lacks the secrets (names are kept in plain)")
	}

	// The snapshot restores the sealed values, which still open.
	h2 := newHarness(t)
	if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(snap.Bytes())}); err != nil {
		t.Fatal(err)
	}
	r, _ := h2.snap().App(nil, "acme", "web")
	if r == nil || r.SecretsRevision != 3 {
		t.Fatalf("restored app %+v", r)
	}
	got, err = keys.Open(r.Secrets["DB_PASSWORD"], SecretAD("acme", "web", "DB_PASSWORD"))
	if err != nil || string(got) != plain {
		t.Fatalf("open the restored DB_PASSWORD: %q %v", got, err)
	}
}

func TestSecretsRefused(t *testing.T) {
	h, keys, _ := secretsHarness(t)
	big := strings.Repeat("x", MaxSecretValue+1)
	quarter := strings.Repeat("y", MaxSecretValue)
	h.must(SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "web", Sealed: sealAll(t, keys, "web", map[string]string{"A": quarter, "B": quarter, "C": quarter}), Time: t0})
	cases := []struct {
		name string
		mt   MessageType
		req  any
		kind Kind
	}{
		{"bad name", SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "web", Sealed: sealAll(t, keys, "web", map[string]string{"1BAD": "v"})}, KindRefused},
		{"reserved name", SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "web", Sealed: sealAll(t, keys, "web", map[string]string{"HOSTNAME": "v"})}, KindRefused},
		{"dash in name", SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "web", Sealed: sealAll(t, keys, "web", map[string]string{"A-B": "v"})}, KindRefused},
		{"value too big", SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "web", Sealed: sealAll(t, keys, "web", map[string]string{"BIG": big})}, KindRefused},
		{"app total too big", SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "web", Sealed: sealAll(t, keys, "web", map[string]string{"D": quarter, "E": "z"})}, KindRefused},
		{"not sealed", SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "web", Sealed: map[string][]byte{"X": []byte("plain")}}, KindRefused},
		{"none", SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "web"}, KindRefused},
		{"no app", SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "nope", Sealed: sealAll(t, keys, "nope", map[string]string{"A": "v"})}, KindNotFound},
		{"unset no app", SecretsUnsetType, &SecretsUnsetRequest{Tenant: "acme", App: "nope", Names: []string{"A"}}, KindNotFound},
		{"unset none", SecretsUnsetType, &SecretsUnsetRequest{Tenant: "acme", App: "web"}, KindRefused},
	}
	before := stateJSON(t, h.fsm.Store())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := h.apply(c.mt, c.req)
			var se *Error
			if !errors.As(err, &se) || se.Kind != c.kind {
				t.Fatalf("got %v, want kind %d", err, c.kind)
			}
		})
	}
	if after := stateJSON(t, h.fsm.Store()); !bytes.Equal(before, after) {
		t.Fatal("a refused command changed the store")
	}
}
