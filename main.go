// Command wharf is Wharf's one binary: hub, agent and CLI.
package main

import (
	"os"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/hub"
	"github.com/wharf-platform/wharf/pkg/cli"

	// The clouds a hub can create machines in: each registers itself with
	// package providers (their SDKs are linked here, not where tests look).
	_ "github.com/wharf-platform/wharf/providers/aliyun"
	_ "github.com/wharf-platform/wharf/providers/aws"
	_ "github.com/wharf-platform/wharf/providers/openstack"
	_ "github.com/wharf-platform/wharf/providers/ssh"
	_ "github.com/wharf-platform/wharf/providers/vsphere"
)

func main() {
	agent.Reexec() // the exec driver's instance supervisors are this binary too
	os.Exit(cli.Main(hub.Command, agent.Command))
}
