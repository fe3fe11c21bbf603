package gossip

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

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
