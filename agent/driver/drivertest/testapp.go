package drivertest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestAppImage is the tag of the Docker image BuildTestAppImage builds.
const TestAppImage = "wharf-testapp:v1"

// TestAppLabel marks the images (and their dangling predecessors) that
// BuildTestAppImage built, so cleanup touches nothing else.
const TestAppLabel = "wharf.testapp"

var testApp struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// BuildTestApp builds testapp as a static binary once per test binary and
// returns its path. Call Cleanup from TestMain to remove it.
func BuildTestApp(t testing.TB) string {
	t.Helper()
	testApp.once.Do(func() {
		dir, err := os.MkdirTemp("", "wharf-testapp-")
		if err != nil {
			testApp.err = err
			return
		}
		testApp.dir = dir
		testApp.path = filepath.Join(dir, "testapp")
		cmd := exec.Command("go", "build", "-trimpath", "-o", testApp.path,
			"github.com/wharf-platform/wharf/agent/driver/drivertest/testapp")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			testApp.err = fmt.Errorf("build testapp: %v\n%s", err, out)
		}
	})
	if testApp.err != nil {
		t.Fatal(testApp.err)
	}
	return testApp.path
}

// Cleanup removes what BuildTestApp left in the temporary directory.
func Cleanup() {
	if testApp.dir != "" {
		_ = os.RemoveAll(testApp.dir)
	}
}

var testImage struct {
	once sync.Once
	err  error
}

// BuildTestAppImage builds TestAppImage, a FROM scratch image that holds
// only testapp, from the local binary through the Docker API: nothing is
// pulled. It builds once per test binary, then prunes the dangling images an
// earlier build of the same tag left behind (by TestAppLabel only).
func BuildTestAppImage(t testing.TB, cli *client.Client) string {
	t.Helper()
	bin := BuildTestApp(t)
	testImage.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		testImage.err = buildImage(ctx, cli, bin)
	})
	if testImage.err != nil {
		t.Fatal(testImage.err)
	}
	return TestAppImage
}

func buildImage(ctx context.Context, cli *client.Client, bin string) error {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	dockerfile := "FROM scratch\nCOPY testapp /testapp\nENV PORT=8080\nEXPOSE 8080\nCMD [\"/testapp\"]\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"testapp", 0o755, exe}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags:        []string{TestAppImage},
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{TestAppLabel: "1"},
	})
	if err != nil {
		return fmt.Errorf("build image: %w", err)
	}
	defer res.Body.Close()
	// The build reports failures inside the JSON stream, not as an HTTP error.
	dec := json.NewDecoder(res.Body)
	var log strings.Builder
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("build image: %w", err)
		}
		log.WriteString(msg.Stream)
		if msg.Error != "" {
			return fmt.Errorf("build image: %s\n%s", msg.Error, log.String())
		}
	}
	_, err = cli.ImagePrune(ctx, client.ImagePruneOptions{
		Filters: make(client.Filters).Add("dangling", "true").Add("label", TestAppLabel),
	})
	return err
}
