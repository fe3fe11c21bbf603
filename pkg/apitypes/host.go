package apitypes

import "time"

// JoinTokenRequest is the body of POST /v1/join-tokens.
type JoinTokenRequest struct {
	Pool string   `json:"pool"`
	TTL  Duration `json:"ttl,omitempty"`  // 0: the default, 1h
	Uses int      `json:"uses,omitempty"` // 0: unlimited
}

// DefaultJoinTokenTTL is a join token's lifetime when the request names none.
const DefaultJoinTokenTTL = time.Hour

// Validate checks the request and fills in the default TTL.
func (r *JoinTokenRequest) Validate() error {
	if err := CheckName("pool", r.Pool); err != nil {
		return err
	}
	if r.TTL < 0 || r.TTL.D() > 365*24*time.Hour {
		return FieldError("ttl", "ttl must be between 1s and 8760h")
	}
	if r.TTL == 0 {
		r.TTL = Duration(DefaultJoinTokenTTL)
	}
	if r.Uses < 0 {
		return FieldError("uses", "uses must not be negative (0 means unlimited)")
	}
	return nil
}

// JoinToken describes a join token. Token (the secret string an agent
// needs) is set only in the answer that created it.
type JoinToken struct {
	ID        string    `json:"id"`
	Token     string    `json:"token,omitempty"`
	Pool      string    `json:"pool"`
	ExpiresAt time.Time `json:"expires_at"`
	Uses      int       `json:"uses"`
	Used      int       `json:"used"`
	CreatedAt time.Time `json:"created_at"`
}

// Host is an enrolled host, as GET /v1/hosts returns it.
type Host struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Pool         string            `json:"pool"`
	Datacenter   string            `json:"datacenter"`
	State        string            `json:"state"`
	Disconnected bool              `json:"disconnected"`
	Hostname     string            `json:"hostname,omitempty"`
	OS           string            `json:"os,omitempty"`
	Arch         string            `json:"arch,omitempty"`
	CPUs         int               `json:"cpus,omitempty"`
	MemoryBytes  uint64            `json:"memory_bytes,omitempty"`
	DiskBytes    uint64            `json:"disk_bytes,omitempty"`
	Addresses    []string          `json:"addresses,omitempty"`
	Drivers      []string          `json:"drivers,omitempty"`
	Provider     string            `json:"provider,omitempty"`
	Region       string            `json:"region,omitempty"`
	Zone         string            `json:"zone,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	GossipAddr   string            `json:"gossip_addr,omitempty"`
	Advertise    string            `json:"advertise,omitempty"`
	// Kind is "host", or "cluster" for a Kubernetes cluster enrolled as
	// one host (the kubernetes driver).
	Kind string `json:"kind"`
	// CPUMillis is the CPU in millicores (CPUs are whole cores): exact
	// for a cluster, whose allocatable need not be whole cores.
	CPUMillis int `json:"cpu_millis,omitempty"`
	// AgentVersion is the version of the host's agent, as its inventory
	// last said ("" until it has reported one).
	AgentVersion string `json:"agent_version"`
	// Machine and ProviderID name the provisioned machine the host runs
	// on ("" for hosts enrolled by hand).
	Machine    string    `json:"machine,omitempty"`
	ProviderID string    `json:"provider_id,omitempty"`
	EnrolledAt time.Time `json:"enrolled_at"`
	// AllocCPU (millicores) and AllocMemory (MB) are what the live
	// instances placed on the host hold; Instances counts them.
	AllocCPU    int `json:"alloc_cpu"`
	AllocMemory int `json:"alloc_memory"`
	Instances   int `json:"instances"`
	// The connection, as the leader knows it: only GET /v1/hosts/{id}
	// fills these in.
	LastHeartbeat *time.Time `json:"last_heartbeat,omitempty"`
	HubNode       string     `json:"hub_node,omitempty"`
	CertNotAfter  *time.Time `json:"cert_not_after,omitempty"`
	CreateIndex   uint64     `json:"create_index"`
	ModifyIndex   uint64     `json:"modify_index"`
}

// Event is one entry of GET /v1/events.
type Event struct {
	Index   uint64    `json:"index"`
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Subject string    `json:"subject,omitempty"`
	Pool    string    `json:"pool,omitempty"`
	Message string    `json:"message"`
}
