package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
)

func joinTokenOut(t *state.JoinToken) apitypes.JoinToken {
	return apitypes.JoinToken{ID: t.ID, Pool: t.Pool, ExpiresAt: t.ExpiresAt, Uses: t.MaxUses, Used: t.Used, CreatedAt: t.CreatedAt}
}

// hostOut describes a host; snap names its machine's provider id.
func hostOut(snap *state.Snapshot, h *state.Host) apitypes.Host {
	c := h.Copy()
	var providerID string
	if c.Machine != "" {
		if m, _ := snap.Machine(nil, c.Machine); m != nil {
			providerID = m.ProviderID
		}
	}
	i := c.Inventory
	live := 0
	if insts, err := snap.HostInstances(nil, c.ID); err == nil {
		for _, in := range insts {
			if in.Live() {
				live++
			}
		}
	}
	return apitypes.Host{AllocCPU: c.AllocCPU, AllocMemory: c.AllocMemory, Instances: live,
		ID: c.ID, Name: c.Name, Pool: c.Pool, Datacenter: c.Datacenter, State: c.State, Disconnected: c.Disconnected,
		Kind: i.KindOrHost(), CPUMillis: i.CPU(),
		Hostname: i.Hostname, OS: i.OS, Arch: i.Arch, CPUs: i.CPUs, MemoryBytes: i.MemoryBytes, DiskBytes: i.DiskBytes,
		Addresses: i.Addresses, Drivers: i.Drivers, Provider: i.Provider, Region: i.Region, Zone: i.Zone, Labels: i.Labels,
		GossipAddr: i.GossipAddr, Advertise: i.Advertise, AgentVersion: i.AgentVersion, Machine: c.Machine, ProviderID: providerID, EnrolledAt: c.EnrolledAt, CreateIndex: c.CreateIndex, ModifyIndex: c.ModifyIndex}
}

func eventOut(e *state.Event) apitypes.Event {
	return apitypes.Event{Index: e.Index, Time: e.Time, Type: e.Type, Subject: e.Subject, Pool: e.Pool, Message: e.Message}
}

func requireAdmin(p *principal, what string) error {
	if !p.admin() {
		return errForbidden(what + " needs an admin token")
	}
	return nil
}

// Join tokens.

func (s *Server) createJoinToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "creating join tokens"); err != nil {
		return err
	}
	var req apitypes.JoinTokenRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	ca, err := s.cfg.Store.Snapshot().AgentCA(nil)
	if err != nil {
		return err
	}
	if ca == nil {
		return &state.Error{Kind: state.KindUnavailable, Msg: "the agent CA does not exist yet (no leader has taken office); retry"}
	}
	tok, err := pki.NewJoinToken(ca.Fingerprint)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	st := state.JoinToken{ID: tok.ID, Pool: req.Pool, SecretHash: pki.HashSecret(tok.Secret), ExpiresAt: now.Add(req.TTL.D()), MaxUses: req.Uses}
	if _, err := s.apply(r.Context(), state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: st, Time: now}); err != nil {
		return err
	}
	got, err := s.cfg.Store.Snapshot().JoinToken(nil, tok.ID)
	if err != nil || got == nil {
		return errNotFound("join token", tok.ID)
	}
	out := joinTokenOut(got)
	out.Token = tok.String()
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listJoinTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "listing join tokens"); err != nil {
		return err
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		ts, err := snap.JoinTokens(ws)
		return mapAll(ts, joinTokenOut), snap.Index(state.TableJoinTokens), err
	})
}

func (s *Server) deleteJoinToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "revoking join tokens"); err != nil {
		return err
	}
	if _, err := s.apply(r.Context(), state.JoinTokenDeleteType, &state.JoinTokenDeleteRequest{ID: r.PathValue("id")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Hosts.

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "listing hosts"); err != nil {
		return err
	}
	pool := r.URL.Query().Get("pool")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		hs, err := snap.Hosts(ws)
		out := []apitypes.Host{}
		for _, h := range hs {
			if pool == "" || h.Pool == pool {
				out = append(out, hostOut(snap, h))
			}
		}
		return out, snap.Index(state.TableHosts), err
	})
}

