package hub

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"
)

// Command registers the hub's flags (DESIGN.md section 8) on fs and returns
// the function that runs a hub node with the parsed values. It has the shape
// pkg/cli expects of a daemon.
func Command(fs *pflag.FlagSet) func(ctx context.Context) error {
	cfg := DefaultConfig()
	var joins []string
	var logLevel string
	fs.StringVar(&cfg.NodeName, "node-name", "", "node name (default: hostname plus a short id kept in the data dir)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for Raft state and the node id (required)")
	fs.StringVar(&cfg.Datacenter, "datacenter", cfg.Datacenter, "datacenter of this node")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 0, "number of nodes that form a new cluster")
	fs.StringArrayVar(&joins, "join", nil, "gossip address of a hub node to join (repeatable, or comma-separated)")
	fs.StringVar(&cfg.ClusterKey, "cluster-key", "", "cluster key from `wharf keygen` (or WHARF_CLUSTER_KEY)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "REST API and console address")
	fs.StringVar(&cfg.QUICAddr, "quic-addr", cfg.QUICAddr, "agent gateway (QUIC) address")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "Raft and internal RPC address")
	fs.StringVar(&cfg.GossipAddr, "gossip-addr", cfg.GossipAddr, "gossip (memberlist) address")
	fs.StringVar(&cfg.Advertise, "advertise", "", "IP address other nodes use to reach this one")
	fs.StringVar(&cfg.AppsDomain, "apps-domain", cfg.AppsDomain, "parent domain of apps' default routes")
	fs.DurationVar(&cfg.SuspectAfter, "suspect-after", cfg.SuspectAfter, "a host without heartbeat for this long is suspect")
	fs.DurationVar(&cfg.DownAfter, "down-after", cfg.DownAfter, "a host without heartbeat for this long is down")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return func(ctx context.Context) error {
		for _, j := range joins {
			for _, a := range strings.Split(j, ",") {
				if a = strings.TrimSpace(a); a != "" {
					cfg.Join = append(cfg.Join, a)
				}
			}
		}
		if cfg.ClusterKey == "" {
			cfg.ClusterKey = os.Getenv("WHARF_CLUSTER_KEY")
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(logLevel)); err != nil {
			return err
		}
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		if os.Getenv("GOGC") == "" {
			// A hub's heap is small and its writes allocate briskly; trading
			// memory for less GC measured ~15% more writes/s (e2e/BENCHMARKS.md).
			debug.SetGCPercent(400)
		}
		return Run(ctx, cfg)
	}
}
