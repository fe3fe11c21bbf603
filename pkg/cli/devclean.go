package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/pflag"
)

// Labels of the docker driver's containers that the dev command reads.
const labelHost = "wharf.host"

// dockerClient returns a client of the local Docker daemon when one
// answers within a second, else nil.
func dockerClient(ctx context.Context) *client.Client {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil
	}
	return cli
}

// devHostID is the host id the dev agent of dataDir enrolled with, or "".
// The agent keeps it in its identity file (JSON with "host_id"); agents
// of older builds kept it alone in "host-id".
func devHostID(dataDir string) string {
	if b, err := os.ReadFile(filepath.Join(dataDir, "agent", "identity")); err == nil {
		var id struct {
			HostID string `json:"host_id"`
		}
		if json.Unmarshal(b, &id) == nil && id.HostID != "" {
			return id.HostID
		}
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "agent", "host-id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// sweepDevContainers stops and removes the containers labelled as dataDir's
// dev agent's (labelDev) except those of host keep ("": none kept), and
// returns how many it removed. Containers of other setups carry another
// value or no such label, and are never touched.
func sweepDevContainers(ctx context.Context, cli *client.Client, dataDir, keep string) (int, error) {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", labelDev+"="+dataDir)})
	if err != nil {
		return 0, fmt.Errorf("list the dev containers: %w", err)
	}
	n := 0
	var errs []error
	for _, c := range res.Items {
		if keep != "" && c.Labels[labelHost] == keep {
			continue
		}
		grace := 5
		if _, err := cli.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &grace}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("stop container %s: %w", c.ID, err))
			continue
		}
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// runDevClean stops and removes what the dev Wharf of o.dataDir started:
// the dev agent's instances of either driver (found through its data dir,
// by the agent itself), then any container labelled with that data dir (of
// earlier dev hosts too). It refuses while a wharf dev runs on the data
// dir, and leaves the data dir itself to the caller.
func (e *env) runDevClean(ctx context.Context, agent Daemon, o devOptions) error {
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dataDir); err == nil {
		release, err := lockDataDir(dataDir)
		if err != nil {
			return err
		}
		defer release()
	}
	docker := dockerClient(ctx)
	if docker != nil {
		defer docker.Close()
	}
	agentDir := filepath.Join(dataDir, "agent")
	if devHostID(dataDir) != "" {
		drivers := []string{"exec"}
		if docker != nil {
			drivers = append(drivers, "docker")
		}
		for _, drv := range drivers {
			fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
			run := agent(fs)
			for k, v := range map[string]string{"data-dir": agentDir, "driver": drv, "stop-instances": "true", "log-level": "info"} {
				if err := fs.Set(k, v); err != nil {
					return fmt.Errorf("agent flag %s: %w", k, err)
				}
			}
			if err := run(ctx); err != nil {
				return fmt.Errorf("stop the dev agent's %s instances: %w", drv, err)
			}
		}
	}
	if docker != nil {
		if _, err := sweepDevContainers(ctx, docker, dataDir, ""); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "Nothing that wharf dev started from %s runs any more.\n", o.dataDir)
	return nil
}
