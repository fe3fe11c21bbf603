package state

import (
	"fmt"
	"slices"
	"time"
)

// ProviderCreateRequest creates a provider account; conflict if the name is
// taken. Account.SealedCredentials is sealed by the API node: the log never
// holds the credentials in plain text.
type ProviderCreateRequest struct {
	Account ProviderAccount
	Time    time.Time
}

// ProviderUpdateRequest replaces a provider account (credentials included);
// not found if absent, conflict when it changes the type of an account a
// pool or a machine uses.
type ProviderUpdateRequest struct {
	Account ProviderAccount
	Time    time.Time
}

// ProviderDeleteRequest deletes a provider account; not found if absent,
// conflict while a pool's provision or a machine names it.
type ProviderDeleteRequest struct {
	Name string
}

// ProviderResealRequest replaces an account's sealed credentials with the
// same credentials sealed under the current data key (after a key
// rotation). ModifyIndex is the account's when it was read: conflict when
// the account changed meanwhile (the leader reads it again).
type ProviderResealRequest struct {
	Name              string
	SealedCredentials []byte
	ModifyIndex       uint64
}

// PoolUpdateRequest replaces a pool (the whole pool, as PUT takes it); not
// found if absent. A pool that still has machines keeps its provision
// (conflict).
type PoolUpdateRequest struct {
	Pool Pool
	Time time.Time
}

// MachineCreateRequest records a machine of a provisioned pool before the
// cloud call, with its single-use join token in the same entry, so that
// neither exists without the other. The pool must be provisioned and the
// account exist (refused otherwise); Machine.Provider "" means the pool's
// account. Machine.State "" means creating.
type MachineCreateRequest struct {
	Machine Machine
	Token   JoinToken
	Time    time.Time
}

// MachineUpdateRequest changes a machine: its state (checked:
// MachineCanMove), and the fields that are non-nil. With CAS set, the
// machine's ModifyIndex must equal it (conflict otherwise).
type MachineUpdateRequest struct {
	ID         string
	State      string // "" keeps the state
	ProviderID *string
	Error      *string
	Host       *string
	CAS        *uint64
	Time       time.Time
}

// MachineDeleteRequest forgets a machine (its cloud machine is gone), with
// its join token and, when one enrolled, its host.
type MachineDeleteRequest struct {
	ID   string
	Time time.Time
}

func (w *writer) providerCreate(r *ProviderCreateRequest) *Error {
	a := r.Account.Copy()
	if a.Name == "" || a.Type == "" {
		return Errorf(KindInvalid, "a provider account needs a name and a type")
	}
	if old, _ := w.snap().ProviderAccount(nil, a.Name); old != nil {
		return &Error{Kind: KindConflict, Field: "name", Msg: "provider " + a.Name + " already exists"}
	}
	a.CreatedAt = r.Time
	w.meta(&a.Meta, nil)
	return w.insert(TableProviders, a)
}

func (w *writer) providerUpdate(r *ProviderUpdateRequest) *Error {
	s := w.snap()
	old, e := w.provider(r.Account.Name)
	if e != nil {
		return e
	}
	if r.Account.Type != old.Type {
		if pools, _ := s.PoolsUsingProvider(nil, old.Name); len(pools) > 0 {
			return &Error{Kind: KindConflict, Field: "type", Msg: fmt.Sprintf("provider %s is %s and pool %s uses it: its type cannot change", old.Name, old.Type, pools[0].Name)}
		}
		if ms, _ := s.ProviderMachines(nil, old.Name); len(ms) > 0 {
			return &Error{Kind: KindConflict, Field: "type", Msg: fmt.Sprintf("provider %s still has %d machines: its type cannot change", old.Name, len(ms))}
		}
	}
	a := r.Account.Copy()
	a.CreatedAt = old.CreatedAt
	w.meta(&a.Meta, &old.Meta)
	return w.insert(TableProviders, a)
}

