package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/agent/driver/kubernetes"
	"github.com/wharf-platform/wharf/agent/inventory"
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

// driverOptions are the flags that concern one driver only.
type driverOptions struct {
	// Labels are put on Docker containers besides wharf's.
	Labels map[string]string
	// Kubeconfig is the kubernetes driver's cluster ("": in-cluster).
	Kubeconfig string
}

// driverFactory returns the NewDriver of --driver: "docker", "exec",
// "kubernetes", or "" (docker when a daemon answers, else exec), and the
// drivers this host runs instances with for its inventory: the one
// chosen, since the hub places on a host only what its reported drivers
// run.
func driverFactory(name, dataDir string, opts driverOptions, log *slog.Logger) (func(string) (driver.Driver, error), []string, error) {
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
			return docker.New(docker.Config{HostID: hostID, Labels: opts.Labels, Logger: log})
		}, available, nil
	case kubernetes.Name:
		if opts.Kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
			return nil, nil, errors.New("--driver kubernetes needs --kubeconfig outside a cluster (KUBERNETES_SERVICE_HOST is not set)")
		}
		if opts.Kubeconfig != "" {
			if _, err := os.Stat(opts.Kubeconfig); err != nil {
				return nil, nil, fmt.Errorf("--kubeconfig: %w", err)
			}
		}
		// client-go logs through klog, process-wide: its lines go where
		// the agent's go.
		klog.SetSlogLogger(log.With("component", "client-go"))
		return func(hostID string) (driver.Driver, error) {
			// StartWait -1: the supervisor starts instances one after
			// another, and looks again at a Pod that is not running yet.
			return kubernetes.New(kubernetes.Config{HostID: hostID, Kubeconfig: opts.Kubeconfig, StartWait: -1, Logger: log})
		}, available, nil
	case "exec":
		return func(hostID string) (driver.Driver, error) {
			return exec.New(exec.Config{HostID: hostID, DataDir: dataDir, Logger: log})
		}, available, nil
	}
	return nil, nil, fmt.Errorf("--driver %q: want docker, exec or kubernetes", name)
}

// kindOf says what an agent with drivers enrolls: a whole cluster with
// the kubernetes driver, else a host.
func kindOf(drivers []string) string {
	if slices.Contains(drivers, kubernetes.Name) {
		return inventory.KindCluster
	}
	return inventory.KindHost
}
