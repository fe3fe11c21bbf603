// Package netlab builds a small, throw-away multi-host network on this
// machine for e2e tests: real wharf processes (hub nodes, agents) run as
// separate "hosts", each in its own Linux network namespace, grouped in
// "datacenters" that a test can partition, isolate and heal.
//
// # Topology
//
// A lab owns one /16 (by default the first free one of 10.231.0.0/16 …
// 10.250.0.0/16, so two labs can live side by side) and gives datacenter
// number i (0-based, in AddDC order) the /24 10.231.<i+1>.0/24 (with the
// lab's second octet). Options.Subnet picks the /16 instead. Every
// datacenter is a Linux bridge in the root namespace that holds the gateway
// address .1; every host is a network namespace joined to its datacenter's
// bridge by a veth pair, with address .2, .3, … and a default route via .1.
// The root namespace routes between the bridges (net.ipv4.ip_forward=1):
// hosts of one datacenter talk over their bridge, hosts of different
// datacenters talk through the root namespace, and the test process (root
// namespace) reaches every host directly. Two datacenters of two hosts:
//
//	         test process (root netns, ip_forward=1, iptables)
//	    10.231.1.1 |                           | 10.231.2.1
//	 +-------------+-----+             +-------+-----------+
//	 |  bridge wnb<id>d0 |             |  bridge wnb<id>d1 |
//	 +---+-----------+---+             +---+-----------+---+
//	     | veth      | veth                | veth      | veth
//	+----+----+ +----+----+           +----+----+ +----+----+
//	| netns a1| | netns a2|           | netns b1| | netns b2|
//	| .1.2/24 | | .1.3/24 |           | .2.2/24 | | .2.3/24 |
//	+---------+ +---------+           +---------+ +---------+
//	     datacenter "a"                    datacenter "b"
//
// Traffic leaving a lab bridge for anything but another bridge of the same
// lab is dropped, so a host can never send packets off this machine.
//
// # Names, ownership and sweeping
//
// Every object carries the lab's random 6-hex-digit id: network namespaces
// are wnl<id>-<host>, bridges wnb<id>d<n>, root-side veths wnv<id>h<n> (all
// interface names fit the kernel's 15 characters), and every iptables rule
// carries the comment wharf-netlab:<id>:<pid>:<tag>. A lab writes
// /run/wharf-netlab/<id>.pid (owner PID and its start time) before it creates
// anything and removes it last. New sweeps the objects of every lab whose
// state file is missing or whose owner process is gone (killing the
// processes left in such a lab's namespaces); a live lab is never touched.
//
// # Firewall
//
// A dockerd sets the FORWARD policy to DROP. The lab therefore inserts its
// rules at the top of DOCKER-USER when that chain exists, else at the top of
// FORWARD: one ACCEPT for traffic between its bridges, then DROPs for
// anything else entering or leaving them. Cut(dc) inserts DROP rules for
// traffic between that datacenter's bridge and any other interface above
// those ACCEPTs; since they come before any conntrack ESTABLISHED accept,
// established TCP and UDP (QUIC) flows stop too. Isolate(dc) additionally
// drops INPUT from the bridge in the root namespace and, inside each of the
// datacenter's hosts, INPUT from the gateway or from outside the /24, so
// even the test process loses the datacenter, silently both ways (nothing
// is dropped in OUTPUT, which would give the sender EPERM instead of a
// timeout). Heal(dc) removes both. CutHost takes a host's veth down
// (the cable is pulled: nobody, not even the test process or its own
// datacenter, reaches it) and HealHost brings it back up.
//
// # Processes
//
// Host.Command returns an exec.Cmd that runs `ip netns exec <ns> …`, which
// execs, so the PID is the program itself. Host.Start runs it in its own
// process group with output appended to Host.LogPath, and Kill, Stop and
// Continue signal those groups. Host.Dial, Listen, ListenPacket and Do run
// code of the test process itself inside a host's namespace (setns on a
// locked OS thread), e.g. for a client that lives in a host.
//
// Proxy adds latency, retransmission-like loss and stalls to TCP in user
// space, since this kernel has no netem.
//
// A test calls Require first: it skips when the machine cannot run a lab
// (not root, no ip, no netns), or fails instead when WHARF_REQUIRE_NETNS=1.
package netlab
