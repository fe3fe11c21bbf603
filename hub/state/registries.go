package state

import (
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Registry is a tenant's credentials for a private image registry: the
// Docker driver pulls that tenant's images from Server with them. The
// password is sealed (AES-GCM under the cluster's data key, bound to the
// tenant and server) before it reaches the Raft log: the FSM, snapshots
// and data dirs never hold it in plain text.
type Registry struct {
	Tenant string
	// Server is the registry's host[:port] as images name it
	// ("registry.example.com", "127.0.0.1:5000"), lower case.
	Server         string
	Username       string
	SealedPassword []byte
	CreatedAt      time.Time
	Meta
}

// TableRegistries holds the tenants' registry credentials.
const TableRegistries = "registries"

// Registry commands.
const (
	RegistryPutType    MessageType = 75
	RegistryDeleteType MessageType = 76
	RegistryResealType MessageType = 77
)

// RegistryPutRequest adds a tenant's credentials for a registry or
// replaces them. The tenant must exist (not found otherwise).
type RegistryPutRequest struct {
	Registry Registry
	Time     time.Time
}

// RegistryDeleteRequest removes a tenant's credentials for a registry;
// not found if absent.
type RegistryDeleteRequest struct {
	Tenant string
	Server string
}

// RegistryResealRequest replaces a registry's sealed password with the
// same password sealed under the current data key (after a key rotation).
// Conflict when the registry changed since ModifyIndex was read.
type RegistryResealRequest struct {
	Tenant         string
	Server         string
	SealedPassword []byte
	ModifyIndex    uint64
}

// Copy returns a deep copy.
func (r *Registry) Copy() *Registry {
	c := *r
	c.SealedPassword = slices.Clone(r.SealedPassword)
	return &c
}

func registrySchema() *memdb.TableSchema {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	return &memdb.TableSchema{Name: TableRegistries, Indexes: map[string]*memdb.IndexSchema{
		"id":     {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{str("Tenant"), str("Server")}}},
		"tenant": {Name: "tenant", Indexer: str("Tenant")},
		"server": {Name: "server", Indexer: str("Server")},
	}}
}

// Registry returns a tenant's credentials for a registry (nil when absent).
func (s *Snapshot) Registry(ws memdb.WatchSet, tenant, server string) (*Registry, error) {
	return first[Registry](s, ws, TableRegistries, "id", tenant, server)
}

// Registries returns every tenant's registries.
func (s *Snapshot) Registries(ws memdb.WatchSet) ([]*Registry, error) {
	return list[Registry](s, ws, TableRegistries, "id")
}

// RegistryKept tells whether any tenant keeps credentials for server.
func (s *Snapshot) RegistryKept(ws memdb.WatchSet, server string) (bool, error) {
	r, err := first[Registry](s, ws, TableRegistries, "server", server)
	return r != nil, err
}

// TenantRegistries returns a tenant's registries, sorted by server.
func (s *Snapshot) TenantRegistries(ws memdb.WatchSet, tenant string) ([]*Registry, error) {
	return list[Registry](s, ws, TableRegistries, "tenant", tenant)
}

func (w *writer) registryPut(r *RegistryPutRequest) *Error {
	reg := r.Registry.Copy()
	if reg.Tenant == "" || reg.Server == "" || reg.Username == "" || len(reg.SealedPassword) == 0 {
		return Errorf(KindInvalid, "registry credentials lack tenant, server, username or sealed password")
	}
	s := w.snap()
	if t, err := s.Tenant(nil, reg.Tenant); err != nil {
		return Errorf(KindInternal, "%v", err)
	} else if t == nil {
		return Errorf(KindNotFound, "tenant %s not found", reg.Tenant)
	}
	old, err := s.Registry(nil, reg.Tenant, reg.Server)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old != nil {
		reg.CreatedAt = old.CreatedAt
		w.meta(&reg.Meta, &old.Meta)
	} else {
		reg.CreatedAt = r.Time
		w.meta(&reg.Meta, nil)
	}
	return w.insert(TableRegistries, reg)
}

func (w *writer) registryDelete(r *RegistryDeleteRequest) *Error {
	reg, err := w.snap().Registry(nil, r.Tenant, r.Server)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if reg == nil {
		return Errorf(KindNotFound, "registry %s not found", r.Server)
	}
	return w.delete(TableRegistries, reg)
}

func (w *writer) registryReseal(r *RegistryResealRequest) *Error {
	reg, err := w.snap().Registry(nil, r.Tenant, r.Server)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if reg == nil {
		return Errorf(KindNotFound, "registry %s not found", r.Server)
	}
	if reg.ModifyIndex != r.ModifyIndex {
		return Errorf(KindConflict, "registry %s changed since it was read (index %d, now %d)", r.Server, r.ModifyIndex, reg.ModifyIndex)
	}
	if len(r.SealedPassword) == 0 {
		return Errorf(KindInvalid, "re-sealed password is empty")
	}
	n := reg.Copy()
	n.SealedPassword = slices.Clone(r.SealedPassword)
	w.meta(&n.Meta, &reg.Meta)
	return w.insert(TableRegistries, n)
}

// deleteTenantRegistries removes a deleted tenant's registry credentials.
func (w *writer) deleteTenantRegistries(tenant string) *Error {
	regs, err := w.snap().TenantRegistries(nil, tenant)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, reg := range regs {
		if e := w.delete(TableRegistries, reg); e != nil {
			return e
		}
	}
	return nil
}
