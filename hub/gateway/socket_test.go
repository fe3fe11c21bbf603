package gateway

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state/statetest"
)

// TestSocketReleased: the UDP port a gateway serves on (bound by its
// caller or by itself) is free again once its Run ends, and once a
// gateway that never ran is closed, so that a hub
// node restarted in the same process (or its tests) binds it again.
func TestSocketReleased(t *testing.T) {
	st := statetest.New(t)
	rebind := func(addr string) {
		t.Helper()
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("the gateway's port is still bound: %v", err)
		}
		c.Close()
	}

	// A socket the caller bound (as the hub does) is the gateway's too.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Conn: udp, Store: st.Store(), Cluster: &flakyCluster{st: st}})
	if err != nil {
		t.Fatal(err)
	}
	addr := g.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end")
	}
	rebind(addr)

	g, err = New(Config{Addr: addr, Store: st.Store(), Cluster: &flakyCluster{st: st}})
	if err != nil {
		t.Fatalf("a new gateway on the same port: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	rebind(addr)
}
