package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/memberlist"
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
}

// Member is a gossip member with its metadata.
type Member struct {
	Meta
	Alive bool
	Left  bool
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

// events wakes the reconcile loop on membership changes.
type events struct {
	kick func()
}

func (e events) NotifyJoin(*memberlist.Node)   { e.kick() }
func (e events) NotifyLeave(*memberlist.Node)  { e.kick() }
func (e events) NotifyUpdate(*memberlist.Node) { e.kick() }

func (c *Cluster) startGossip(advertise string, meta Meta) error {
	host, portStr, err := net.SplitHostPort(c.cfg.GossipAddr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("gossip port %q: %w", portStr, err)
	}
	logw := logWriter{c.log.With("lib", "memberlist")}
	tr, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: nil})
	if err != nil {
		return fmt.Errorf("gossip listen %s: %w", c.cfg.GossipAddr, err)
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
	mc.Events = events{kick: c.kick}
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

// Members returns the gossip members that are hub nodes.
func (c *Cluster) Members() []Member {
	var out []Member
	for _, n := range c.ml.Members() {
		var m Meta
		if json.Unmarshal(n.Meta, &m) != nil || m.ID == "" {
			continue
		}
		out = append(out, Member{Meta: m, Alive: n.State == memberlist.StateAlive || n.State == memberlist.StateSuspect, Left: n.State == memberlist.StateLeft})
	}
	return out
}
