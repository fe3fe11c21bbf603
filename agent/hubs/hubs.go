// Package hubs keeps the hub nodes' gateway addresses an agent knows: those
// it was configured with, then those each Welcome (and, when they change,
// a heartbeat ack) names, remembered on
// disk so that a restarted agent still finds a hub when the configured
// ones are gone.
package hubs

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// File keeps the hub addresses the agent learnt, one a line.
const File = "hubs"

// List is the hub addresses an agent knows, in the order it tries them.
type List struct {
	dir   string
	log   *slog.Logger
	addrs atomic.Pointer[[]string]
}

// Open returns the configured addresses followed by those remembered in
// dir.
func Open(dir string, configured []string, log *slog.Logger) *List {
	l := &List{dir: dir, log: log}
	addrs := append([]string(nil), configured...)
	if b, err := os.ReadFile(filepath.Join(dir, File)); err == nil {
		addrs = merge(addrs, strings.Fields(string(b)))
	}
	l.addrs.Store(&addrs)
	return l
}

// All returns the addresses; the caller may keep the slice.
func (l *List) All() []string { return append([]string(nil), *l.addrs.Load()...) }

// Learn adds the addresses it lacks and remembers them on disk.
func (l *List) Learn(addrs []string) {
	old := *l.addrs.Load()
	merged := merge(old, addrs)
	if len(merged) == len(old) {
		return
	}
	// On disk first, so whoever sees the new list in memory finds it there too.
	if err := atomicfile.Write(filepath.Join(l.dir, File), []byte(strings.Join(merged, "\n")+"\n"), 0o600); err != nil {
		l.log.Warn("hub addresses not remembered on disk", "err", err)
	}
	l.addrs.Store(&merged)
}

// Register learns the hub nodes each Welcome names, and those a heartbeat
// ack names when they changed (nodes added since the Welcome).
func (l *List) Register(c *control.Control) {
	c.Handle(&wire.Envelope_Welcome{}, func(_ context.Context, in control.Inbound) error {
		l.Learn(in.Env.GetWelcome().HubAddrs)
		return nil
	})
	c.Handle(&wire.Envelope_HeartbeatAck{}, func(_ context.Context, in control.Inbound) error {
		if addrs := in.Env.GetHeartbeatAck().HubAddrs; len(addrs) > 0 {
			l.Learn(addrs)
		}
		return nil
	})
}

// merge appends to a the addresses of b it lacks, keeping a's order.
func merge(a, b []string) []string {
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