func (w *writer) providerDelete(r *ProviderDeleteRequest) *Error {
	s := w.snap()
	a, e := w.provider(r.Name)
	if e != nil {
		return e
	}
	if pools, _ := s.PoolsUsingProvider(nil, a.Name); len(pools) > 0 {
		return Errorf(KindConflict, "provider %s is used by pool %s", a.Name, pools[0].Name)
	}
	if ms, _ := s.ProviderMachines(nil, a.Name); len(ms) > 0 {
		return Errorf(KindConflict, "provider %s still has %d machines", a.Name, len(ms))
	}
	return w.delete(TableProviders, a)
}

func (w *writer) providerReseal(r *ProviderResealRequest) *Error {
	a, e := w.provider(r.Name)
	if e != nil {
		return e
	}
	if a.ModifyIndex != r.ModifyIndex {
		return Errorf(KindConflict, "provider %s changed since it was read (index %d, now %d)", a.Name, r.ModifyIndex, a.ModifyIndex)
	}
	if len(r.SealedCredentials) == 0 {
		return Errorf(KindInvalid, "re-sealed credentials are empty")
	}
	n := a.Copy()
	n.SealedCredentials = slices.Clone(r.SealedCredentials)
	w.meta(&n.Meta, &a.Meta)
	return w.insert(TableProviders, n)
}

// checkProvision checks a pool's provision against the state: its account
// exists, and the pool's provider, when given, is the account's type.
func (w *writer) checkProvision(p *Pool) *Error {
	pr := p.Provision
	if pr == nil {
		return nil
	}
	switch {
	case pr.MaxHosts < 1:
		return &Error{Kind: KindInvalid, Field: "provision.max_hosts", Msg: "provision.max_hosts must be at least 1"}
	case pr.MinHosts < 0 || pr.MinHosts > pr.MaxHosts:
		return &Error{Kind: KindInvalid, Field: "provision.min_hosts", Msg: fmt.Sprintf("provision.min_hosts must be between 0 and max_hosts (%d)", pr.MaxHosts)}
	}
	a, err := w.snap().ProviderAccount(nil, pr.Provider)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if a == nil {
		return &Error{Kind: KindRefused, Field: "provision.provider", Msg: fmt.Sprintf("provider %s does not exist", pr.Provider)}
	}
	if p.Provider != "" && p.Provider != a.Type {
		return &Error{Kind: KindRefused, Field: "provider", Msg: fmt.Sprintf("pool provider %s differs from the type of provider account %s (%s)", p.Provider, a.Name, a.Type)}
	}
	return nil
}

