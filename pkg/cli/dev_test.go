package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestDemoManifest: the manifest wharf dev writes is one `wharf app deploy
// -f` reads back (strictly) as the demo app for its driver.
func TestDemoManifest(t *testing.T) {
	tests := []struct {
		driver string
		want   apitypes.AppSpec
	}{
		{"docker", apitypes.AppSpec{Name: "hello", Image: "wharf-demo:0123456789ab",
			Ports: []apitypes.Port{{Name: "http", ContainerPort: 8080}}, Health: &apitypes.Health{HTTP: "/healthz"}}},
		{"exec", apitypes.AppSpec{Name: "hello", Command: []string{"/opt/wharf/bin/wharf", "demo"},
			Ports: []apitypes.Port{{Name: "http", ContainerPort: 8080}}, Health: &apitypes.Health{HTTP: "/healthz"}}},
	}
	for _, tt := range tests {
		t.Run(tt.driver, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), demoManifest)
			if err := writeDemoManifest(path, tt.driver, demoSpec(tt.driver, "wharf-demo:0123456789ab", "/opt/wharf/bin/wharf")); err != nil {
				t.Fatal(err)
			}
			got, err := readManifest(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("manifest reads as %+v, want %+v", got, tt.want)
			}
		})
	}
}

// writeELF writes a minimal 64-bit ELF executable with the given program
// header types.
func writeELF(t *testing.T, progs ...elf.ProgType) string {
	t.Helper()
	var b bytes.Buffer
	hdr := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs))}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, hdr)
	for _, p := range progs {
		binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(p), Flags: uint32(elf.PF_R)})
	}
	path := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(path, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStaticBinary(t *testing.T) {
	tests := []struct {
		name   string
		progs  []elf.ProgType
		static bool
	}{
		{"static", []elf.ProgType{elf.PT_LOAD}, true},
		{"dynamic", []elf.ProgType{elf.PT_PHDR, elf.PT_INTERP, elf.PT_LOAD}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := staticBinary(writeELF(t, tt.progs...))
			if err != nil || got != tt.static {
				t.Fatalf("static = %v, %v; want %v", got, err, tt.static)
			}
		})
	}
	notELF := filepath.Join(t.TempDir(), "script")
	os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755)
	if _, err := staticBinary(notELF); err == nil {
		t.Fatal("a shell script passed as an ELF binary")
	}
}

func TestDevDriver(t *testing.T) {
	tests := []struct {
		name, recorded, want string
		docker               bool
		got                  string
		err                  string
	}{
		{name: "default with docker", docker: true, got: "docker"},
		{name: "default without docker", got: "exec"},
		{name: "asked exec", want: "exec", docker: true, got: "exec"},
		{name: "asked docker without daemon", want: "docker", err: "no Docker daemon"},
		{name: "recorded wins the default", recorded: "exec", docker: true, got: "exec"},
		{name: "recorded and asked agree", recorded: "docker", want: "docker", docker: true, got: "docker"},
		{name: "recorded and asked differ", recorded: "docker", want: "exec", docker: true, err: "set up for the docker driver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.recorded != "" {
				os.WriteFile(filepath.Join(dir, devDriverFile), []byte(tt.recorded+"\n"), 0o600)
			}
			got, err := devDriver(dir, tt.want, tt.docker)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.got {
				t.Fatalf("driver %q, %v; want %q", got, err, tt.got)
			}
		})
	}
}

// TestLockDataDir: a second lock of one data dir is refused until the
// first is released.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), "running") {
		t.Fatalf("second lock: %v, want a refusal", err)
	}
	release()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

