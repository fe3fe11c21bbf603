package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/identity"
	"github.com/wharf-platform/wharf/agent/supervisor"
)

// stopInstances stops and removes every instance the driver holds for the
// host enrolled in dataDir, without contacting the hub: what is left to do
// before a host's data dir is wiped (instances outlive their agent, by
// design). A data dir that never enrolled has nothing to stop.
func stopInstances(ctx context.Context, dataDir string, newDriver func(string) (driver.Driver, error), log *slog.Logger) error {
	id, err := identity.Load(dataDir)
	if err != nil {
		return fmt.Errorf("stop instances: %w", err)
	}
	if id == nil {
		return nil
	}
	hostID := id.HostID
	drv, err := newDriver(hostID)
	if err != nil {
		return fmt.Errorf("stop instances: %w", err)
	}
	if c, ok := drv.(io.Closer); ok {
		defer c.Close()
	}
	list, err := drv.List(ctx)
	if err != nil {
		return fmt.Errorf("stop instances: %w", err)
	}
	var errs []error
	for _, st := range list {
		if err := drv.Stop(ctx, st.InstanceID, supervisor.StopGrace); err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("stopped instance", "instance", st.InstanceID, "app", st.App, "tenant", st.Tenant, "driver", drv.Name())
	}
	return errors.Join(errs...)
}
