package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Command registers the agent's flags on fs and returns the function that runs it.
func Command(fs *pflag.FlagSet) func(ctx context.Context) error {
	var cfg Config
	var hubs []string
	var labels, logLevel, driverName, kubeconfig string
	var containerLabels []string
	var stop bool
	fs.StringArrayVar(&hubs, "hub", nil, "hub gateway (QUIC) address (repeatable, or comma-separated)")
	fs.StringVar(&cfg.Token, "token", "", "join token (needed until the agent has enrolled)")
	var tokenFile string
	fs.StringVar(&tokenFile, "token-file", "", "file holding the join token (a mounted Secret), instead of --token")
	fs.StringVar(&cfg.DataDir, "data-dir", "/var/lib/wharf-agent", "where the agent keeps its identity")
	fs.StringVar(&cfg.Pool, "pool", "", "the pool to join (must match the join token's)")
	fs.StringVar(&cfg.Name, "name", "", "host name, unique in its pool (default: hostname)")
	fs.StringVar(&cfg.MachineID, "machine-id", "", "the provisioned machine this host is (set by the install; checked against the join token)")
	fs.StringVar(&labels, "labels", "", "labels k=v,k2=v2")
	fs.StringVar(&cfg.GossipAddr, "gossip-addr", "0.0.0.0:7484", "pool gossip address (TCP and UDP); empty: no gossip")
	fs.StringVar(&cfg.LocalAddr, "local-addr", "0.0.0.0:7485", "serves /healthz and /metrics; empty: none")
	fs.StringVar(&cfg.Advertise, "advertise", "", "address other hosts use to reach this host's instances (default: its first address)")
	fs.StringVar(&cfg.Provider, "provider", "", "cloud provider reported in the inventory (aws, aliyun, vsphere, openstack, baremetal)")
	fs.StringVar(&cfg.Region, "region", "", "region reported in the inventory")
	fs.StringVar(&cfg.Zone, "zone", "", "zone reported in the inventory")
	fs.StringVar(&driverName, "driver", "", "docker, exec or kubernetes (default: docker if a daemon answers, else exec)")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "the cluster of --driver kubernetes (default: the in-cluster config, in a Pod)")
	fs.StringVar(&cfg.RouterHTTPAddr, "router-http-addr", "0.0.0.0:7080", "router HTTP address (TCP routes listen on its host); empty: no router")
	fs.StringVar(&cfg.RouterHTTPSAddr, "router-https-addr", "0.0.0.0:7443", "router HTTPS address; empty: none")
	fs.BoolVar(&cfg.Metrics, "metrics", true, "sample the host and the instances (embedded cAdvisor) and send the samples to the hub")
	fs.Int64Var(&cfg.LogBufferBytes, "log-buffer-bytes", 256<<20, "bound of the on-disk buffer of instance output not yet acknowledged by the hub (oldest lines are dropped, and reported, when full)")
	fs.DurationVar(&cfg.DrainDelay, "drain-delay", 2*time.Second, "how long an unassigned instance keeps serving while routers drop it")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringArrayVar(&containerLabels, "container-label", nil, "label k=v put on every container the docker driver creates (repeatable)")
	fs.BoolVar(&stop, "stop-instances", false, "stop and remove this host's instances (of --driver, found through --data-dir) and exit, without contacting the hub")
	return func(ctx context.Context) error {
		if tokenFile != "" {
			// A Pod gets its token from a mounted Secret: never on a
			// command line that any process can read.
			if cfg.Token != "" {
				return errors.New("give --token or --token-file, not both")
			}
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return fmt.Errorf("--token-file: %w", err)
			}
			cfg.Token = strings.TrimSpace(string(b))
		}
		for _, h := range hubs {
			for _, a := range strings.Split(h, ",") {
				if a = strings.TrimSpace(a); a != "" {
					cfg.Hubs = append(cfg.Hubs, a)
				}
			}
		}
		if labels != "" {
			cfg.Labels = map[string]string{}
			for _, kv := range strings.Split(labels, ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--labels %q: want k=v,k2=v2", labels)
				}
				cfg.Labels[k] = v
			}
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(logLevel)); err != nil {
			return err
		}
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		extra := map[string]string{}
		for _, kv := range containerLabels {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("--container-label %q: want k=v", kv)
			}
			extra[k] = v
		}
		if kubeconfig != "" && driverName != "kubernetes" {
			return errors.New("--kubeconfig is for --driver kubernetes")
		}
		newDriver, drivers, err := driverFactory(driverName, cfg.DataDir, driverOptions{Labels: extra, Kubeconfig: kubeconfig},
			cfg.Logger.With("component", "driver"))
		if err != nil {
			return err
		}
		if stop {
			return stopInstances(ctx, cfg.DataDir, newDriver, cfg.Logger)
		}
		cfg.NewDriver, cfg.Drivers = newDriver, drivers
		a, err := New(cfg)
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}
}
