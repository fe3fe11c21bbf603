package state

import (
	"encoding/json"
	"time"
)

// ProviderAccount is a cloud (or SSH) account provisioned pools create
// machines in. Credentials are sealed (AES-GCM under the cluster's data
// key) before they reach the Raft log: the FSM, snapshots and data dirs
// never hold them in plain text.
type ProviderAccount struct {
	Name     string
	Type     string // aws, aliyun, vsphere, openstack, ssh
	Region   string
	Endpoint string
	Insecure bool
	// SealedCredentials is the sealed JSON of the account's credentials.
	SealedCredentials []byte
	CreatedAt         time.Time
	Meta
}

// Provision is how a pool keeps its own hosts: on which account, from
// which template, how many.
type Provision struct {
	Provider string // a ProviderAccount's name
	// Template is the provider type's template, validated at write time
	// (JSON object; see package providers).
	Template       json.RawMessage
	MinHosts       int
	MaxHosts       int
	ScaleDownAfter Duration
	BootTimeout    Duration
}

// Machine states: written to Raft before the cloud call, then moved on as
// the cloud and the agent answer.
const (
	MachineCreating = "creating" // in Raft, the cloud call not yet known to have succeeded
	MachineBooting  = "booting"  // the cloud has it; its agent has not enrolled
	MachineReady    = "ready"    // its host enrolled
	MachineDraining = "draining" // its host is being drained before deletion
	MachineDeleting = "deleting" // the cloud delete is under way
	MachineFailed   = "failed"   // the cloud refused, or it did not enroll in time; Error says why
)

// Machine is one host Wharf creates (or installs over SSH) for a
// provisioned pool.
type Machine struct {
	ID         string // also the cloud's idempotency token
	Pool       string
	Provider   string // the account's name
	ProviderID string // the cloud's id once known
	State      string
	Host       string // the host that enrolled with the machine's join token
	JoinToken  string // the join token's id, bound to this machine
	Error      string // the cloud's (or the boot's) last error, verbatim
	CreatedAt  time.Time
	// StateSince is when State last changed (boot and idle timers).
	StateSince time.Time
	Meta
}
