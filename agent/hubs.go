package agent

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// fileHubs keeps the hub addresses the agent learnt, for after a restart.
const fileHubs = "hubs"

// Hubs returns the hub addresses the agent knows.
func (a *Agent) Hubs() []string { return append([]string(nil), *a.hubs.Load()...) }

// learnHubs adds the hub nodes a Welcome named and remembers them on disk.
func (a *Agent) learnHubs(addrs []string) {
	old := *a.hubs.Load()
	merged := mergeHubs(old, addrs)
	if len(merged) == len(old) {
		return
	}
	// On disk first, so whoever sees the new list in memory finds it there too.
	if err := atomicfile.Write(filepath.Join(a.cfg.DataDir, fileHubs), []byte(strings.Join(merged, "\n")+"\n"), 0o600); err != nil {
		a.log.Warn("hub addresses not remembered on disk", "err", err)
	}
	a.hubs.Store(&merged)
}

// mergeHubs appends to a the addresses of b it lacks, keeping a's order.
func mergeHubs(a, b []string) []string {
	out := append([]string(nil), a...)
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// registerHubs learns the hub nodes each Welcome names.
func (a *Agent) registerHubs(c *control.Control) {
	c.Handle(&wire.Envelope_Welcome{}, func(_ context.Context, in control.Inbound) error {
		a.learnHubs(in.Env.GetWelcome().HubAddrs)
		return nil
	})
}
