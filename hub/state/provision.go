package state

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
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

// Tables of provider accounts and machines.
const (
	TableProviders = "providers"
	TableMachines  = "machines"
)

// Copy returns a deep copy.
func (a *ProviderAccount) Copy() *ProviderAccount {
	c := *a
	c.SealedCredentials = slices.Clone(a.SealedCredentials)
	return &c
}

// Copy returns a copy.
func (m *Machine) Copy() *Machine { c := *m; return &c }

// machineMoves lists, per state, the states a machine may move to. A
// machine never goes back towards creating: once draining or deleting it
// only goes on to deletion (or fails).
var machineMoves = map[string][]string{
	MachineCreating: {MachineBooting, MachineReady, MachineFailed, MachineDraining, MachineDeleting},
	MachineBooting:  {MachineReady, MachineFailed, MachineDraining, MachineDeleting},
	MachineReady:    {MachineDraining, MachineDeleting, MachineFailed},
	MachineDraining: {MachineDeleting, MachineFailed},
	MachineDeleting: {MachineFailed},
	MachineFailed:   {MachineDraining, MachineDeleting},
}

// MachineCanMove reports whether a machine may go from one state to
// another (staying in a state is always allowed).
func MachineCanMove(from, to string) bool {
	return from == to || slices.Contains(machineMoves[from], to)
}

func providerSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: TableProviders, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
	}}
}

func machineSchema() *memdb.TableSchema {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	return &memdb.TableSchema{Name: TableMachines, Indexes: map[string]*memdb.IndexSchema{
		"id":          {Name: "id", Unique: true, Indexer: str("ID")},
		"pool":        {Name: "pool", Indexer: str("Pool")},
		"provider":    {Name: "provider", Indexer: str("Provider")},
		"host":        {Name: "host", AllowMissing: true, Indexer: str("Host")},
		"provider_id": {Name: "provider_id", AllowMissing: true, Indexer: str("ProviderID")},
	}}
}

// ProviderAccount returns the named provider account.
func (s *Snapshot) ProviderAccount(ws memdb.WatchSet, name string) (*ProviderAccount, error) {
	return first[ProviderAccount](s, ws, TableProviders, "id", name)
}

// ProviderAccounts returns every provider account, sorted by name.
func (s *Snapshot) ProviderAccounts(ws memdb.WatchSet) ([]*ProviderAccount, error) {
	return list[ProviderAccount](s, ws, TableProviders, "id")
}

// Machine returns a machine.
func (s *Snapshot) Machine(ws memdb.WatchSet, id string) (*Machine, error) {
	return first[Machine](s, ws, TableMachines, "id", id)
}

// Machines returns the machines of pool ("" for every pool), sorted by ID.
func (s *Snapshot) Machines(ws memdb.WatchSet, pool string) ([]*Machine, error) {
	if pool == "" {
		return list[Machine](s, ws, TableMachines, "id")
	}
	return list[Machine](s, ws, TableMachines, "pool", pool)
}

// ProviderMachines returns the machines created in a provider account.
func (s *Snapshot) ProviderMachines(ws memdb.WatchSet, provider string) ([]*Machine, error) {
	return list[Machine](s, ws, TableMachines, "provider", provider)
}

// MachineByHost returns the machine a host runs on.
func (s *Snapshot) MachineByHost(ws memdb.WatchSet, host string) (*Machine, error) {
	if host == "" {
		return nil, nil
	}
	return first[Machine](s, ws, TableMachines, "host", host)
}

// MachineByProviderID returns the machine the cloud knows by that id.
func (s *Snapshot) MachineByProviderID(ws memdb.WatchSet, providerID string) (*Machine, error) {
	if providerID == "" {
		return nil, nil
	}
	return first[Machine](s, ws, TableMachines, "provider_id", providerID)
}

// ProvisionedPools returns the pools that keep their own hosts, sorted by
// name.
func (s *Snapshot) ProvisionedPools(ws memdb.WatchSet) ([]*Pool, error) {
	all, err := s.Pools(ws)
	var out []*Pool
	for _, p := range all {
		if p.Provision != nil {
			out = append(out, p)
		}
	}
	return out, err
}

// PoolsUsingProvider returns the pools whose provision names an account.
func (s *Snapshot) PoolsUsingProvider(ws memdb.WatchSet, provider string) ([]*Pool, error) {
	all, err := s.ProvisionedPools(ws)
	var out []*Pool
	for _, p := range all {
		if p.Provision.Provider == provider {
			out = append(out, p)
		}
	}
	return out, err
}

// The provisioning loop reads through these (each on a fresh snapshot).

// ProviderAccount returns the named provider account (nil when absent).
func (s *Store) ProviderAccount(name string) (*ProviderAccount, error) {
	return s.Snapshot().ProviderAccount(nil, name)
}

// Machine returns a machine (nil when absent).
func (s *Store) Machine(id string) (*Machine, error) { return s.Snapshot().Machine(nil, id) }

// Machines returns the machines of pool ("" for every pool).
func (s *Store) Machines(pool string) ([]*Machine, error) { return s.Snapshot().Machines(nil, pool) }

// ProvisionedPools returns the pools that keep their own hosts.
func (s *Store) ProvisionedPools() ([]*Pool, error) { return s.Snapshot().ProvisionedPools(nil) }
