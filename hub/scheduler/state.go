package scheduler

// State is the read-only view of the cluster the scheduler plans against:
// one consistent snapshot (the hub adapts its state store to it). Plan
// reads Hosts and Instances once each; Check, which runs inside the FSM
// for every plan, only looks up what the plan touches.
//
// Implementations return data the scheduler must not modify and does not
// keep after the call returns.
type State interface {
	// Index is the Raft index the snapshot reflects.
	Index() uint64
	// Hosts returns every enrolled host, in any order. A State whose
	// hosts are in id order, each id once, may say so with a method
	// HostsInIDOrder() bool returning true: Plan then need not check.
	Hosts() []Host
	// Instances returns the instances that hold resources or count
	// towards their apps, in any order: at least every instance of the
	// apps being planned; what other instances hold may instead be in
	// their hosts' UsedCPU and UsedMemory. Terminal ones may be included;
	// they are ignored.
	Instances() []Instance
	// Host returns the host with the given id.
	Host(id string) (Host, bool)
	// HostInstances returns the instances placed on a host (terminal ones
	// may be included).
	HostInstances(host string) []Instance
	// InstanceExists reports whether an instance id is in use, terminal
	// or not.
	InstanceExists(id string) bool
}
