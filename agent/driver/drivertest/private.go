package drivertest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
)

// PrivateRegistry is a real image registry on loopback that asks for a
// password: the CNCF distribution registry, built from e2e/registry (its
// own module) and run as a process of its own, with htpasswd users and
// plain HTTP (Docker trusts 127.0.0.0/8 without TLS).
type PrivateRegistry struct {
	// Addr is host:port, the registry's name in image references.
	Addr string
}

// StartPrivateRegistry builds the registry once per source version (into
// ~/.cache/wharf-registry, or $WHARF_REGISTRY_BIN's directory), starts it
// with the given user -> password pairs and stops it (by its PID) at the
// end of the test.
func StartPrivateRegistry(t testing.TB, users map[string]string) *PrivateRegistry {
	t.Helper()
	bin, err := registryBinary()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pairs := make([]string, 0, len(users))
	for u, p := range users {
		pairs = append(pairs, u+":"+p)
	}
	sort.Strings(pairs)
	dir := t.TempDir()
	cmd := exec.Command(bin, "-addr", addr, "-dir", dir, "-users", strings.Join(pairs, ","))
	out, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the registry: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	// Up once /v2/ asks for credentials.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return &PrivateRegistry{Addr: addr}
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("the registry exited: %s", b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("the registry on %s did not answer within 30s (%v): %s", addr, err, b)
		}
	}
}

// Push tags the local image src as ADDR/name, pushes it with user's
// credentials and removes the tag again, so that a pull of the returned
// reference really goes to the registry. The pulled tag is removed at the
// end of the test.
func (r *PrivateRegistry) Push(t testing.TB, cli *client.Client, src, name, user, password string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref := r.Addr + "/" + name
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: src, Target: ref}); err != nil {
		t.Fatalf("tag %s as %s: %v", src, ref, err)
	}
	res, err := cli.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: RegistryAuthHeader(r.Addr, user, password)})
	if err == nil {
		err = res.Wait(ctx)
		res.Close()
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	untag := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{})
	}
	untag()
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		t.Fatalf("%s is still local after its tag was removed", ref)
	}
	t.Cleanup(untag)
	return ref
}

// RegistryAuthHeader is the X-Registry-Auth value for user at server
// (base64url JSON), as the Docker API takes it.
func RegistryAuthHeader(server, user, password string) string {
	b, _ := json.Marshal(registry.AuthConfig{Username: user, Password: password, ServerAddress: server})
	return base64.URLEncoding.EncodeToString(b)
}

// registryBinary returns the registry built from e2e/registry's current
// sources, building it when the cache has none (one build at a time).
func registryBinary() (string, error) {
	src, err := registrySource()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	cache := os.Getenv("WHARF_REGISTRY_BIN")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "wharf-registry")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "registry-"+key)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built meanwhile by another test binary
	}
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the test registry in %s (needs the Go module proxy once): %v\n%s", src, err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// registrySource finds e2e/registry in the source tree: from the working
// directory (go test runs in the package's directory) up, else beside
// this file's source.
func registrySource() (string, error) {
	var roots []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			roots = append(roots, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		roots = append(roots, filepath.Join(filepath.Dir(file), "..", "..", ".."))
	}
	for _, r := range roots {
		p := filepath.Join(r, "e2e", "registry")
		if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
			return p, nil
		}
	}
	return "", errors.New("e2e/registry not found from the working directory")
}
