package metrics

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Generous bounds for a loaded 2-core CI machine; never waited out when
// things work.
const (
	waitTimeout = 30 * time.Second
	pollEvery   = 100 * time.Millisecond
)

// testLogger logs to stderr, at debug level with WHARF_TEST_VERBOSE=1 and
// warnings and up otherwise. Not through t.Log: cAdvisor keeps logging
// through the first Collector's logger after that test ends.
func testLogger(testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("WHARF_TEST_VERBOSE") == "1" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startCollector runs a Collector for cfg until the test ends, and checks
// that Run then returns nil. The tweaks change the Collector before Run.
func startCollector(t testing.TB, cfg Config, tweaks ...func(*Collector)) *Collector {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tweak := range tweaks {
		tweak(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Run did not return %v after its context ended", waitTimeout)
		}
	})
	return c
}

// waitSample polls c.Latest until ok accepts a sample, or fails the test.
func waitSample(t testing.TB, c *Collector, what string, ok func(Sample) bool) Sample {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		s := c.Latest()
		if !s.Time.IsZero() && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sample %s within %v; last: %+v", what, waitTimeout, s)
		}
		time.Sleep(pollEvery)
	}
}

func instance(s Sample, id string) (InstanceStats, bool) {
	for _, is := range s.Instances {
		if is.Instance == id {
			return is, true
		}
	}
	return InstanceStats{}, false
}

var burner struct {
	once sync.Once
	path string
	err  error
}

// buildBurner builds testdata/burner as a static binary once per test
// binary.
func buildBurner(t testing.TB) string {
	t.Helper()
	burner.once.Do(func() {
		dir, err := os.MkdirTemp("", "wharf-metrics-burner-")
		if err != nil {
			burner.err = err
			return
		}
		burner.path = filepath.Join(dir, "burner")
		cmd := exec.Command("go", "build", "-trimpath", "-o", burner.path, "./testdata/burner")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			burner.err = fmt.Errorf("build burner: %v\n%s", err, out)
		}
	})
	if burner.err != nil {
		t.Fatal(burner.err)
	}
	return burner.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if burner.path != "" {
		_ = os.RemoveAll(filepath.Dir(burner.path))
	}
	os.Exit(code)
}

// dockerClient returns a client of the local daemon, or skips the test when
// none answers (fails instead with WHARF_REQUIRE_DOCKER=1).
func dockerClient(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		if os.Getenv("WHARF_REQUIRE_DOCKER") == "1" {
			t.Fatalf("WHARF_REQUIRE_DOCKER=1 and no docker daemon: %v", err)
		}
		t.Skipf("no docker daemon (start one, or set WHARF_REQUIRE_DOCKER=1 to fail): %v", err)
	}
	return cli
}

// burnerImage builds a FROM scratch image holding only the burner, through
// the Docker API (nothing is pulled), and removes it when the test ends.
func burnerImage(t testing.TB, cli *client.Client) string {
	t.Helper()
	exe, err := os.ReadFile(buildBurner(t))
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("wharf-metrics-burner:%d", time.Now().UnixNano())
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY burner /burner\nENTRYPOINT [\"/burner\"]\n")},
		{"burner", 0o755, exe},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("build image: %v", err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("build image: %v", err)
		}
		if msg.Error != "" {
			t.Fatalf("build image: %s", msg.Error)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true}); err != nil {
			t.Logf("remove image %s: %v", tag, err)
		}
	})
	return tag
}

// runContainer starts image with args and labels; the container is removed
// (by its id) when the test ends.
func runContainer(t testing.TB, cli *client.Client, image string, labels map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: image, Cmd: args, Labels: labels},
		HostConfig: &container.HostConfig{},
	})
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("remove container %s: %v", res.ID, err)
		}
	})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start container: %v", err)
	}
	return res.ID
}
