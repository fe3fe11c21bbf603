package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"sigs.k8s.io/yaml"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// The demo app `wharf dev` offers: `wharf demo` from this very binary, as a
// FROM scratch image for the docker driver or as the binary itself for exec,
// described by a manifest in the data dir that the Quick start deploys.
const (
	demoAppName     = "hello"
	demoManifest    = "hello.yaml"
	demoImageRepo   = "wharf-demo"
	demoPort        = 8080
	labelDemoBinary = "wharf.demo" // on demo images: the sha256 of the binary inside
)

// staticBinary reports whether the ELF executable at path runs without a
// dynamic loader (it has no PT_INTERP program header), as a FROM scratch
// image needs.
func staticBinary(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// fileDigest is the hex sha256 of the file at path.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ensureDemoImage makes sure the daemon holds a FROM scratch image whose
// only file is bin (as /wharf, run as `/wharf demo`), tagged after bin's
// content, and returns its tag. It builds through the Docker API from a
// context made in memory (nothing is pulled, nothing written to disk) only
// when no image of that content is present; built says whether it did.
func ensureDemoImage(ctx context.Context, cli *client.Client, bin string) (tag string, built bool, err error) {
	digest, err := fileDigest(bin)
	if err != nil {
		return "", false, err
	}
	tag = demoImageRepo + ":" + digest[:12]
	res, err := cli.ImageInspect(ctx, tag)
	switch {
	case err == nil && res.Config != nil && res.Config.Labels[labelDemoBinary] == digest:
		return tag, false, nil
	case err != nil && !cerrdefs.IsNotFound(err):
		return "", false, fmt.Errorf("inspect image %s: %w", tag, err)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return "", false, err
	}
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY wharf /wharf\nENV PORT=%d\nEXPOSE %d\nCMD [\"/wharf\", \"demo\"]\n", demoPort, demoPort)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"wharf", 0o755, exe}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return "", false, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", false, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", false, err
	}
	br, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true,
		Labels: map[string]string{labelDemoBinary: digest},
	})
	if err != nil {
		return "", false, fmt.Errorf("build image %s: %w", tag, err)
	}
	defer br.Body.Close()
	// The build reports failures inside the JSON stream, not as an HTTP error.
	dec := json.NewDecoder(br.Body)
	var log strings.Builder
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", false, fmt.Errorf("build image %s: %w", tag, err)
		}
		log.WriteString(msg.Stream)
		if msg.Error != "" {
			return "", false, fmt.Errorf("build image %s: %s\n%s", tag, msg.Error, log.String())
		}
	}
	return tag, true, nil
}

// demoSpec is the demo app for a driver: the image on docker, the binary
// (by absolute path) on exec; one HTTP port, ready once /healthz answers.
func demoSpec(driverName, image, bin string) apitypes.AppSpec {
	s := apitypes.AppSpec{
		Name:   demoAppName,
		Ports:  []apitypes.Port{{Name: "http", ContainerPort: demoPort}},
		Health: &apitypes.Health{HTTP: "/healthz"},
	}
	if driverName == "docker" {
		s.Image = image
	} else {
		s.Command = []string{bin, "demo"}
	}
	return s
}

// writeDemoManifest writes spec as a wharf.yaml manifest to path.
func writeDemoManifest(path, driverName string, spec apitypes.AppSpec) error {
	b, err := yaml.Marshal(spec)
	if err != nil {
		return err
	}
	head := fmt.Sprintf("# The demo app built into wharf (`wharf demo`), for the dev agent's %s driver.\n"+
		"# Deploy it with: wharf app deploy -f %s --tenant dev\n", driverName, path)
	if err := os.WriteFile(path, append([]byte(head), b...), 0o644); err != nil {
		return fmt.Errorf("write the demo manifest: %w", err)
	}
	return nil
}
