package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/hashicorp/memberlist"

	"github.com/wharf-platform/wharf/internal/gossipnet"
)

// Meta is what a hub node publishes about itself in gossip.
type Meta struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Datacenter string            `json:"dc"`
	RaftAddr   string            `json:"raft"`
	HTTPAddr   string            `json:"http,omitempty"`
	Expect     int               `json:"expect,omitempty"`
	Extra      map[string]string `json:"extra,omitempty"`
	// Entries is the newest log entry format the node reads; versions
	// before it was published leave it out (read as 1).
	Entries int `json:"entries,omitempty"`
}

// Member is a gossip member with its metadata.
type Member struct {
	Meta
	Alive bool // false once gossip declared it dead or it left
}

type delegate struct {
	meta []byte
}

func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// events keeps the cluster's copy of the member list and wakes the
// reconcile loop. memberlist calls it with its lock held, the only time a
// *memberlist.Node may be read without racing memberlist's own updates.
type events struct {
	c *Cluster
}

// The Node memberlist passes does not carry the new state (memberlist
// updates its own copy), so the callback says which it is.
func (e events) NotifyJoin(n *memberlist.Node)   { e.c.setMember(n, true) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.c.setMember(n, false) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.c.setMember(n, true) }

func (c *Cluster) setMember(n *memberlist.Node, alive bool) {
	var m Meta
	if json.Unmarshal(n.Meta, &m) != nil || m.ID == "" {
		return
	}
	mem := Member{Meta: m, Alive: alive}
	c.membersMu.Lock()
	if c.members == nil {
		c.members = map[string]Member{}
	}
	c.members[n.Name] = mem
	c.membersMu.Unlock()
	c.kick()
}

func (c *Cluster) startGossip(advertise string, meta Meta) error {
	logw := logWriter{c.log.With("lib", "memberlist")}
	tr, host, err := gossipnet.Listen(c.cfg.GossipAddr)
	if err != nil {
		return err
	}
	b, err := json.Marshal(meta)
	if err != nil {
		tr.Shutdown()
		return err
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.cfg.NodeName
	mc.Transport = tr
	mc.BindAddr, mc.BindPort = host, tr.GetAutoBindPort()
	mc.AdvertiseAddr, mc.AdvertisePort = advertise, tr.GetAutoBindPort()
	mc.SecretKey = gossipKey(c.cfg.Key)
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.Delegate = &delegate{meta: b}
	mc.Events = events{c: c}
	mc.LogOutput = logw
	ml, err := memberlist.Create(mc)
	if err != nil {
		tr.Shutdown()
		return fmt.Errorf("gossip: %w", err)
	}
	c.ml = ml
	c.gossipAddr = net.JoinHostPort(advertise, strconv.Itoa(tr.GetAutoBindPort()))
	return nil
}

// Members returns the hub nodes gossip knows of, alive or not, sorted by name.
func (c *Cluster) Members() []Member {
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
