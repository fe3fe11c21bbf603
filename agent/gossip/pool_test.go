package gossip

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/pkg/wire"
)

func testPool(t *testing.T, hostID, addr string) (*Pool, *control.Control) {
	t.Helper()
	p := NewPool(PoolConfig{HostID: hostID, Addr: addr, Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	c := control.New()
	p.Register(c)
	return p, c
}

func welcome(t *testing.T, c *control.Control, key []byte, peers ...string) {
	t.Helper()
	env := &wire.Envelope{Msg: &wire.Envelope_Welcome{Welcome: &wire.Welcome{GossipKey: key, PoolPeers: peers}}}
	if err := c.Dispatch(context.Background(), control.Inbound{Env: env}); err != nil {
		t.Fatal(err)
	}
}

// TestPoolStartsOnWelcome: the key and peers of a Welcome start the
// gossip, keep the key on disk for a restart without a hub, and the
// members see each other; each session's feed reports what the member
// sees after a heartbeat.
func TestPoolStartsOnWelcome(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a, ca := testPool(t, "host-a", "127.0.0.1:0")
	b, cb := testPool(t, "host-b", "127.0.0.1:0")
	if a.Addr() != "" || a.Peers() != 0 {
		t.Fatalf("gossip before any key: %q, %d peers", a.Addr(), a.Peers())
	}
	welcome(t, ca, key)
	if a.Addr() == "" {
		t.Fatal("no gossip after Welcome gave a key")
	}
	if got := LoadKey(a.cfg.Dir); !bytes.Equal(got, key) {
		t.Fatal("the pool's key is not on disk")
	}
	welcome(t, cb, key, a.Addr())
	deadline := time.Now().Add(10 * time.Second)
	for a.Peers() != 1 || b.Peers() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("peers: a sees %d, b sees %d; want 1 each", a.Peers(), b.Peers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	feeds := ca.Feeds()
	if len(feeds) != 1 || feeds[0].Tick == nil {
		t.Fatalf("%d feeds, want one sent after heartbeats", len(feeds))
	}
	r := feeds[0].Tick(time.Now()).GetGossipReport()
	if r == nil || len(r.Peers) != 1 || r.Peers[0].HostId != "host-b" || r.Peers[0].State != "alive" {
		t.Fatalf("report %v, want host-b alive", r)
	}
}

// TestPoolRetriesAFailedStart: a start whose port is taken leaves no
// member, and Run starts one once the port is free, with the key the
// Welcome gave.
func TestPoolRetriesAFailedStart(t *testing.T) {
	defer func(d time.Duration) { retryEvery = d }(retryEvery)
	retryEvery = 20 * time.Millisecond
	hold, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := hold.LocalAddr().String()
	p, c := testPool(t, "host-a", addr)
	key := bytes.Repeat([]byte{7}, 32)
	welcome(t, c, key)
	time.Sleep(5 * retryEvery)
	if p.Addr() != "" {
		hold.Close()
		t.Fatalf("gossip at %s while its UDP port was taken", p.Addr())
	}
	hold.Close()
	deadline := time.Now().Add(10 * time.Second)
	for p.Addr() != addr {
		if time.Now().After(deadline) {
			t.Fatalf("gossip at %q after its port was freed, want %s", p.Addr(), addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := LoadKey(p.cfg.Dir); !bytes.Equal(got, key) {
		t.Fatal("the retried start did not keep the key")
	}
}

// TestPoolWithoutAddress: an agent run without a gossip address ignores
// the key it is given and keeps nothing.
func TestPoolWithoutAddress(t *testing.T) {
	p, c := testPool(t, "host-a", "")
	welcome(t, c, bytes.Repeat([]byte{7}, 32))
	if p.Addr() != "" || LoadKey(p.cfg.Dir) != nil {
		t.Fatalf("gossip at %q without an address", p.Addr())
	}
	if m := c.Feeds()[0].Tick(time.Now()); m != nil {
		t.Fatalf("reported %v without gossip", m)
	}
}

// TestReportIsBounded: a periodic report vouches for ringPeers peers, not
// for every peer, changes are reported at once, and over a pool every
// host is vouched for by ringPeers others.
func TestReportIsBounded(t *testing.T) {
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("host-%03d", i)
	}
	members := make([]*Member, n)
	for i, self := range ids {
		m := &Member{self: self, views: map[string]peerView{}, changed: map[string]bool{}}
		for _, id := range ids {
			m.set(&memberlist.Node{Name: id}, true)
		}
		members[i] = m
	}
	// Joins wait for the periodic report.
	if r := members[0].Report(false); r != nil {
		t.Fatalf("only joins, yet %d views reported at once", len(r.Peers))
	}
	vouched := map[string]int{}
	for _, m := range members {
		r := m.Report(true)
		if r == nil || len(r.Peers) != ringPeers {
			t.Fatalf("%s: periodic report of %d views, want %d", m.self, len(r.GetPeers()), ringPeers)
		}
		for _, p := range r.Peers {
			if p.HostId == m.self || p.State != "alive" {
				t.Fatalf("%s reported %v", m.self, p)
			}
			vouched[p.HostId]++
		}
	}
	for _, id := range ids {
		if vouched[id] != ringPeers {
			t.Fatalf("%s vouched for by %d peers, want %d", id, vouched[id], ringPeers)
		}
	}
	// A death is reported at once, and so is the recovery.
	m := members[0]
	for _, alive := range []bool{false, true} {
		m.set(&memberlist.Node{Name: "host-150"}, alive)
		want := map[bool]string{false: "dead", true: "alive"}[alive]
		r := m.Report(false)
		if r == nil || len(r.Peers) != 1 || r.Peers[0].HostId != "host-150" || r.Peers[0].State != want {
			t.Fatalf("after host-150 went %s: %v", want, r)
		}
	}
}
