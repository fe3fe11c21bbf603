package state

import "time"

// AgentCA is the CA that signs agent certificates. The first leader creates
// it; it lives in Raft so that every hub node can issue certificates.
type AgentCA struct {
	ID          string // always "agent-ca"
	CertPEM     []byte
	KeyPEM      []byte
	Fingerprint string
	CreatedAt   time.Time
	Meta
}

// JoinToken lets agents enroll into one pool. Only the secret's hash is
// stored.
type JoinToken struct {
	ID         string
	Pool       string
	SecretHash string
	ExpiresAt  time.Time // zero: never
	MaxUses    int       // 0: unlimited
	Used       int
	// Machine, when set, binds the token to one machine of a provisioned
	// pool: the host that enrolls with it is that machine's host.
	Machine   string
	CreatedAt time.Time
	Meta
}

// Copy returns a copy.
func (t *JoinToken) Copy() *JoinToken { c := *t; return &c }

// Host states.
const (
	HostReady    = "ready"
	HostSuspect  = "suspect"
	HostDown     = "down"
	HostDraining = "draining"
	HostDrained  = "drained"
)

// Host is an enrolled agent's machine (or cluster).
type Host struct {
	ID           string
	Name         string
	Pool         string
	Datacenter   string
	State        string
	Disconnected bool // the hub lost it but its pool peers still see it
	// AssignIndex is the Raft index of the last change to the set of
	// instances assigned to the host: its agents' assignment version.
	AssignIndex uint64
	// AllocCPU (millicores) and AllocMemory (MB) are what the host's live
	// instances hold (Instance.Live), kept by the FSM as instances change.
	AllocCPU    int
	AllocMemory int
	Inventory   Inventory
	// Machine is the provisioned machine this host runs on ("" when the
	// host was enrolled by hand).
	Machine    string
	EnrolledAt time.Time
	Meta
}

// Inventory is what an agent reports about its host.
type Inventory struct {
	Hostname    string
	OS          string
	Arch        string
	CPUs        int
	MemoryBytes uint64
	DiskBytes   uint64
	Addresses   []string
	Drivers     []string
	Provider    string
	Region      string
	Zone        string
	Labels      map[string]string
	GossipAddr  string // the agent's pool gossip address; "" when it runs none
	Advertise   string // the address other hosts use to reach its instances
	// AgentVersion is the version of the agent's binary.
	AgentVersion string
	// Kind is what the agent enrolled: "host" ("" for agents that
	// predate kinds) or "cluster" (a Kubernetes cluster).
	Kind string `json:",omitempty"`
	// CPUMillis is the CPU in millicores when the agent reports it (a
	// cluster's allocatable need not be whole cores); 0: CPUs * 1000.
	CPUMillis int `json:",omitempty"`
}

// Inventory kinds.
const (
	KindHost    = "host"
	KindCluster = "cluster"
)

// CPU returns the host's CPU in millicores: CPUMillis when reported,
// else whole CPUs.
func (i Inventory) CPU() int {
	if i.CPUMillis > 0 {
		return i.CPUMillis
	}
	return i.CPUs * 1000
}

// KindOrHost returns Kind, KindHost when the agent reported none.
func (i Inventory) KindOrHost() string {
	if i.Kind == "" {
		return KindHost
	}
	return i.Kind
}

// Copy returns a deep copy.
func (h *Host) Copy() *Host {
	c := *h
	c.Inventory.Addresses = append([]string(nil), h.Inventory.Addresses...)
	c.Inventory.Drivers = append([]string(nil), h.Inventory.Drivers...)
	if h.Inventory.Labels != nil {
		c.Inventory.Labels = make(map[string]string, len(h.Inventory.Labels))
		for k, v := range h.Inventory.Labels {
			c.Inventory.Labels[k] = v
		}
	}
	return &c
}

// Event is something that happened, for `wharf events` and the console.
// Its ID is the Raft index that recorded it (and a sequence within it).
type Event struct {
	Index   uint64
	Seq     int
	Time    time.Time
	Type    string // e.g. "host.enrolled", "host.state", "join-token.refused"
	Subject string // e.g. a host id
	Pool    string
	Message string
}
