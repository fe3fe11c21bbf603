// Package gossipnet binds the TCP and UDP listeners of a memberlist
// transport, for the hub cluster's gossip and for the agents' pool
// gossip alike.
package gossipnet

import (
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/memberlist"
)

// portTries is how many ports Listen tries for an address with port 0.
// The transport takes a free TCP port from the kernel and then binds UDP
// on the same number, which another process may hold: a test suite that
// runs many QUIC endpoints met that about once per run.
const portTries = 10

// Listen binds addr ("host:port") for memberlist, TCP and UDP on the
// same port, and returns the transport and the host it is bound to
// (memberlist's BindAddr; the port is the transport's GetAutoBindPort).
// With port 0 it tries other free ports when the UDP side of one is
// taken.
func Listen(addr string) (*memberlist.NetTransport, string, error) {
	return listen(addr, memberlist.NewNetTransport)
}

func listen(addr string, newTransport func(*memberlist.NetTransportConfig) (*memberlist.NetTransport, error)) (*memberlist.NetTransport, string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("gossip address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, "", fmt.Errorf("gossip address %q: bad port %q", addr, portStr)
	}
	tries := 1
	if port == 0 {
		tries = portTries
	}
	for i := 0; ; i++ {
		tr, err := newTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port})
		if err == nil {
			return tr, host, nil
		}
		if i+1 >= tries {
			return nil, "", fmt.Errorf("gossip listen %s: %w", addr, err)
		}
	}
}
