package apitypes

// Status is the answer of GET /v1/status. It needs no token.
type Status struct {
	Node       string `json:"node"`
	Datacenter string `json:"datacenter"`
	// State is "leader", "follower" or "candidate" ("shutdown" while stopping).
	State  string `json:"state"`
	Leader string `json:"leader"` // name of the leader node, "" when there is none
	Peers  []Peer `json:"peers"`
	Index  uint64 `json:"index"` // last Raft index applied on this node
	// Bootstrapped reports whether the ACL bootstrap token has been handed out.
	Bootstrapped bool `json:"bootstrapped"`
	// Version is the version of this hub node's binary.
	Version string `json:"version"`
}

// Peer is one voter of the hub's Raft configuration.
type Peer struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}
