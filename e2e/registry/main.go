// Command registry runs the CNCF distribution registry in one process for
// the private-registry tests: plain HTTP on a loopback address (dockerd
// treats 127.0.0.0/8 as an insecure registry), storage in a directory of
// the caller's, and htpasswd authentication with the users given by
// -users (bcrypt entries generated at start). It serves until killed.
//
//	registry -addr 127.0.0.1:5000 -dir /tmp/reg -users alice:secret,bob:other
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"golang.org/x/crypto/bcrypt"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:5000", "address to serve plain HTTP on")
	dir := flag.String("dir", "", "directory for the blobs and the htpasswd file (required)")
	users := flag.String("users", "", "comma-separated user:password pairs allowed to push and pull (required)")
	flag.Parse()
	if *dir == "" || *users == "" {
		return errors.New("-dir and -users are required")
	}
	htpasswd := filepath.Join(*dir, "htpasswd")
	if err := writeHtpasswd(htpasswd, *users); err != nil {
		return err
	}
	cfg, err := configuration.Parse(strings.NewReader(fmt.Sprintf(`
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
auth:
  htpasswd:
    realm: wharf-test
    path: %q
http:
  addr: %q
`, filepath.Join(*dir, "data"), htpasswd, *addr)))
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	reg, err := registry.NewRegistry(ctx, cfg)
	if err != nil {
		return fmt.Errorf("new registry: %w", err)
	}
	return reg.ListenAndServe()
}

func writeHtpasswd(path, users string) error {
	var b strings.Builder
	for _, pair := range strings.Split(users, ",") {
		name, pass, ok := strings.Cut(pair, ":")
		if !ok || name == "" || pass == "" {
			return fmt.Errorf("-users: %q is not user:password", pair)
		}
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s\n", name, h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