func (s *Server) getHost(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "reading hosts"); err != nil {
		return err
	}
	id := r.PathValue("id")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		h, err := snap.Host(ws, id)
		if err != nil {
			return nil, 0, err
		}
		if h == nil {
			return nil, 0, errNotFound("host", id)
		}
		out := hostOut(snap, h)
		if s.cfg.Hosts != nil {
			// Best effort: without a leader the host is shown without them.
			if c, err := s.cfg.Hosts.HostConn(r.Context(), id); err == nil {
				out.LastHeartbeat, out.HubNode, out.CertNotAfter = c.LastHeartbeat, c.HubNode, c.CertNotAfter
			}
		}
		return out, snap.Index(state.TableHosts), nil
	})
}

func (s *Server) drainHost(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "draining hosts"); err != nil {
		return err
	}
	id := r.PathValue("id")
	h, err := s.cfg.Store.Snapshot().Host(nil, id)
	if err != nil {
		return err
	}
	if h == nil {
		return errNotFound("host", id)
	}
	req := &state.HostStateRequest{ID: id, State: state.HostDraining, Disconnected: h.Disconnected, Reason: "drained by " + p.token.Name, Time: s.cfg.Now().UTC(), From: h.State}
	if _, err := s.apply(r.Context(), state.HostStateType, req); err != nil {
		return err
	}
	snap := s.cfg.Store.Snapshot()
	got, err := snap.Host(nil, id)
	if err != nil || got == nil {
		return errNotFound("host", id)
	}
	return writeJSON(w, http.StatusOK, hostOut(snap, got))
}

func (s *Server) deleteHost(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "removing hosts"); err != nil {
		return err
	}
	id := r.PathValue("id")
	snap := s.cfg.Store.Snapshot()
	if h, err := snap.Host(nil, id); err != nil {
		return err
	} else if h != nil && h.Machine != "" {
		if m, _ := snap.Machine(nil, h.Machine); m != nil {
			return s.retireMachine(w, r, m)
		}
	}
	if _, err := s.apply(r.Context(), state.HostDeleteType, &state.HostDeleteRequest{ID: id, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// retireMachine answers DELETE of a provisioned host: its machine is
// marked draining, and the provisioning loop drains the host, deletes the
// cloud machine, then forgets machine and host. 202 with the machine.
func (s *Server) retireMachine(w http.ResponseWriter, r *http.Request, m *state.Machine) error {
	if m.State != state.MachineDraining && m.State != state.MachineDeleting {
		req := &state.MachineUpdateRequest{ID: m.ID, State: state.MachineDraining, Time: s.cfg.Now().UTC()}
		if _, err := s.apply(r.Context(), state.MachineUpdateType, req); err != nil {
			return err
		}
	}
	got, err := s.cfg.Store.Snapshot().Machine(nil, m.ID)
	if err != nil || got == nil {
		w.WriteHeader(http.StatusNoContent) // deleted meanwhile
		return nil
	}
	return writeJSON(w, http.StatusAccepted, machineOut(got))
}

// Events.

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p *principal) error {
	// Tenants read the events of their apps (subject "tenant/app"):
	// canaries, dropped log lines, failing drains, alerts.
	prefix := ""
	if t := r.URL.Query().Get("tenant"); p.admin() && t != "" {
		prefix = t + "/" // an admin looking at one tenant's
	}
	if !p.admin() {
		tenant, err := tenantScope(r, p, true)
		if err != nil {
			return err
		}
		prefix = tenant + "/"
	}
	var after uint64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return apitypes.FieldError("after", "after must be an event index")
		}
		after = n
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		es, err := snap.Events(ws, after)
		if prefix != "" {
			mine := es[:0:0]
			for _, e := range es {
				if strings.HasPrefix(e.Subject, prefix) {
					mine = append(mine, e)
				}
			}
			es = mine
		}
		return mapAll(es, eventOut), snap.Index(state.TableEvents), err
	})
}
