package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/providers"
)

// Config is everything a hub node needs. Zero values are documented per
// field; DefaultConfig fills in the production defaults (the flags'
// defaults).
type Config struct {
	// NodeName is this node's name in the cluster. "" means the hostname plus
	// a short id persisted in DataDir, so two nodes on one machine differ.
	NodeName string
	// DataDir holds Raft's log and snapshots, the node id and (for
	// single-node clusters) a generated cluster key. Required.
	DataDir string
	// Datacenter is the datacenter this node runs in. "" means "dc1".
	Datacenter string
	// BootstrapExpect is how many nodes form the first Raft configuration.
	// 0 means this node only joins an existing cluster.
	BootstrapExpect int
	// Join lists gossip addresses of other hub nodes to join.
	Join []string
	// ClusterKey is the base64 key from `wharf keygen` that authenticates and
	// encrypts gossip, Raft and internal RPC. "" is allowed only with
	// BootstrapExpect 1: a key is generated and kept in DataDir.
	ClusterKey string
	// PreviousClusterKey, during a cluster key rotation, is the key the
	// cluster had before: secrets sealed under its data key still open,
	// and the leader re-seals them under the current one. "" means none.
	PreviousClusterKey string

	HTTPAddr   string // REST API, /metrics, /install.sh. Default 0.0.0.0:7480.
	QUICAddr   string // agent gateway. Default 0.0.0.0:7481.
	RaftAddr   string // Raft and internal RPC over TLS. Default 0.0.0.0:7482.
	GossipAddr string // memberlist. Default 0.0.0.0:7483.
	// Advertise is the IP other nodes use to reach this one. "" means the
	// bind IP when it is specific, else the first non-loopback IPv4.
	Advertise string
	// AppsDomain is the parent domain of default routes. Default "localhost".
	AppsDomain string
	// LogRetention bounds each tenant's logs kept on this node, by size
	// and age. Zero fields: 1 GiB and 7 days.
	LogRetention logstore.Retention
	// SuspectAfter and DownAfter drive host liveness: a host without a
	// heartbeat for that long is suspect, then down. Defaults 4 s and 10 s.
	SuspectAfter time.Duration
	DownAfter    time.Duration

	// Logger receives the node's logs. nil means slog.Default().
	Logger *slog.Logger
	// Tuning, when set, adjusts timings for tests (short Raft timeouts,
	// fault injection). nil in production.
	Tuning *Tuning
}

// Tuning holds test-only knobs.
type Tuning struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	DeadServerGrace    time.Duration
	SnapshotThreshold  uint64
	// AgentCertTTL shortens agent certificates (to see them rotate).
	AgentCertTTL time.Duration
	// Blocked reports whether traffic to or from remoteIP is cut.
	Blocked func(remoteIP string) bool
	// OpenProvider replaces providers.Open for the API's credential check
	// (a fake cloud).
	OpenProvider func(providers.Account) (providers.Provider, error)
	// OrphanGrace and ProvisionListEvery replace the provisioning loop's
	// grace before it deletes a cloud machine tagged with this cluster but
	// unknown to it (4m) and how often it lists each account (30s), so
	// that a test sees a leak swept in seconds.
	OrphanGrace        time.Duration
	ProvisionListEvery time.Duration
	// AgentBinary is the wharf binary served at /download/wharf-OS-ARCH;
	// "" serves this process's own executable (a test process is not the
	// wharf binary).
	AgentBinary string
	// MeterHour shortens the metered hour (production: always one UTC
	// hour) so that a test sees hours close in seconds.
	MeterHour time.Duration
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Datacenter:   "dc1",
		HTTPAddr:     "0.0.0.0:7480",
		QUICAddr:     "0.0.0.0:7481",
		RaftAddr:     "0.0.0.0:7482",
		GossipAddr:   "0.0.0.0:7483",
		AppsDomain:   "localhost",
		SuspectAfter: 4 * time.Second,
		DownAfter:    10 * time.Second,
	}
}

// Validate checks the config and fills in defaults for zero values.
func (c *Config) Validate() error {
	d := DefaultConfig()
	if c.DataDir == "" {
		return errors.New("--data-dir is required")
	}
	if c.Datacenter == "" {
		c.Datacenter = d.Datacenter
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("--bootstrap-expect must not be negative")
	}
	if c.BootstrapExpect == 0 && len(c.Join) == 0 {
		return errors.New("give --bootstrap-expect N to form a new cluster or --join ADDR to join one")
	}
	for name, addr := range map[string]*string{"--http-addr": &c.HTTPAddr, "--quic-addr": &c.QUICAddr, "--raft-addr": &c.RaftAddr, "--gossip-addr": &c.GossipAddr} {
		if *addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(*addr); err != nil {
			return fmt.Errorf("%s %q: %w", name, *addr, err)
		}
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = d.HTTPAddr
	}
	if c.QUICAddr == "" {
		c.QUICAddr = d.QUICAddr
	}
	if c.RaftAddr == "" {
		c.RaftAddr = d.RaftAddr
	}
	if c.GossipAddr == "" {
		c.GossipAddr = d.GossipAddr
	}
	if c.Advertise != "" && net.ParseIP(c.Advertise) == nil {
		return fmt.Errorf("--advertise %q is not an IP address", c.Advertise)
	}
	if c.AppsDomain == "" {
		c.AppsDomain = d.AppsDomain
	}
	if c.SuspectAfter == 0 {
		c.SuspectAfter = d.SuspectAfter
	}
	if c.DownAfter == 0 {
		c.DownAfter = d.DownAfter
	}
	if c.DownAfter < c.SuspectAfter {
		return fmt.Errorf("--down-after (%s) must not be shorter than --suspect-after (%s)", c.DownAfter, c.SuspectAfter)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

func tune(c *cluster.Config, t *Tuning) {
	if t.HeartbeatTimeout > 0 {
		c.HeartbeatTimeout = t.HeartbeatTimeout
	}
	if t.ElectionTimeout > 0 {
		c.ElectionTimeout = t.ElectionTimeout
	}
	if t.LeaderLeaseTimeout > 0 {
		c.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	}
	if t.CommitTimeout > 0 {
		c.CommitTimeout = t.CommitTimeout
	}
	if t.DeadServerGrace > 0 {
		c.DeadServerGrace = t.DeadServerGrace
	}
	if t.SnapshotThreshold > 0 {
		c.SnapshotThreshold = t.SnapshotThreshold
	}
	c.Blocked = t.Blocked
}

// clusterKey returns the raw cluster key: the configured one, else one kept
// in the data dir, else (single-node clusters only) a new one.
func clusterKey(cfg Config) ([]byte, error) {
	if cfg.ClusterKey != "" {
		return cluster.ParseKey(cfg.ClusterKey)
	}
	s, err := loadOrCreate(cfg.DataDir, "cluster-key", func() (string, error) {
		if cfg.BootstrapExpect != 1 {
			return "", errors.New("--cluster-key (or WHARF_CLUSTER_KEY) is required unless --bootstrap-expect is 1; make one with `wharf keygen`")
		}
		return cluster.GenerateKey(), nil
	})
	if err != nil {
		return nil, err
	}
	return cluster.ParseKey(s)
}
