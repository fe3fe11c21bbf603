// Command wharf is Wharf's one binary: hub, agent and CLI.
package main

import (
	"os"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/hub"
	"github.com/wharf-platform/wharf/pkg/cli"
)

func main() {
	agent.Reexec() // the exec driver's instance supervisors are this binary too
	os.Exit(cli.Main(hub.Command, agent.Command))
}
