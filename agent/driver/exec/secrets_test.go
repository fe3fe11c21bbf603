package exec_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver/exec"
)

// TestSecretsInMemoryOnly: an instance's environment holds the app's
// secrets (over its env), and no file of the driver's holds their values.
func TestSecretsInMemoryOnly(t *testing.T) {
	for _, iso := range []exec.Isolation{exec.IsolationNone, exec.IsolationNamespaces} {
		t.Run(string(iso), func(t *testing.T) {
			if iso == exec.IsolationNamespaces {
				needRoot(t)
			}
			h := &hosts{iso: iso}
			host := "host-secrets"
			d := h.newExec(t, host)
			const plain = "exec-secret-VALUE-1f2e3d"
			sp := spec(t, map[string]string{"MODE": "env", "OVER": "from-env"})
			sp.Secrets = map[string]string{"DB_PASSWORD": plain, "OVER": "from-secret"}
			st, err := d.Start(ctx(t), sp)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Stop(ctx(t), sp.InstanceID, time.Second) })
			if got := get(t, st.Address, "/env?k=DB_PASSWORD"); got != plain {
				t.Fatalf("DB_PASSWORD in the instance: %q", got)
			}
			if got := get(t, st.Address, "/env?k=OVER"); got != "from-secret" {
				t.Fatalf("a secret does not override env: OVER=%q", got)
			}
			if got := get(t, st.Address, "/env?k=MODE"); got != "env" {
				t.Fatalf("MODE=%q", got)
			}
			dir := h.dirs[host]
			err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if bytes.Contains(b, []byte(plain)) {
					t.Errorf("%s holds the secret's value", path)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
