package kubeenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
)

// ImportImage copies a Docker image of this machine (`docker save`) into
// the containerd of every real node, so that Pods can run it without a
// registry: give such Pods imagePullPolicy IfNotPresent (or Never), since
// nothing can be pulled. The reference is used as the Pod's image, e.g.
// "wharf-kube-test:1" (Kubernetes and containerd both read it as
// docker.io/library/wharf-kube-test:1). Without real nodes it does nothing.
func (c *Cluster) ImportImage(t testing.TB, ref string) {
	t.Helper()
	if len(c.nodes) == 0 {
		return
	}
	f, err := os.CreateTemp(c.Dir, "image-*.tar")
	if err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	defer os.Remove(f.Name())
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), deadline.Scale(5*time.Minute))
	defer cancel()
	save := exec.CommandContext(ctx, "docker", "save", ref)
	save.Stdout, save.Stderr = f, &stderr
	err = save.Run()
	f.Close()
	if err != nil {
		t.Fatalf("kubeenv: docker save %s: %v: %s", ref, err, stderr.String())
	}
	for _, n := range c.nodes {
		if out, err := n.ctr(ctx, "-n", "k8s.io", "images", "import", "--digests", "--snapshotter", "overlayfs", f.Name()); err != nil {
			t.Fatalf("kubeenv: import %s into %s: %v: %s", ref, n.name, err, out)
		}
	}
}

// pauseImageTar writes (once per cluster) an OCI image layout archive of
// a FROM-scratch image holding BinDir/pause as its entrypoint, named
// pauseImage, for `ctr images import`.
func pauseImageTar(c *Cluster) (string, error) {
	path := filepath.Join(c.Dir, "pause-image.tar")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	bin, err := os.ReadFile(filepath.Join(c.BinDir, "pause"))
	if err != nil {
		return "", err
	}
	// The one layer: /pause.
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	epoch := time.Unix(0, 0)
	if err := lw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(bin)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := lw.Write(bin); err != nil {
		return "", err
	}
	if err := lw.Close(); err != nil {
		return "", err
	}
	blobs := map[string][]byte{}
	add := func(b []byte) (string, int) {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return d, len(b)
	}
	layerDigest, layerSize := add(layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": []string{"/pause"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	if err != nil {
		return "", err
	}
	configDigest, configSize := add(config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": configSize},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layerSize}},
	})
	if err != nil {
		return "", err
	}
	manifestDigest, manifestSize := add(manifest)
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json",
			"digest":    manifestDigest,
			"size":      manifestSize,
			"platform":  map[string]string{"architecture": runtime.GOARCH, "os": "linux"},
			"annotations": map[string]string{
				"io.containerd.image.name":          pauseImage,
				"org.opencontainers.image.ref.name": "1",
			},
		}},
	})
	if err != nil {
		return "", err
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	files := map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json": index,
	}
	for d, b := range blobs {
		files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] = b
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: epoch}); err != nil {
			return "", err
		}
	}
	for _, name := range names {
		b := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(b); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return path, f.Close()
}

// unmountUnder detaches every mount point under dir (deepest first): a
// kubelet's volumes, containerd's rootfs, shm and network namespace mounts
// that a stopped node left.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	// Longest first: children before their parents.
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var failed []string
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			failed = append(failed, fmt.Sprintf("%s: %v", p, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("unmount under %s: %s", dir, strings.Join(failed, "; "))
	}
	return nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
