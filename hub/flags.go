package hub

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/wharf-platform/wharf/internal/gctune"
)

// Command registers the hub's flags on fs and returns
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
	fs.StringVar(&cfg.PreviousClusterKey, "previous-cluster-key", "", "during a key rotation, the cluster key before it: secrets sealed under it still open and are re-sealed (or WHARF_PREVIOUS_CLUSTER_KEY)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "REST API, /metrics and /install.sh address")
	fs.StringVar(&cfg.QUICAddr, "quic-addr", cfg.QUICAddr, "agent gateway (QUIC) address")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "Raft and internal RPC address")
	fs.StringVar(&cfg.GossipAddr, "gossip-addr", cfg.GossipAddr, "gossip (memberlist) address")
	fs.StringVar(&cfg.Advertise, "advertise", "", "IP address other nodes use to reach this one")
	fs.StringVar(&cfg.AppsDomain, "apps-domain", cfg.AppsDomain, "parent domain of apps' default routes")
	fs.Int64Var(&cfg.LogRetention.MaxBytes, "log-retention-bytes", 1<<30, "logs kept per tenant on each hub node, in bytes (oldest dropped first)")
	fs.DurationVar(&cfg.LogRetention.MaxAge, "log-retention-age", 7*24*time.Hour, "how long logs are kept")
	fs.DurationVar(&cfg.SuspectAfter, "suspect-after", cfg.SuspectAfter, "a host without heartbeat for this long is suspect")
	fs.DurationVar(&cfg.DownAfter, "down-after", cfg.DownAfter, "a host without heartbeat for this long is down")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	var debugAddr string
	fs.StringVar(&debugAddr, "debug-addr", "", "serve Go's /debug/pprof here (loopback only, for profiling; empty: off)")
	return func(ctx context.Context) error {
		if debugAddr != "" {
			if err := serveDebug(ctx, debugAddr); err != nil {
				return err
			}
		}
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
		if cfg.PreviousClusterKey == "" {
			cfg.PreviousClusterKey = os.Getenv("WHARF_PREVIOUS_CLUSTER_KEY")
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(logLevel)); err != nil {
			return err
		}
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		// The GC percent follows the node's work: as little heap headroom
		// as 5% of a core of collector CPU allows, between a quarter of
		// the live heap (a node holding thousands of agents, whose memory
		// per agent matters) and 128 MB (a small node taking thousands of
		// writes a second), or up to four times the live heap within a
		// quarter of the memory (a large state under churn, whose mark
		// phases would otherwise delay its requests); e2e/BENCHMARKS.md.
		go gctune.Run(ctx, gctune.Default)
		return Run(ctx, cfg)
	}
}

// serveDebug serves net/http/pprof on a loopback address until ctx ends.
func serveDebug(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--debug-addr %q: must be a loopback IP:PORT", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	context.AfterFunc(ctx, func() { srv.Close() })
	go srv.Serve(ln)
	return nil
}
