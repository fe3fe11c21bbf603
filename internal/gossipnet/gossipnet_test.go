package gossipnet

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

// TestListenRetriesAnyPort: with port 0 a UDP port already taken is
// retried on another; with a given port it is not, and the error names
// the address.
func TestListenRetriesAnyPort(t *testing.T) {
	taken := errors.New("UDP port taken")
	calls := 0
	failing := func(n int) func(*memberlist.NetTransportConfig) (*memberlist.NetTransport, error) {
		return func(c *memberlist.NetTransportConfig) (*memberlist.NetTransport, error) {
			calls++
			if calls <= n {
				return nil, taken
			}
			return memberlist.NewNetTransport(c)
		}
	}
	tr, host, err := listen("127.0.0.1:0", failing(3))
	if err != nil {
		t.Fatalf("port 0 after 3 taken ports: %v", err)
	}
	tr.Shutdown()
	if calls != 4 || host != "127.0.0.1" {
		t.Fatalf("%d tries, bound host %q; want 4 and 127.0.0.1", calls, host)
	}

	calls = 0
	if _, _, err := listen("127.0.0.1:7946", failing(1)); !errors.Is(err, taken) || !strings.Contains(err.Error(), "127.0.0.1:7946") || calls != 1 {
		t.Fatalf("a given port: %d tries, err %v; want one try and the address", calls, err)
	}
	calls = 0
	if _, _, err := listen("127.0.0.1:0", failing(portTries)); !errors.Is(err, taken) || calls != portTries {
		t.Fatalf("every port taken: %d tries, err %v", calls, err)
	}
	for _, bad := range []string{"nohost", "127.0.0.1:x", "127.0.0.1:70000", "127.0.0.1:-1"} {
		if _, _, err := Listen(bad); err == nil {
			t.Fatalf("Listen(%q) succeeded", bad)
		}
	}
}

// TestListenBindsBoth: the transport holds TCP and UDP at the port it
// reports.
func TestListenBindsBoth(t *testing.T) {
	tr, _, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown()
	port := tr.GetAutoBindPort()
	if port == 0 {
		t.Fatal("no port")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("tcp %s was free: the transport did not bind it", addr)
	}
	if pc, err := net.ListenPacket("udp", addr); err == nil {
		pc.Close()
		t.Fatalf("udp %s was free: the transport did not bind it", addr)
	}
}