func (w *writer) poolUpdate(r *PoolUpdateRequest) *Error {
	s := w.snap()
	old, err := s.Pool(nil, r.Pool.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old == nil {
		return Errorf(KindNotFound, "pool %s not found", r.Pool.Name)
	}
	p := r.Pool.Copy()
	if p.Provision == nil && old.Provision != nil {
		if ms, _ := s.Machines(nil, p.Name); len(ms) > 0 {
			return &Error{Kind: KindConflict, Field: "provision", Msg: fmt.Sprintf("pool %s still has %d machines: it keeps its provision until they are gone (set max_hosts and min_hosts to shrink it)", p.Name, len(ms))}
		}
	}
	if e := w.checkProvision(p); e != nil {
		return e
	}
	p.CreatedAt = old.CreatedAt
	w.meta(&p.Meta, &old.Meta)
	return w.insert(TablePools, p)
}

func (w *writer) machineCreate(r *MachineCreateRequest) *Error {
	s := w.snap()
	m, t := r.Machine.Copy(), r.Token.Copy()
	if m.ID == "" || t.ID == "" || t.SecretHash == "" {
		return Errorf(KindInvalid, "a machine needs an id and a join token with an id and a secret hash")
	}
	switch m.State {
	case "":
		m.State = MachineCreating
	case MachineCreating, MachineBooting:
	default:
		return &Error{Kind: KindInvalid, Field: "state", Msg: fmt.Sprintf("a new machine is creating or booting, not %q", m.State)}
	}
	pool, _ := s.Pool(nil, m.Pool)
	if pool == nil || pool.Provision == nil {
		return &Error{Kind: KindRefused, Field: "pool", Msg: fmt.Sprintf("pool %s does not exist or is not provisioned", m.Pool)}
	}
	if m.Provider == "" {
		m.Provider = pool.Provision.Provider
	}
	if a, _ := s.ProviderAccount(nil, m.Provider); a == nil {
		return &Error{Kind: KindRefused, Field: "provider", Msg: fmt.Sprintf("provider %s does not exist", m.Provider)}
	}
	if ca, _ := s.AgentCA(nil); ca == nil {
		return Errorf(KindUnavailable, "the agent CA does not exist yet; retry")
	}
	if old, _ := s.Machine(nil, m.ID); old != nil {
		return Errorf(KindConflict, "machine id %s is taken", m.ID)
	}
	if old, _ := s.JoinToken(nil, t.ID); old != nil {
		return Errorf(KindConflict, "join token id %s is taken", t.ID)
	}
	if m.ProviderID != "" {
		if old, _ := s.MachineByProviderID(nil, m.ProviderID); old != nil {
			return Errorf(KindConflict, "provider id %s is machine %s's", m.ProviderID, old.ID)
		}
	}
	t.Pool, t.Machine, t.MaxUses, t.Used, t.CreatedAt = m.Pool, m.ID, 1, 0, r.Time
	w.meta(&t.Meta, nil)
	if e := w.insert(TableJoinTokens, t); e != nil {
		return e
	}
	m.JoinToken, m.Host, m.CreatedAt, m.StateSince = t.ID, "", r.Time, r.Time
	w.meta(&m.Meta, nil)
	if e := w.insert(TableMachines, m); e != nil {
		return e
	}
	return w.event(Event{Time: r.Time, Type: "machine.created", Subject: m.ID, Pool: m.Pool, Message: fmt.Sprintf("machine %s (%s) created for pool %s", m.ID, m.Provider, m.Pool)})
}

func (w *writer) machineUpdate(r *MachineUpdateRequest) *Error {
	m, e := w.machine(r.ID)
	if e != nil {
		return e
	}
	if r.CAS != nil && *r.CAS != m.ModifyIndex {
		return Errorf(KindConflict, "machine %s changed since index %d (now %d)", m.ID, *r.CAS, m.ModifyIndex)
	}
	n := m.Copy()
	if r.State != "" {
		if _, known := machineMoves[r.State]; !known {
			return &Error{Kind: KindInvalid, Field: "state", Msg: fmt.Sprintf("unknown machine state %q", r.State)}
		}
		if !MachineCanMove(m.State, r.State) {
			return &Error{Kind: KindConflict, Field: "state", Msg: fmt.Sprintf("machine %s cannot go from %s to %s", m.ID, m.State, r.State)}
		}
		if r.State != m.State {
			n.State, n.StateSince = r.State, r.Time
		}
	}
	if r.ProviderID != nil && *r.ProviderID != m.ProviderID {
		if *r.ProviderID != "" {
			if old, _ := w.snap().MachineByProviderID(nil, *r.ProviderID); old != nil && old.ID != m.ID {
				return Errorf(KindConflict, "provider id %s is machine %s's", *r.ProviderID, old.ID)
			}
		}
		n.ProviderID = *r.ProviderID
	}
	if r.Error != nil {
		n.Error = *r.Error
	}
	if r.Host != nil && *r.Host != m.Host {
		if *r.Host != "" {
			if h, _ := w.snap().Host(nil, *r.Host); h == nil {
				return &Error{Kind: KindRefused, Field: "host", Msg: fmt.Sprintf("host %s does not exist", *r.Host)}
			}
			if old, _ := w.snap().MachineByHost(nil, *r.Host); old != nil && old.ID != m.ID {
				return Errorf(KindConflict, "host %s is machine %s's", *r.Host, old.ID)
			}
		}
		n.Host = *r.Host
	}
	w.meta(&n.Meta, &m.Meta)
	if e := w.insert(TableMachines, n); e != nil {
		return e
	}
	if n.State == m.State {
		return nil
	}
	msg := fmt.Sprintf("machine %s: %s -> %s", m.ID, m.State, n.State)
	if n.Error != "" && n.State == MachineFailed {
		msg += ": " + n.Error
	}
	return w.event(Event{Time: r.Time, Type: "machine.state", Subject: m.ID, Pool: m.Pool, Message: msg})
}

func (w *writer) machineDelete(r *MachineDeleteRequest) *Error {
	s := w.snap()
	m, e := w.machine(r.ID)
	if e != nil {
		return e
	}
	if e := w.delete(TableMachines, m); e != nil {
		return e
	}
	if t, _ := s.JoinToken(nil, m.JoinToken); t != nil {
		if e := w.delete(TableJoinTokens, t); e != nil {
			return e
		}
	}
	if m.Host != "" {
		if h, _ := s.Host(nil, m.Host); h != nil {
			if e := w.hostDelete(&HostDeleteRequest{ID: h.ID, Time: r.Time}); e != nil {
				return e
			}
		}
	}
	return w.event(Event{Time: r.Time, Type: "machine.deleted", Subject: m.ID, Pool: m.Pool, Message: fmt.Sprintf("machine %s of pool %s deleted", m.ID, m.Pool)})
}

// enrollMachine binds a host that enrolls with a machine's join token to
// that machine and makes the machine ready.
func (w *writer) enrollMachine(t *JoinToken, r *HostEnrollRequest, h *Host) *Error {
	if t.Machine == "" {
		if r.MachineID != "" {
			return Errorf(KindRefused, "the agent says it is machine %s, but join token %s belongs to no machine", r.MachineID, t.ID)
		}
		return nil
	}
	if r.MachineID != "" && r.MachineID != t.Machine {
		return Errorf(KindRefused, "join token %s belongs to machine %s, but the agent says it is machine %s", t.ID, t.Machine, r.MachineID)
	}
	m, _ := w.snap().Machine(nil, t.Machine)
	switch {
	case m == nil:
		return Errorf(KindRefused, "machine %s of join token %s no longer exists", t.Machine, t.ID)
	case m.Host != "":
		return Errorf(KindRefused, "machine %s has a host already (%s)", m.ID, m.Host)
	case !MachineCanMove(m.State, MachineReady) || m.State == MachineReady:
		return Errorf(KindRefused, "machine %s is %s: it cannot enroll", m.ID, m.State)
	}
	h.Machine = m.ID
	n := m.Copy()
	n.Host, n.State, n.StateSince, n.Error = h.ID, MachineReady, r.Time, ""
	w.meta(&n.Meta, &m.Meta)
	if e := w.insert(TableMachines, n); e != nil {
		return e
	}
	return w.event(Event{Time: r.Time, Type: "machine.state", Subject: m.ID, Pool: m.Pool, Message: fmt.Sprintf("machine %s: %s -> ready (host %s enrolled)", m.ID, m.State, h.Name)})
}

func (w *writer) provider(name string) (*ProviderAccount, *Error) {
	a, err := w.snap().ProviderAccount(nil, name)
	if err != nil {
		return nil, Errorf(KindInternal, "%v", err)
	}
	if a == nil {
		return nil, Errorf(KindNotFound, "provider %s not found", name)
	}
	return a, nil
}

func (w *writer) machine(id string) (*Machine, *Error) {
	m, err := w.snap().Machine(nil, id)
	if err != nil {
		return nil, Errorf(KindInternal, "%v", err)
	}
	if m == nil {
		return nil, Errorf(KindNotFound, "machine %s not found", id)
	}
	return m, nil
}
