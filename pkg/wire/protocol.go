package wire

import "fmt"

// The protocol versions this build speaks, both ends included. An agent
// offers its range in Hello; the hub picks the highest version in both
// ranges and names it in Welcome. Bump ProtocolMax only for changes an
// older peer cannot ignore; new fields do not need it.
//
// Protocol 2 carries instance states, desired states and failover modes as
// enums where protocol 1 carried strings, whose field numbers are now
// reserved. This build does not speak protocol 1: hub and agent ship in one
// binary, so agents are upgraded with their hub, and a hub that no longer
// writes the string fields would hand a protocol 1 agent assignments it
// misreads (a fenced instance taken for an unfenced one).
//
// Protocol 3 carries apps' secrets and registry credentials in an
// instance's assignment (secret_env, registry_auth). A protocol 2 agent
// would keep them, as fields it does not know, in the assignments it
// saves to disk: the hub sends them only to agents of protocol 3 and up,
// which keep them in memory only.
//
// Protocol 4 lets an agent send RateSignal (a burst seen within the
// current second); a protocol 3 hub would take it for an unknown message
// and close the stream, so agents send it only on protocol 4 sessions.
//
// Protocol 5 lets the hub send a route table as a delta over the one the
// agent serves (RouteTable.base_version): a protocol 4 agent would take
// it for a whole table and drop every app it does not name.
//
// Protocol 6 lets the hub send a route table too large for one frame in
// parts (RouteTable.more): a protocol 5 agent would serve each part as
// the whole table. Such a table is not sent to older agents, which keep
// the one they hold.
const (
	ProtocolMin = 2
	ProtocolMax = 6

	// ProtocolSecrets is the first protocol whose agents are given
	// secrets and registry credentials.
	ProtocolSecrets = 3

	// ProtocolRateSignal is the first protocol whose hubs take
	// RateSignal.
	ProtocolRateSignal = 4

	// ProtocolRouteDeltas is the first protocol whose agents apply route
	// table deltas.
	ProtocolRouteDeltas = 5

	// ProtocolRouteParts is the first protocol whose agents join a route
	// table sent in parts.
	ProtocolRouteParts = 6
)

// Range is a span of protocol versions, both ends included.
type Range struct{ Min, Max uint32 }

// Supported is the range this build speaks.
func Supported() Range { return Range{Min: ProtocolMin, Max: ProtocolMax} }

// String formats the range as "2..3".
func (r Range) String() string { return fmt.Sprintf("%d..%d", r.Min, r.Max) }

// Valid reports whether the range holds a version.
func (r Range) Valid() bool { return r.Min > 0 && r.Min <= r.Max }

// Contains reports whether v is in the range.
func (r Range) Contains(v uint32) bool { return r.Min <= v && v <= r.Max }

// Offer writes the range an agent speaks into its Hello.
func (h *Hello) Offer(r Range) { h.ProtocolMin, h.ProtocolVersion = r.Min, r.Max }

// Offered returns the range a Hello offers. A Hello without protocol_min
// comes from a protocol 1 agent, which knew only protocol_version.
func (h *Hello) Offered() Range {
	if h.GetProtocolMin() == 0 {
		return Range{Min: h.GetProtocolVersion(), Max: h.GetProtocolVersion()}
	}
	return Range{Min: h.GetProtocolMin(), Max: h.GetProtocolVersion()}
}

// Negotiate returns the highest version that both the hub's and the
// agent's ranges hold, with CodeOK. When they share none the code says
// which side must be upgraded: CodeAgentTooOld when the agent's range ends
// below the hub's, CodeHubTooOld when it starts above it; an empty range
// is CodeProtocol.
func Negotiate(hub, agent Range) (uint32, Code) {
	switch {
	case !hub.Valid() || !agent.Valid():
		return 0, CodeProtocol
	case agent.Max < hub.Min:
		return 0, CodeAgentTooOld
	case agent.Min > hub.Max:
		return 0, CodeHubTooOld
	}
	return min(hub.Max, agent.Max), CodeOK
}
