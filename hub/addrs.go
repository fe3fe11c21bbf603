package hub

import (
	"fmt"
	"net"
)

// metaQUIC is the gossip metadata key of a node's agent gateway address.
const metaQUIC = "quic"

// gatewayAddrs lists every hub node's agent gateway address, this one
// first. Without --advertise and bound to all interfaces, this node's is
// reached by the host name the client used to reach the API.
func (h *Hub) gatewayAddrs(requestHost string) []string {
	self := advertisedAddr(h.cfg.Advertise, h.gateway.Addr())
	if host, port, err := net.SplitHostPort(h.gateway.Addr()); err == nil && h.cfg.Advertise == "" {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && requestHost != "" {
			self = net.JoinHostPort(requestHost, port)
		}
	}
	out := []string{self}
	for _, m := range h.cluster.Members() {
		if a := m.Extra[metaQUIC]; a != "" && a != self && m.Alive {
			out = append(out, a)
		}
	}
	return out
}

// advertisedAddr turns a bound address into one other hosts can use.
func advertisedAddr(advertise, bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if advertise != "" {
		host = advertise
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// listenUDP binds the agent gateway's socket.
func listenUDP(addr string) (*net.UDPConn, error) {
	uaddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quic address %s: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", uaddr)
	if err != nil {
		return nil, fmt.Errorf("listen quic %s: %w", addr, err)
	}
	return udp, nil
}
