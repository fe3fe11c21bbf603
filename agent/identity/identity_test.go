package identity

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/internal/killtest"
	"github.com/wharf-platform/wharf/pkg/pki"
)

// testIdentity makes a complete identity: a host id, a key and a
// certificate for that host signed by a CA of its own.
func testIdentity(t testing.TB, hostID string) identityFile {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("ca of "+hostID, now, time.Hour)
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
	return identityFile{HostID: hostID, KeyPEM: string(keyPEM), CertPEM: string(certPEM), CAPEM: string(ca.CertPEM())}
}

func save(t testing.TB, dir string, f identityFile) {
	t.Helper()
	if err := Save(dir, f.HostID, []byte(f.KeyPEM), []byte(f.CertPEM), []byte(f.CAPEM)); err != nil {
		t.Fatal(err)
	}
}

// sameIdentity fails unless got is exactly want: host id, certificate,
// its key, and the CA, all of one identity.
func sameIdentity(t testing.TB, got *Identity, want identityFile) {
	t.Helper()
	w, err := parseIdentity(want.HostID, []byte(want.KeyPEM), []byte(want.CertPEM), []byte(want.CAPEM))
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || got.HostID != w.HostID || got.CAFP != w.CAFP || string(got.CAPEM) != want.CAPEM ||
		!slices.Equal(got.Cert.Certificate[0], w.Cert.Certificate[0]) {
		t.Fatalf("identity is not %s's", want.HostID)
	}
	if id, err := pki.IdentityFromCert(got.Cert.Leaf); err != nil || id.HostID != got.HostID {
		t.Fatalf("certificate speaks for %q, host id is %q (%v)", id.HostID, got.HostID, err)
	}
}

func TestIdentityRoundTripAndMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if id, err := Load(dir); id != nil || err != nil {
		t.Fatalf("not enrolled: %v %v", id, err)
	}
	a, b := testIdentity(t, "host-a"), testIdentity(t, "host-b")
	save(t, dir, a)
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameIdentity(t, got, a)
	save(t, dir, b)
	if got, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	sameIdentity(t, got, b)
	fi, err := os.Stat(filepath.Join(dir, File))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("data dir holds %d files, want the identity only", len(ents))
	}
}

func TestIdentityRejectsMismatchedKey(t *testing.T) {
	dir := t.TempDir()
	a, b := testIdentity(t, "host-a"), testIdentity(t, "host-b")
	a.KeyPEM = b.KeyPEM
	save(t, dir, a)
	if _, err := Load(dir); err == nil {
		t.Fatal("a certificate with another host's key loaded")
	}
}

// TestIdentityLegacyLayout: an agent enrolled before the identity was one
// file loads its four files, and from then on has the one file only.
func TestIdentityLegacyLayout(t *testing.T) {
	dir := t.TempDir()
	a := testIdentity(t, "host-a")
	for name, data := range map[string]string{legacyKey: a.KeyPEM, legacyCert: a.CertPEM, legacyCA: a.CAPEM, legacyHostID: a.HostID + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameIdentity(t, got, a)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != File {
		t.Fatalf("after loading the old layout the data dir holds %v", ents)
	}
	if got, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	sameIdentity(t, got, a)
}

// identityCrashEnv names the directory of the child of
// TestIdentityKill9OldOrNew.
const identityCrashEnv = "WHARF_AGENT_IDENTITY_CRASH_DIR"

// identityChild alternates two identities (fixtures in dir) in dir/data,
// printing "saved N" after each save, until it is killed.
func identityChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var ids [2]identityFile
	for i, name := range []string{"a.json", "b.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			fail(err)
		}
		if err := json.Unmarshal(b, &ids[i]); err != nil {
			fail(err)
		}
	}
	deadline := time.Now().Add(time.Minute) // never outlive a lost parent
	for n := 0; time.Now().Before(deadline); n++ {
		f := ids[n%2]
		if err := Save(filepath.Join(dir, "data"), f.HostID, []byte(f.KeyPEM), []byte(f.CertPEM), []byte(f.CAPEM)); err != nil {
			fail(err)
		}
		fmt.Printf("saved %d\n", n)
	}
	os.Exit(3)
}

// TestIdentityKill9OldOrNew kills an agent process at random points while
// it replaces its identity: what it finds on restart is always one whole
// identity (the last saved or the one being saved), never the key or
// certificate of one with the host id or CA of the other.
func TestIdentityKill9OldOrNew(t *testing.T) {
	if dir := killtest.Child(identityCrashEnv); dir != "" {
		identityChild(dir) // never returns
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	ids := [2]identityFile{testIdentity(t, "host-a"), testIdentity(t, "host-b")}
	rnd := rand.New(rand.NewPCG(7, 11))
	for round := range 8 {
		dir := t.TempDir()
		for i, name := range []string{"a.json", "b.json"} {
			b, _ := json.Marshal(ids[i])
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		killAt := rnd.IntN(40)
		last := -1
		killtest.RunTest(t, "TestIdentityKill9OldOrNew", identityCrashEnv, dir, func(line string) bool {
			fmt.Sscanf(line, "saved %d", &last)
			return last >= killAt
		})
		got, err := Load(filepath.Join(dir, "data"))
		if err != nil {
			t.Fatalf("round %d: after kill -9 following save %d: %v", round, last, err)
		}
		// The last save reported, or the next one (done but not reported).
		want := ids[last%2]
		if got.HostID != want.HostID {
			want = ids[(last+1)%2]
		}
		sameIdentity(t, got, want)
		if ents, _ := os.ReadDir(filepath.Join(dir, "data")); len(ents) != 1 {
			t.Fatalf("round %d: data dir holds %d files after loading, want the identity only", round, len(ents))
		}
		if err := Save(filepath.Join(dir, "data"), got.HostID, []byte(want.KeyPEM), []byte(want.CertPEM), got.CAPEM); err != nil {
			t.Fatalf("round %d: saving after the crash: %v", round, err)
		}
	}
}
