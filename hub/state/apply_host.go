package state

import (
	"fmt"
	"maps"
	"slices"
)

func (w *writer) agentCACreate(r *AgentCACreateRequest) *Error {
	old, err := w.snap().AgentCA(nil)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old != nil {
		return Errorf(KindConflict, "the agent CA exists already")
	}
	ca := r.CA
	ca.ID, ca.CreatedAt = agentCAID, r.Time
	w.meta(&ca.Meta, nil)
	return w.insert(TableAgentCA, &ca)
}

func (w *writer) joinTokenCreate(r *JoinTokenCreateRequest) *Error {
	s := w.snap()
	if p, _ := s.Pool(nil, r.Token.Pool); p == nil {
		return &Error{Kind: KindRefused, Field: "pool", Msg: fmt.Sprintf("pool %s does not exist", r.Token.Pool)}
	}
	if ca, _ := s.AgentCA(nil); ca == nil {
		return Errorf(KindUnavailable, "the agent CA does not exist yet; retry")
	}
	if old, _ := s.JoinToken(nil, r.Token.ID); old != nil {
		return Errorf(KindConflict, "join token id %s is taken", r.Token.ID)
	}
	t := r.Token.Copy()
	t.Used, t.CreatedAt = 0, r.Time
	w.meta(&t.Meta, nil)
	return w.insert(TableJoinTokens, t)
}

func (w *writer) joinTokenDelete(r *JoinTokenDeleteRequest) *Error {
	t, err := w.snap().JoinToken(nil, r.ID)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if t == nil {
		return Errorf(KindNotFound, "join token %s not found", r.ID)
	}
	return w.delete(TableJoinTokens, t)
}

func (w *writer) hostEnroll(r *HostEnrollRequest) *Error {
	s := w.snap()
	t, err := s.JoinToken(nil, r.TokenID)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	switch {
	case t == nil || t.SecretHash != r.SecretHash:
		return Errorf(KindRefused, "join token unknown or revoked")
	case !t.ExpiresAt.IsZero() && !r.Time.Before(t.ExpiresAt):
		return Errorf(KindRefused, "join token expired at %s", t.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"))
	case t.MaxUses > 0 && t.Used >= t.MaxUses:
		return Errorf(KindRefused, "join token used up (%d of %d uses)", t.Used, t.MaxUses)
	}
	pool, _ := s.Pool(nil, t.Pool)
	if pool == nil {
		return Errorf(KindRefused, "the join token's pool %s no longer exists", t.Pool)
	}
	if old, _ := s.Host(nil, r.Host.ID); old != nil {
		return Errorf(KindConflict, "host id %s is taken", r.Host.ID)
	}
	if old, _ := s.HostByName(nil, t.Pool, r.Host.Name); old != nil {
		return &Error{Kind: KindConflict, Field: "name", Msg: fmt.Sprintf("a host named %s is already in pool %s", r.Host.Name, t.Pool)}
	}
	nt := t.Copy()
	nt.Used++
	w.meta(&nt.Meta, &t.Meta)
	if e := w.insert(TableJoinTokens, nt); e != nil {
		return e
	}
	h := r.Host.Copy()
	h.Pool, h.Datacenter, h.State, h.EnrolledAt, h.Machine = t.Pool, pool.Datacenter, HostReady, r.Time, ""
	if e := w.enrollMachine(t, r, h); e != nil {
		return e
	}
	w.meta(&h.Meta, nil)
	if e := w.insert(TableHosts, h); e != nil {
		return e
	}
	if e := w.noteWatch(hostWatchKey(h.ID)); e != nil {
		return e
	}
	return w.event(Event{Time: r.Time, Type: "host.enrolled", Subject: h.ID, Pool: h.Pool, Message: fmt.Sprintf("host %s enrolled into pool %s with join token %s", h.Name, h.Pool, t.ID)})
}

func (w *writer) hostState(r *HostStateRequest) *Error {
	switch r.State {
	case HostReady, HostSuspect, HostDown, HostDraining, HostDrained:
	default:
		return &Error{Kind: KindInvalid, Field: "state", Msg: fmt.Sprintf("unknown host state %q", r.State)}
	}
	h, e := w.host(r.ID)
	if e != nil {
		return e
	}
	if r.From != "" && h.State != r.From {
		return &Error{Kind: KindConflict, Msg: fmt.Sprintf("host %s is %s by now, not %s", h.Name, h.State, r.From)}
	}
	if r.State == HostDown && h.State != HostDown {
		if e := w.hostLost(h.ID); e != nil {
			return e
		}
	}
	n := h.Copy()
	n.State, n.Disconnected = r.State, r.Disconnected
	w.meta(&n.Meta, &h.Meta)
	if e := w.insert(TableHosts, n); e != nil {
		return e
	}
	if e := w.noteWatch(hostWatchKey(h.ID)); e != nil {
		return e
	}
	msg := fmt.Sprintf("host %s: %s -> %s", h.Name, h.State, r.State)
	if r.Disconnected {
		msg += " (disconnected: its pool peers still see it)"
	}
	if r.Reason != "" {
		msg += ": " + r.Reason
	}
	return w.event(Event{Time: r.Time, Type: "host.state", Subject: h.ID, Pool: h.Pool, Message: msg})
}

// hostStates applies each change as hostState would, alone: the checks
// that refuse one (its host gone, From no longer holding, an unknown
// state) come before any of its writes, so a refused change is skipped
// whole; an internal error fails the command.
func (w *writer) hostStates(r *HostStatesRequest) *Error {
	for _, c := range r.Changes {
		e := w.hostState(&HostStateRequest{ID: c.ID, State: c.State, Disconnected: c.Disconnected, Reason: c.Reason, From: c.From, Time: r.Time})
		if e != nil && e.Kind == KindInternal {
			return e
		}
	}
	return nil
}

func (w *writer) hostInventory(r *HostInventoryRequest) *Error {
	h, e := w.host(r.ID)
	if e != nil {
		return e
	}
	n := h.Copy()
	n.Inventory = r.Inventory
	n.Inventory.Labels = maps.Clone(r.Inventory.Labels)
	n.Inventory.Addresses = slices.Clone(r.Inventory.Addresses)
	n.Inventory.Drivers = slices.Clone(r.Inventory.Drivers)
	w.meta(&n.Meta, &h.Meta)
	if e := w.noteWatch(hostWatchKey(h.ID)); e != nil {
		return e
	}
	return w.insert(TableHosts, n)
}

func (w *writer) hostDelete(r *HostDeleteRequest) *Error {
	h, e := w.host(r.ID)
	if e != nil {
		return e
	}
	if e := w.delete(TableHosts, h); e != nil {
		return e
	}
	if e := w.noteWatch(hostWatchKey(h.ID)); e != nil {
		return e
	}
	if e := w.dropHostInstances(h.ID); e != nil {
		return e
	}
	return w.event(Event{Time: r.Time, Type: "host.removed", Subject: h.ID, Pool: h.Pool, Message: fmt.Sprintf("host %s removed from pool %s", h.Name, h.Pool)})
}

// event records ev at this command's index; several events of one command
// get increasing sequence numbers.
func (w *writer) event(ev Event) *Error {
	ev.Index = w.index
	ev.Seq = w.events
	w.events++
	return w.insert(TableEvents, &ev)
}

// host returns a host that must exist (not found otherwise).
func (w *writer) host(id string) (*Host, *Error) {
	h, err := w.snap().Host(nil, id)
	if err != nil {
		return nil, Errorf(KindInternal, "%v", err)
	}
	if h == nil {
		return nil, Errorf(KindNotFound, "host %s not found", id)
	}
	return h, nil
}
