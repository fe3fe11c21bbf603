package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/exec"
)

// Reexec runs the exec driver's supervisor stage when this process was
// started as one, and returns otherwise. main calls it first.
func Reexec() { exec.Reexec() }

// dockerAnswers reports whether a Docker daemon answers within a second.
func dockerAnswers(log *slog.Logger) bool {
	d, err := docker.New(docker.Config{HostID: "probe", Logger: log})
	if err != nil {
		return false
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return d.Ping(ctx) == nil
}

// driverFactory returns the NewDriver of --driver: "docker", "exec", or
// "" (docker when a daemon answers, else exec), and the drivers this host
// runs instances with for its inventory: the one chosen, since the hub
// places on a host only what its reported drivers run. Docker containers
// get labels besides wharf's.
func driverFactory(name, dataDir string, labels map[string]string, log *slog.Logger) (func(string) (driver.Driver, error), []string, error) {
	if name == "" {
		name = "exec"
		if dockerAnswers(log) {
			name = "docker"
		}
	}
	available := []string{name}
	switch name {
	case "docker":
		return func(hostID string) (driver.Driver, error) {
			return docker.New(docker.Config{HostID: hostID, Labels: labels, Logger: log})
		}, available, nil
	case "exec":
		return func(hostID string) (driver.Driver, error) {
			return exec.New(exec.Config{HostID: hostID, DataDir: dataDir, Logger: log})
		}, available, nil
	}
	return nil, nil, fmt.Errorf("--driver %q: want docker or exec", name)
}
