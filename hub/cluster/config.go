// Package cluster owns a hub node's membership in the hub cluster: Raft
// (log in raft-wal, file snapshots), memberlist gossip, the cluster-key
// mutual TLS between nodes, the internal RPC that forwards writes to the
// leader, and read-index linearizable reads.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/state"
)

// Config configures one node. DefaultConfig fills in production values.
type Config struct {
	// NodeID is the node's persistent, unique Raft server id. Required.
	NodeID string
	// NodeName is the node's human name (gossip name). Required.
	NodeName string
	// Datacenter is advertised in gossip metadata.
	Datacenter string
	// DataDir holds raft/ (log, stable store, snapshots). Required.
	DataDir string
	// BootstrapExpect is the number of servers that form a new cluster; 0
	// means join only.
	BootstrapExpect int
	// Join lists gossip addresses to join.
	Join []string
	// Key is the raw 32-byte cluster key. Required.
	Key []byte
	// RaftAddr is the TCP bind address for Raft and internal RPC.
	RaftAddr string
	// GossipAddr is the TCP+UDP bind address for memberlist.
	GossipAddr string
	// Advertise is the IP other nodes use; "" means the bind IP, or the first
	// non-loopback IPv4 when binding to all interfaces.
	Advertise string
	// HTTPAddr is this node's API address, published in gossip metadata.
	HTTPAddr string
	// Extra is published in gossip metadata as is.
	Extra map[string]string
	// EntryFormat is the newest form of log entries this node's FSM reads
	// (state.EntryFormat), published in gossip. Zero means
	// state.EntryFormat; tests set less to stand for an older version.
	EntryFormat int
	// FSM is the replicated state machine. Required.
	FSM raft.FSM
	// OnLeader, when set, runs each time this node becomes a ready leader
	// (after its Barrier); its context ends when leadership is lost.
	OnLeader func(ctx context.Context)
	// Logger receives the cluster's logs (Raft's and memberlist's too).
	Logger *slog.Logger

	// DeadServerGrace is how long a failed server stays a voter before the
	// leader removes it. Zero means 2 minutes.
	DeadServerGrace time.Duration
	// LeaderWait bounds how long a request waits for a leader. Zero: 5 s.
	LeaderWait time.Duration
	// Raft timings; zero keeps the defaults set by DefaultConfig.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold is the number of new log entries that triggers a
	// snapshot. Zero: 8192.
	SnapshotThreshold uint64
	// TrailingLogs is how many entries a snapshot leaves in the log, for
	// followers a little behind; one further behind is sent the snapshot.
	// Zero: 4096.
	TrailingLogs uint64
	// WALSegmentBytes is the size at which the Raft log starts a new
	// segment file; a snapshot frees whole segments. Zero: raft-wal's
	// default (64 MB).
	WALSegmentBytes int
	// Blocked, when set (tests only), cuts traffic to and from remote IPs
	// for which it returns true.
	Blocked func(remoteIP string) bool
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		Datacenter:       "dc1",
		DeadServerGrace:  2 * time.Minute,
		LeaderWait:       5 * time.Second,
		HeartbeatTimeout: 1000 * time.Millisecond,
		ElectionTimeout:  1000 * time.Millisecond,
		// The leader steps down when it has not heard from a quorum for
		// this long. As long as the heartbeat timeout (Raft's upper
		// bound), not half of it: a saturated node's goroutines can wait
		// over 500 ms for a CPU (the churn benchmark measures it), and a
		// leader that steps down for that costs every write in flight a
		// 503 and the cluster a second or more without a leader, with no
		// other node asking for the office. Reads do not rely on the lease
		// (they verify the leadership with a quorum round), and a cut-off
		// leader's lease renewals stay within the fencing's QuorumWindow.
		LeaderLeaseTimeout: 1000 * time.Millisecond,
		// Followers learn of commits from the leader's notices
		// (notice.go); this only bounds how soon one that was behind
		// does, and how often an idle leader sends each follower an
		// empty AppendEntries.
		CommitTimeout:     50 * time.Millisecond,
		SnapshotThreshold: 8192,
		TrailingLogs:      4096,
	}
}

// Validate checks required fields and fills zero values with defaults.
func (c *Config) Validate() error {
	d := DefaultConfig()
	switch {
	case c.NodeID == "":
		return errors.New("cluster: NodeID is required")
	case c.NodeName == "":
		return errors.New("cluster: NodeName is required")
	case c.DataDir == "":
		return errors.New("cluster: DataDir is required")
	case len(c.Key) != KeySize:
		return fmt.Errorf("cluster: key must be %d bytes", KeySize)
	case c.FSM == nil:
		return errors.New("cluster: FSM is required")
	}
	for _, a := range []string{c.RaftAddr, c.GossipAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("cluster: address %q: %w", a, err)
		}
	}
	if c.Datacenter == "" {
		c.Datacenter = d.Datacenter
	}
	if c.DeadServerGrace == 0 {
		c.DeadServerGrace = d.DeadServerGrace
	}
	if c.LeaderWait == 0 {
		c.LeaderWait = d.LeaderWait
	}
	if c.EntryFormat == 0 {
		c.EntryFormat = state.EntryFormat
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = d.HeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = d.ElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = d.LeaderLeaseTimeout
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = d.CommitTimeout
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// advertiseIP picks the IP other nodes use to reach a service bound to bind.
func advertiseIP(advertise, bind string) (string, error) {
	if advertise != "" {
		return advertise, nil
	}
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return host, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String(), nil
		}
	}
	return "127.0.0.1", nil
}
