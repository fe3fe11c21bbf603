package agent

// What tests and benchmarks read of a running agent, and the fault they
// inject.

// HostID returns the agent's host id ("" before enrolment).
func (a *Agent) HostID() string { return a.id.HostID() }

// Acked returns how many heartbeats the hub has acknowledged.
func (a *Agent) Acked() uint64 { return a.acked.Load() }

// Rotations returns how many times the agent renewed its certificate.
func (a *Agent) Rotations() uint64 { return a.id.Rotations() }

// Hubs returns the hub addresses the agent knows.
func (a *Agent) Hubs() []string { return a.hubs.All() }

// GossipAddr returns where the pool gossip listens ("" when it does not).
func (a *Agent) GossipAddr() string {
	if g := a.gossip.Load(); g != nil {
		return g.Addr()
	}
	return ""
}

// LogsCaptured counts the instance output lines captured since the agent
// started (0 without a driver).
func (a *Agent) LogsCaptured() uint64 {
	if w := a.work.Load(); w != nil {
		_, captured := w.LogStats()
		return captured
	}
	return 0
}

// Hub returns the gateway address of the hub node of the current
// session ("" while not connected).
func (a *Agent) Hub() string {
	if !a.connected.Load() {
		return ""
	}
	h, _ := a.hub.Load().(string)
	return h
}

// UsageUnacked returns the requests the router counted for metering that
// the hub has not acknowledged as committed yet.
func (a *Agent) UsageUnacked() uint64 { return a.routes.UsageUnacked() }

// RouterAddrs returns the router's bound HTTP and HTTPS addresses ("" when
// it serves none).
func (a *Agent) RouterAddrs() (string, string) { return a.routes.Addrs() }

// RouterVersion returns the version of the route table the router serves
// (0 before the first, or without a router).
func (a *Agent) RouterVersion() uint64 { return a.routes.Version() }

// CutHub cuts this agent off from every hub node (true) or heals the cut,
// while its pool gossip goes on: for tests of partitions, as a network
// namespace would, in one process.
func (a *Agent) CutHub(cut bool) { a.cut.Store(cut) }