// dockerOrSkip returns a client of the local daemon, or skips the test
// when none answers; with WHARF_REQUIRE_DOCKER=1 (CI) it fails instead.
func dockerOrSkip(t *testing.T) *client.Client {
	t.Helper()
	cli := dockerClient(context.Background())
	if cli == nil {
		if os.Getenv("WHARF_REQUIRE_DOCKER") == "1" {
			t.Fatal("WHARF_REQUIRE_DOCKER=1 and no Docker daemon answers")
		}
		t.Skip("no Docker daemon")
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// tempImage builds the demo image from a file of random content (a new
// tag), and removes it at the end of the test.
func tempImage(t *testing.T, cli *client.Client) (tag, bin string, built bool) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "wharf")
	os.WriteFile(bin, []byte(rand.Text()), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tag, built, err := ensureDemoImage(ctx, cli, bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	return tag, bin, built
}

// TestDemoImage builds the demo image through the real Docker API: a
// FROM scratch image of the binary, run as `/wharf demo`, built once per
// binary content.
func TestDemoImage(t *testing.T) {
	cli := dockerOrSkip(t)
	ctx := context.Background()
	tag, bin, built := tempImage(t, cli)
	if !built || !strings.HasPrefix(tag, demoImageRepo+":") {
		t.Fatalf("first build: tag %q, built %v", tag, built)
	}
	img, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := fileDigest(bin)
	if img.Config == nil || !reflect.DeepEqual(img.Config.Cmd, []string{"/wharf", "demo"}) || img.Config.Labels[labelDemoBinary] != digest {
		t.Fatalf("image config %+v", img.Config)
	}
	if len(img.RootFS.Layers) != 1 {
		t.Fatalf("%d layers, want the binary's alone (FROM scratch)", len(img.RootFS.Layers))
	}
	again, built, err := ensureDemoImage(ctx, cli, bin)
	if err != nil || built || again != tag {
		t.Fatalf("second call: %q, built %v, %v; want %q, not built", again, built, err, tag)
	}
	os.WriteFile(bin, []byte(rand.Text()), 0o755)
	other, err := demoTag(bin)
	if err != nil || other == tag {
		t.Fatalf("another binary's tag %q (%v), want one other than %q", other, err, tag)
	}
}

// demoTag is the tag ensureDemoImage gives bin's image.
func demoTag(bin string) (string, error) {
	d, err := fileDigest(bin)
	if err != nil {
		return "", err
	}
	return demoImageRepo + ":" + d[:12], nil
}

// TestSweepDevContainers: only containers labelled with this data dir go,
// and those of the host to keep stay; another data dir's and unlabelled
// containers are never touched.
func TestSweepDevContainers(t *testing.T) {
	cli := dockerOrSkip(t)
	ctx := context.Background()
	tag, _, _ := tempImage(t, cli)
	dir := t.TempDir()
	mk := func(name string, labels map[string]string) string {
		t.Helper()
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
			Config: &container.Config{Image: tag, Labels: labels}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true}) })
		return res.ID
	}
	suffix := strings.ToLower(rand.Text()[:8])
	kept := mk("wharf-sweep-kept-"+suffix, map[string]string{labelDev: dir, labelHost: "h-now"})
	orphan := mk("wharf-sweep-orphan-"+suffix, map[string]string{labelDev: dir, labelHost: "h-old"})
	other := mk("wharf-sweep-other-"+suffix, map[string]string{labelDev: dir + "-other", labelHost: "h-old"})
	plain := mk("wharf-sweep-plain-"+suffix, map[string]string{labelHost: "h-old"})

	n, err := sweepDevContainers(ctx, cli, dir, "h-now")
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want 1 removed", n, err)
	}
	exists := func(id string) bool {
		_, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		return err == nil
	}
	if exists(orphan) || !exists(kept) || !exists(other) || !exists(plain) {
		t.Fatalf("after the sweep: orphan %v kept %v other %v plain %v; want only the orphan gone",
			exists(orphan), exists(kept), exists(other), exists(plain))
	}
	if n, err := sweepDevContainers(ctx, cli, dir, ""); err != nil || n != 1 || exists(kept) {
		t.Fatalf("sweep keeping none: %d, %v, kept still there: %v", n, err, exists(kept))
	}
}
